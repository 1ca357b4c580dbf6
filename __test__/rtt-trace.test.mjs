// The round-trip breakdown's stamps (lib/trace.js, src/pump/trace.rs): with
// ALKDEV_IROH_TRACE=1 every frame gets one stamp per hand-over, JS and native stamps read
// the same clock, so each ping-pong's stamps are in the order its frames passed the stages.
// Without the switch nothing is stamped.
import { afterEach, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createSpokeIrohEventTarget } from '../lib/index.mjs'
import { closeAll, pair } from './helpers.mjs'

const trace = createRequire(import.meta.url)('../lib/trace.js')
const fixture = fileURLToPath(new URL('./fixtures/rtt-trace.mjs', import.meta.url))
const SENT = ['dispatched', 'committed', 'taken', 'written']
const RECEIVED = ['read', 'posted', 'woken', 'delivered']

afterEach(closeAll)

describe('round-trip trace', () => {
  // On one clock only on Linux: there both sides read CLOCK_MONOTONIC (libuv's hrtime does).
  it.skipIf(process.platform !== 'linux')('stamps every frame at each hand-over, in order, on one clock', async () => {
    const count = 200
    const { stdout } = await promisify(execFile)(process.execPath, [fixture, String(count)], {
      env: { ...process.env, ALKDEV_IROH_TRACE: '1' },
      timeout: 30_000,
    })
    const { tracing, spoke, hub } = JSON.parse(stdout)
    expect(tracing).toBe(true)
    for (const side of [spoke, hub]) {
      for (const stage of [...SENT, ...RECEIVED]) expect(side[stage]).toHaveLength(count)
    }
    for (let i = 0; i < count; i++) {
      // Ping i from the spoke to the hub, the hub's answer, pong i back: one timeline.
      const timeline = [
        ...SENT.map((s) => spoke[s][i]),
        ...RECEIVED.map((s) => hub[s][i]),
        ...SENT.map((s) => hub[s][i]),
        ...RECEIVED.map((s) => spoke[s][i]),
      ]
      if (i + 1 < count) timeline.push(spoke.dispatched[i + 1])
      for (let k = 1; k < timeline.length; k++) {
        if (timeline[k] < timeline[k - 1]) throw new Error(`round trip ${i}: stage ${k} at ${timeline[k]} before stage ${k - 1} at ${timeline[k - 1]}`)
      }
    }
  })

  it.skipIf(process.env.ALKDEV_IROH_TRACE === '1')('stamps nothing without the switch', async () => {
    expect(trace.TRACE).toBe(false)
    const p = await pair()
    const spoke = await createSpokeIrohEventTarget(p.clientConn)
    expect(spoke[trace.STAMPS]()).toBeNull()
    await spoke.close()
  })
})
