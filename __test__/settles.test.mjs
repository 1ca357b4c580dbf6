// The rule: every promise this package hands out settles on its own, whatever else holds the
// process. Each case is one async call on a closed or closing object in a script with
// nothing else to do (fixtures/settles.mjs); it must print how the call settled and exit 0.
import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { runNode } from './helpers.mjs'

const script = fileURLToPath(new URL('./fixtures/settles.mjs', import.meta.url))
const CASES = JSON.parse(execFileSync(process.execPath, [script, '--list'], { encoding: 'utf8' }))
const LIMIT_MS = 30_000

const run = (name, mode) => runNode([script, name, mode], LIMIT_MS)

// What each call settles with, where the answer is not simply "it settled". A closed object
// answers as its kind says (null for "no more", a coded error for "cannot").
const EXPECTED = {
  'endpoint.accept': { settled: 'resolved', value: null },
  'endpoint.connect': { settled: 'rejected', code: 'ERR_IROH_ENDPOINT_CLOSED' },
  'endpoint.online': { settled: 'rejected', code: 'ERR_IROH_ENDPOINT_CLOSED' },
  'channel.receive': { settled: 'resolved', value: null },
  'hub.next': { settled: 'resolved', value: 'object' },
  'spokeTarget.closed': { settled: 'resolved', value: 'object' },
  'hubTarget.closed': { settled: 'resolved', value: 'object' },
  'channel.closed': { settled: 'resolved', value: 'object' },
  'spoke.closed': { settled: 'resolved', value: 'object' },
  'spoke.flush': { settled: 'rejected', code: 'ERR_IROH_CONNECTION_CLOSED' },
}

describe('every promise settles on its own', () => {
  // Two at a time: each child binds endpoints and loads the addon.
  it.concurrent.each(CASES.flatMap((name) => [[name, 'closed'], [name, 'closing']]))('%s on a %s object', async (name, mode) => {
    const r = await run(name, mode)
    expect(r.signal, `killed after ${LIMIT_MS} ms: the process hung\n${r.stderr}`).toBeNull()
    expect(r.code, `exit ${r.code} (13: a promise never settled)\n${r.stderr}`).toBe(0)
    const outcome = JSON.parse(r.stdout.trim())
    expect(['resolved', 'rejected']).toContain(outcome.settled)
    if (outcome.settled === 'rejected') expect(outcome.code, 'a rejection carries a stable code').toMatch(/^ERR_IROH_/)
    if (mode === 'closed' && EXPECTED[name]) expect(outcome).toEqual(EXPECTED[name])
  }, LIMIT_MS + 5_000)
})
