// Writes the platform packages into a package.json as optionalDependencies, each at the
// main package's version: run on the manifest that is published, never on the repository's
// own (npm ci in a clone would then look for packages that do not exist yet, and on a
// registry mirror that lacks some of them refuses the lock file).
//
//   node scripts/add-optional-deps.mjs [path/to/package.json]   (default: ./package.json)
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const target = process.argv[2] ?? join(root, 'package.json')
const manifest = JSON.parse(readFileSync(target, 'utf8'))
const optionalDependencies = {}
for (const dir of readdirSync(join(root, 'npm')).sort()) {
  const { name } = JSON.parse(readFileSync(join(root, 'npm', dir, 'package.json'), 'utf8'))
  optionalDependencies[name] = manifest.version
}
manifest.optionalDependencies = optionalDependencies
writeFileSync(target, `${JSON.stringify(manifest, null, 2)}\n`)
console.log(`${target}: ${Object.keys(optionalDependencies).length} optional platform packages at ${manifest.version}`)
