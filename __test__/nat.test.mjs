// Hole punching and relay fallback through simulated NATs (see netns.mjs): a hub and a
// spoke in two homes, each behind its own NAT router, a relay on the "internet" between.
// Needs root; where namespaces cannot be made the tests say why and skip, unless
// IROH_REQUIRE_NETNS=1 (set by .ci/run) makes that a failure.
import { afterEach, describe, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { RELAY_IP, ROUTER_WAN, createNetwork, netnsUnavailable, startPeer } from './netns.mjs'
import { within } from './helpers.mjs'

const PEER = fileURLToPath(new URL('./fixtures/nat-peer.mjs', import.meta.url))
const ALPN = 'alkdev/nat/1'
/** Pings the spoke sends as soon as its target exists, on the path it connected on. */
const INITIAL_PINGS = 200
const unavailable = process.platform === 'linux' ? netnsUnavailable() : 'network namespaces are Linux only'
if (unavailable && process.env.IROH_REQUIRE_NETNS === '1') throw new Error(`NAT tests must run here, but ${unavailable}`)
if (unavailable) console.warn(`NAT tests skipped: ${unavailable}`)

const cleanups = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

/**
 * Builds the network and starts relay, hub (home 1) and spoke (home 2) in it. With
 * `blocked`, UDP between the routers is dropped until `network.allowDirect()`.
 */
async function setUp(nat, { blocked = false } = {}) {
  const { network, start, relay, ca } = await withRelay(nat)
  if (blocked) network.blockDirect()
  const hub = start(network.ns.h1, 'hub', { relay, ca, alpn: ALPN })
  const { nodeId } = await within(hub.next('ready'), 30_000, 'hub online')
  const spoke = start(network.ns.h2, 'spoke', { relay, ca, alpn: ALPN, hub: nodeId, initialPings: INITIAL_PINGS })
  const firstPath = await within(spoke.next('connected'), 30_000, 'spoke connected')
  return { network, relay, spoke, firstPath }
}

/** Builds the network and starts its relay; `start(ns, role, config)` starts a peer in it. */
async function withRelay(nat) {
  const network = createNetwork(nat)
  cleanups.push(() => network.remove())
  const peers = []
  cleanups.push(async () => {
    // Ask politely, then make sure: no process may outlive its namespace.
    await Promise.all(peers.map((p) => within(p.stop(), 10_000, 'peer exit').catch(() => p.child.kill('SIGKILL'))))
  })
  const start = (ns, role, config) => {
    const peer = startPeer(ns, PEER, role, config)
    peers.push(peer)
    return peer
  }
  const relayPeer = start(network.ns.pub, 'relay', { bindAddr: `${RELAY_IP}:443`, quicPort: 7842 })
  const { relay, ca } = await within(relayPeer.next('ready'), 20_000, 'relay ready')
  return { network, start, relay, ca }
}

/** Sends n pings from the spoke and resolves with its report once all n pongs are back. */
async function pingPong(spoke, n) {
  if (n !== null) spoke.send(`ping ${n}`)
  else n = INITIAL_PINGS
  const report = await within(spoke.next('pongs'), 30_000, `${n} pongs`)
  expect(report).toMatchObject({ n, outOfOrder: 0 })
  return report
}

describe.skipIf(unavailable)('through NAT routers', () => {
  it('endpoint-independent NAT on both sides: starts on the relay, hole-punches to a direct path', { timeout: 120_000 }, async () => {
    // The routers cannot reach each other until the connection is up and has carried
    // events through the relay; on this fast network hole punching would otherwise finish
    // before the first event.
    const { network, spoke, firstPath, relay } = await setUp({ r1: 'endpoint-independent', r2: 'endpoint-independent' }, { blocked: true })
    expect(firstPath).toBe('relay')
    const initial = await within(spoke.next('path'), 10_000, 'first path state')
    expect(initial.paths).toEqual([expect.objectContaining({ kind: 'relay', remoteAddr: relay.url, selected: true })])
    expect(await pingPong(spoke, null)).toMatchObject({ pathTypeAtSend: 'relay', pathType: 'relay' })
    expect(await pingPong(spoke, 1_000)).toMatchObject({ pathTypeAtSend: 'relay', pathType: 'relay' })

    // Hole punching: the data moves to a direct path to the hub's public (NATed) address.
    network.allowDirect()
    const direct = await within(spoke.until('path', (state) => state.pathType === 'direct'), 30_000, 'direct path')
    const selected = direct.paths.find((p) => p.selected)
    expect(selected.kind).toBe('direct')
    expect(selected.remoteAddr.startsWith(`${ROUTER_WAN.r1}:`)).toBe(true)
    expect(await pingPong(spoke, 2_000)).toMatchObject({ pathTypeAtSend: 'direct', pathType: 'direct' })
    expect(spoke.lines.filter((l) => 'closed' in l)).toEqual([])
  })

  it('symmetric NAT on one side: the connection stays on the relay and events still flow', { timeout: 120_000 }, async () => {
    const { spoke, firstPath } = await setUp({ r1: 'endpoint-independent', r2: 'symmetric' })
    expect(firstPath).toBe('relay')
    expect((await pingPong(spoke, null)).pathType).toBe('relay')
    // Events keep flowing for several rounds of hole-punching attempts (iroh retries while
    // the connection lives); none of them finds a direct path.
    for (let round = 0; round < 5; round++) {
      const report = await pingPong(spoke, 1_000)
      expect(report.pathType).toBe('relay')
    }
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    const report = await pingPong(spoke, 1_000)
    expect(report.pathType).toBe('relay')
    const states = spoke.lines.filter((l) => 'path' in l).map((l) => l.path.pathType)
    expect(states.length).toBeGreaterThan(0)
    expect(states.filter((t) => t !== 'relay')).toEqual([])
    expect(spoke.lines.filter((l) => 'closed' in l)).toEqual([])
  })

  it('a 40 s cable cut on the spoke side: acknowledged delivery loses nothing and duplicates nothing, both ways', { timeout: 180_000 }, async () => {
    const { network, start, relay, ca } = await withRelay({ r1: 'endpoint-independent', r2: 'endpoint-independent' })
    const hub = start(network.ns.h1, 'stream-hub', { relay, ca, alpn: ALPN })
    const { nodeId } = await within(hub.next('ready'), 30_000, 'hub online')
    const spoke = start(network.ns.h2, 'stream-spoke', { relay, ca, alpn: ALPN, hub: nodeId })
    await within(spoke.until('state', (s) => s.state === 'connected'), 30_000, 'spoke connected')
    await within(spoke.until('sent', (n) => n >= 3_000), 30_000, 'events flowing')

    const cutAt = Date.now()
    network.cut('r2')
    await new Promise((resolve) => setTimeout(resolve, 40_000)) // the fault itself
    network.mend('r2')
    const mendedAt = Date.now()
    const back = await within(spoke.until('state', (s) => s.state === 'connected' && s.at > mendedAt), 60_000, 'spoke reconnected')
    const lostAt = spoke.lines.find((l) => l.state?.state === 'disconnected' && l.state.at > cutAt)?.state.at
    const sentThen = spoke.lines.filter((l) => 'sent' in l).at(-1).sent
    await within(spoke.until('sent', (n) => n >= sentThen + 3_000), 30_000, 'events flowing again')

    // Quiesce in order: once the hub's broadcasts are acknowledged the spoke has them all;
    // once the spoke's events are acknowledged the hub has them all.
    hub.send('stop')
    const hubReport = await within(hub.next('report'), 30_000, 'hub report')
    spoke.send('stop')
    const spokeReport = await within(spoke.next('report'), 30_000, 'spoke report')
    hub.send('count')
    Object.assign(hubReport, await within(hub.next('count'), 30_000, 'hub count'))
    console.log(`40 s cut: ${JSON.stringify({ noticedAfterMs: lostAt && lostAt - cutAt, reconnectedAfterMendMs: back.at - mendedAt, spoke: { sent: spokeReport.sent, twice: spokeReport.twice, received: spokeReport.count }, hub: { received: hubReport.count, twice: hubReport.twice, broadcasts: hubReport.broadcasts, acceptedRuns: hubReport.accepted.length } })}`)
    // Spoke -> hub: every event once, in order.
    expect(hubReport).toMatchObject({ count: spokeReport.sent, twice: 0, runs: [[0, spokeReport.sent - 1]] })
    // Hub -> spoke: every broadcast the spoke's connection took, once, in order (while the
    // hub knew the spoke was gone, broadcast() returned 0 for it: those were not sent).
    expect(spokeReport.twice).toBe(0)
    expect(spokeReport.runs).toEqual(hubReport.accepted)
  })

  it('10 % loss for 3 s and a 4 s outage ride on one connection; a NAT rebinding loses nothing either', { timeout: 180_000 }, async () => {
    const { network, start, relay, ca } = await withRelay({ r1: 'endpoint-independent', r2: 'endpoint-independent' })
    const hub = start(network.ns.h1, 'stream-hub', { relay, ca, alpn: ALPN })
    const { nodeId } = await within(hub.next('ready'), 30_000, 'hub online')
    const spoke = start(network.ns.h2, 'stream-spoke', { relay, ca, alpn: ALPN, hub: nodeId })
    await within(spoke.until('state', (s) => s.state === 'connected'), 30_000, 'spoke connected')
    await within(spoke.until('path', (p) => p.pathType === 'direct'), 30_000, 'direct path')
    const flowing = async (what) => {
      const sentThen = spoke.lines.filter((l) => 'sent' in l).at(-1)?.sent ?? 0
      await within(spoke.until('sent', (n) => n >= sentThen + 2_000), 60_000, `events flowing ${what}`)
    }
    const reconnectsSince = (from, to = Number.POSITIVE_INFINITY) =>
      spoke.lines.filter((l) => l.state && l.state.at > from && l.state.at <= to && l.state.state !== 'connected').length
    await flowing('before the faults')
    const faultsFrom = Date.now()

    network.lose('r2', 10)
    await new Promise((resolve) => setTimeout(resolve, 3_000)) // the fault itself
    network.stopLosing('r2')
    await flowing('after the loss')

    network.cut('r2')
    await new Promise((resolve) => setTimeout(resolve, 4_000)) // the fault itself
    network.mend('r2')
    await flowing('after the outage')

    const rebindAt = Date.now()
    network.rebind('r2')
    // The old UDP mapping is gone for good: the connection (or the spoke's next one) must
    // find its way back, over the relay and then a new direct path, on its own.
    const directAgain = await within(
      spoke.until('path', (p) => p.pathType === 'direct' && p.at > rebindAt),
      90_000,
      'a direct path after the rebinding',
    )
    await flowing('after the rebinding')

    hub.send('stop')
    const hubReport = await within(hub.next('report'), 30_000, 'hub report')
    spoke.send('stop')
    const spokeReport = await within(spoke.next('report'), 30_000, 'spoke report')
    hub.send('count')
    Object.assign(hubReport, await within(hub.next('count'), 30_000, 'hub count'))
    const paths = spoke.lines.filter((l) => l.path?.at > rebindAt).map((l) => `${l.path.pathType}@${l.path.at - rebindAt}ms`)
    console.log(
      `loss, outage, rebinding: ${JSON.stringify({ reconnectsAfterRebinding: reconnectsSince(rebindAt), directAgainAfterMs: directAgain.at - rebindAt, pathsAfterRebinding: paths, spoke: { sent: spokeReport.sent, twice: spokeReport.twice, received: spokeReport.count }, hub: { received: hubReport.count, twice: hubReport.twice, broadcasts: hubReport.broadcasts, acceptedRuns: hubReport.accepted.length } })}`,
    )
    // QUIC rides out the loss and the outage: the spoke never saw its connection go.
    expect(reconnectsSince(faultsFrom, rebindAt)).toBe(0)
    // Whatever the rebinding did, every event arrived once, in order, both ways.
    expect(hubReport).toMatchObject({ count: spokeReport.sent, twice: 0, runs: [[0, spokeReport.sent - 1]] })
    expect(spokeReport.twice).toBe(0)
    expect(spokeReport.runs).toEqual(hubReport.accepted)
  })
})
