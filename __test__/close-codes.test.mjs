// lib/close-codes.js is the one JS list of close codes. Its 40xx codes come from the
// native pump, which defines them in Rust, so they are checked against the Rust source (as
// errors.test.mjs checks the error codes against src/error.rs); every close code the
// README or index.d.ts names must be on the list. No network.
import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { root, rustSources } from './rust-source.mjs'

const read = (file) => readFileSync(join(root, file), 'utf8')
const { PumpCloseCode, HubCloseCode, FINAL_HUB_CODES } = createRequire(import.meta.url)('../lib/close-codes.js')

/**
 * The 40xx values Rust names as close codes: constants `CLOSE_*` (`pub const
 * CLOSE_FRAME_TOO_LARGE: u32 = 4001;`), and the variants of an enum named `*Close*`.
 */
function rustCloseCodes() {
  const codes = new Map()
  for (const { text } of rustSources()) {
    const code = (source) => source.replace(/\/\/.*$/gm, '')
    for (const m of code(text).matchAll(/\b(CLOSE_[A-Z0-9_]+)\s*:\s*\w+\s*=\s*(\d+)\b/g)) codes.set(Number(m[2]), m[1])
    for (const e of code(text).matchAll(/\benum\s+(\w*Close\w*)\s*\{([^}]*)\}/g)) {
      for (const m of e[2].matchAll(/\b(\w+)\s*=\s*(\d+)/g)) codes.set(Number(m[2]), `${e[1]}::${m[1]}`)
    }
  }
  return new Map([...codes].filter(([value]) => value >= 4000 && value < 4100))
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
