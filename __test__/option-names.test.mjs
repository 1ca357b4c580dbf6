// The option names JS accepts (the strict tables of lib/options.js) must be the fields of the Rust structs
// the native side takes, and of the types binding.d.ts generates from them (which
// index.d.ts re-exports): a name missing from the JS list is refused although it works, and
// one too many is passed on and ignored. Modelled on the error-code check in
// errors.test.mjs. Pure JS: no native addon, no network.
import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { root, rustSources } from './rust-source.mjs'

const { ENDPOINT, RELAY_SERVER, checkOptions, optionNames } = createRequire(import.meta.url)('../lib/options.js')
const ENDPOINT_OPTIONS = optionNames(ENDPOINT)
const RELAY_SERVER_OPTIONS = optionNames(RELAY_SERVER)

/** The field names of `export interface <name>` in binding.d.ts. */
function generatedFields(name) {
  const text = readFileSync(join(root, 'binding.d.ts'), 'utf8')
  const start = text.indexOf(`export interface ${name} {`)
  expect(start, `binding.d.ts declares ${name}`).toBeGreaterThanOrEqual(0)
  const body = text.slice(start, text.indexOf('\n}', start))
  return [...body.matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1]).sort()
}

/** The fields of `pub struct <name>` in the Rust source (src/, or crates/ once split), as napi names them. */
function rustFields(name) {
  for (const { text } of rustSources()) {
    const start = text.indexOf(`pub struct ${name} {`)
    if (start < 0) continue
    const body = text.slice(start, text.indexOf('\n}', start))
    const camel = (snake) => snake.replace(/_([a-z])/g, (_, c) => c.toUpperCase())
    return [...body.matchAll(/^\s*pub (\w+):/gm)].map((m) => camel(m[1])).sort()
  }
  throw new Error(`no pub struct ${name} under src/ or crates/`)
}

describe('option names', () => {
  it.each([
    ['EndpointOptions', ENDPOINT_OPTIONS],
    ['RelayServerOptions', RELAY_SERVER_OPTIONS],
  ])('%s: the JS list, the Rust struct and binding.d.ts agree', (name, list) => {
    const js = [...list].sort()
    expect(js.length).toBeGreaterThan(3)
    expect(js).toEqual(generatedFields(name))
    expect(js).toEqual(rustFields(name))
  })

  it('a name not on the list is refused with a coded error', () => {
    expect(() => checkOptions(ENDPOINT, { relaymode: 'disabled' })).toThrow(
      expect.objectContaining({ code: 'ERR_IROH_INVALID_ARGUMENT', message: 'unknown endpoint option "relaymode"' }),
    )
    expect(() => checkOptions(ENDPOINT, { relayMode: 'disabled', bindAddr: '127.0.0.1:0' })).not.toThrow()
  })
})
