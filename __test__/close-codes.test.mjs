// lib/close-codes.js is the one JS list of close codes. Its 40xx codes restate what the
// native pump defines in Rust, so they are checked against the Rust source (as
// errors.test.mjs checks the error codes against src/error.rs); every close code the
// README or index.d.ts names must be on the list. Pure JS: no native addon, no network.
import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../', import.meta.url))
const read = (file) => readFileSync(join(root, file), 'utf8')
const { PumpCloseCode, HubCloseCode, FINAL_HUB_CODES } = createRequire(import.meta.url)('../lib/close-codes.js')

/** Every .rs file under `dir` (src/, and crates/ once the core is a crate of its own). */
function rustFiles(dir) {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.rs'))
    .map((e) => join(e.parentPath ?? e.path, e.name))
}

/** The 40xx values Rust gives a name: `const CLOSE_X: u32 = 4001;` or an enum's `X = 4001,`. */
function rustCloseCodes() {
  const codes = new Map()
  for (const file of [...rustFiles(join(root, 'src')), ...rustFiles(join(root, 'crates'))]) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line.trimStart().startsWith('//')) continue
      const m = line.match(/\b([A-Z][A-Za-z0-9_]*)\s*(?::\s*[iu](?:16|32|64))?\s*=\s*(40\d\d)\b/)
      if (m) codes.set(Number(m[2]), m[1])
    }
  }
  return codes
}

describe('close codes', () => {
  it('the pump codes in lib/close-codes.js are the ones the Rust source defines', () => {
    const rust = rustCloseCodes()
    expect(rust.size).toBeGreaterThanOrEqual(4)
    expect(Object.values(PumpCloseCode).sort()).toEqual([...rust.keys()].sort())
  })

  it('the hub codes are 41xx, none is used twice, and the refusals end a spoke', () => {
    const all = [...Object.values(PumpCloseCode), ...Object.values(HubCloseCode)]
    expect(new Set(all).size).toBe(all.length)
    for (const code of Object.values(HubCloseCode)) expect(code).toBeGreaterThanOrEqual(4100)
    for (const code of FINAL_HUB_CODES) expect(Object.values(HubCloseCode)).toContain(code)
    expect(FINAL_HUB_CODES.has(HubCloseCode.CLOSING)).toBe(false)
  })

  it('index.d.ts declares HubCloseCode with the same values', () => {
    const types = read('index.d.ts')
    const start = types.indexOf('export declare const HubCloseCode')
    const block = types.slice(start, types.indexOf('\n}', start))
    const declared = Object.fromEntries([...block.matchAll(/readonly (\w+): (\d+)/g)].map((m) => [m[1], Number(m[2])]))
    expect(declared).toEqual({ ...HubCloseCode })
  })

  it('every close code the README and index.d.ts name is on the list', () => {
    const known = new Set([...Object.values(PumpCloseCode), ...Object.values(HubCloseCode)])
    for (const file of ['README.md', 'index.d.ts']) {
      const named = [...read(file).matchAll(/\b4[01]\d\d\b/g)].map((m) => Number(m[0]))
      expect(named.length, file).toBeGreaterThan(0)
      for (const code of named) expect(known, `${file} names ${code}`).toContain(code)
    }
  })

  it('the package exports the hub codes from that module', async () => {
    const { HubCloseCode: exported } = await import('../lib/index.mjs')
    expect(exported).toBe(HubCloseCode)
  })
})
