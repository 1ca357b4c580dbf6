// index.d.ts as a TypeScript user meets it: a consumer wiring the event targets into
// createPubSub type-checks under --strict, and the types are precise enough to reject
// what is wrong (were they `any`, the consumer's @ts-expect-error lines would fail).
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('./types/', import.meta.url))
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
const check = (project) => spawnSync(process.execPath, [tsc, '-p', project], { cwd: dir, encoding: 'utf8' })

describe('types', () => {
  it('a strict TypeScript consumer with createPubSub, ESM and CJS, type-checks', { timeout: 120_000 }, () => {
    const r = check('tsconfig.json')
    expect(r.stdout + r.stderr).toBe('')
    expect(r.status).toBe(0)
  })

  it('index.d.ts restates no data type that binding.d.ts generates', () => {
    // The generated ones are re-exported; an interface of the same name here would drift from them.
    const interfaces = (file) => new Set([...readFileSync(`${dir}../../${file}`, 'utf8').matchAll(/^export interface (\w+)/gm)].map((m) => m[1]))
    const generated = interfaces('binding.d.ts')
    expect(generated.size).toBeGreaterThan(5)
    // BiStream: the generated one holds the native stream classes, ours the JS ones.
    const restated = [...interfaces('index.d.ts')].filter((name) => generated.has(name) && name !== 'BiStream')
    expect(restated).toEqual([])
  })

  it('and the same consumer with a wrong value fails to', { timeout: 120_000 }, () => {
    const source = readFileSync(`${dir}consumer.ts`, 'utf8')
    const broken = source.replace("const wrong: PathType = 'wifi'", "const wrong: PathType = 'direct'")
    expect(broken).not.toBe(source)
    try {
      writeFileSync(`${dir}broken.ts`, broken)
      writeFileSync(`${dir}tsconfig.broken.json`, JSON.stringify({ extends: './tsconfig.json', files: ['broken.ts'] }))
      const r = check('tsconfig.broken.json')
      expect(r.status).not.toBe(0)
      expect(r.stdout).toMatch(/TS2578/) // Unused '@ts-expect-error' directive.
    } finally {
      rmSync(`${dir}broken.ts`, { force: true })
      rmSync(`${dir}tsconfig.broken.json`, { force: true })
    }
  })
})
