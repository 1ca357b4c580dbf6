// A hub that is alive but busy (its JS thread held, its QUIC stack running) is not taken
// for gone: a spoke redials only when the transport falls silent. Redialing a slow hub
// adds a connection to its backlog; with a thousand spokes that fed on itself.
import { afterEach, describe, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { Endpoint, connectSpoke } from '../lib/index.mjs'
import { LOOPBACK, spawnJsonLines, within } from './helpers.mjs'

const fixture = fileURLToPath(new URL('./fixtures/busy-hub.mjs', import.meta.url))
const cleanup = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f()
})

describe('a busy hub', () => {
  it('keeps its spokes: silence is counted on the transport, not in its answers', async () => {
    const hub = spawnJsonLines(process.execPath, [fixture], 'busy-hub')
    cleanup.push(() => hub.child.exitCode === null && hub.child.kill('SIGKILL'))
    const ticket = await within(hub.waitFor(() => hub.lines.find((l) => l.ticket)?.ticket), 10_000, 'the hub ticket')
    const endpoint = await Endpoint.create(LOOPBACK)
    cleanup.push(() => endpoint.close())
    const heartbeatMs = 100
    const ackTimeoutMs = 300
    const spoke = connectSpoke(endpoint, ticket, { alpn: 'busy/1', heartbeatMs, ackTimeoutMs })
    cleanup.push(() => spoke.close())
    const states = []
    spoke.lifecycle.addEventListener('statechange', (e) => states.push(e.detail.state))
    const after = new Promise((resolve) => spoke.addEventListener('after', (e) => resolve(e.detail)))
    await within(new Promise((resolve) => spoke.lifecycle.addEventListener('statechange', (e) => e.detail.state === 'connected' && resolve())), 10_000, 'connected')
    const conn = spoke.connection
    const order = []
    after.then(() => order.push('after'))
    states.length = 0
    spoke.dispatchEvent(new CustomEvent('block', { detail: null }))
    await within(hub.waitFor(() => hub.lines.find((l) => l.blocked)), 10_000, "the hub blocking")
    const before = conn.stats()
    // The absence of a redial can only be shown by time. From the hub's `blocked` line on,
    // its JS is held (on a read of its stdin) until we write, so the whole window is
    // silence of the hub's application; a spoke that counted silence in the hub's answers
    // would redial one ackTimeoutMs in (it checks every 25 ms), and SILENCE_MS gives it
    // that chance six times over. A slow machine only fires this timer late: the window
    // grows, the hub stays held, and the test is stricter, not vacuous. What a slow machine
    // could do is delay the hub's QUIC acknowledgements past ackTimeoutMs, which would be a
    // real silence of the transport; on loopback they come within QUIC's 25 ms ack delay.
    const SILENCE_MS = 6 * ackTimeoutMs
    await new Promise((resolve) => setTimeout(resolve, SILENCE_MS))
    const during = conn.stats()
    expect(states).toEqual([])
    expect(spoke.connection).toBe(conn)
    // What kept the spoke: it nudged the hub (heartbeats every heartbeatMs of silence) and
    // the hub's QUIC stack answered, with its JS held throughout.
    expect(during.udpTx.datagrams - before.udpTx.datagrams).toBeGreaterThanOrEqual(2)
    expect(during.udpRx.datagrams - before.udpRx.datagrams).toBeGreaterThanOrEqual(2)
    expect(order).toEqual([])
    order.push('released')
    hub.child.stdin.write('\n')
    expect(await within(after, 10_000, 'the broadcast after the block')).toEqual({ admitted: 1 })
    expect(order).toEqual(['released', 'after'])
    // The hub prints its count right after the broadcast: the line may come after the event.
    const counts = await within(hub.waitFor(() => hub.lines.find((l) => 'disconnects' in l)), 10_000, "the hub's counts")
    expect(counts).toEqual({ admitted: 1, disconnects: 0 })
    expect(states).toEqual([])
    expect(spoke.connection).toBe(conn)
  })
})
