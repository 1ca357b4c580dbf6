import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { HubCloseCode, connectSpoke, createHub } from '../lib/index.mjs'
import { ALPN, closeAll, collect, endpoint, stateIs, startHubProcess, within } from './helpers.mjs'

const require = createRequire(import.meta.url)
const binding = require('../lib/native.js')
const { HEADER_BYTES, Outlet } = require('../lib/staging.js')

const FAST = { alpn: ALPN, initialDelayMs: 20, maxDelayMs: 200, connectTimeoutMs: 2_000 }
const cleanups = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
  await closeAll()
})

/** The details of the events in a run of wire frames, in order. */
function detailsOf(run) {
  const details = []
  for (let at = 0; at < run.length; ) {
    const len = run.readUInt32BE(at)
    const payload = run.subarray(at + HEADER_BYTES, at + HEADER_BYTES + len).toString()
    // An empty frame is a nudge (a heartbeat), not an event.
    details.push(len === 0 ? null : JSON.parse(payload))
    at += HEADER_BYTES + len
  }
  return details
}

/**
 * Records what staging hands to the native pumps, while `fn` runs: one `{ to, details }`
 * per hand-over, `to` the number of pumps (1 for one target's run, more for broadcasts).
 */
async function recordingHandOvers(fn) {
  const handed = []
  const take = Outlet.prototype.take
  const broadcastFrames = binding.broadcastFrames
  Outlet.prototype.take = function (run, handOver) {
    handed.push({ to: 1, details: detailsOf(run) })
    return take.call(this, run, handOver)
  }
  binding.broadcastFrames = (ids, frames) => {
    handed.push({ to: ids.length, details: detailsOf(frames) })
    return broadcastFrames(ids, frames)
  }
  try {
    return await fn(handed)
  } finally {
    Outlet.prototype.take = take
    binding.broadcastFrames = broadcastFrames
  }
}

async function hubWithSpokes(n, hubOptions = {}) {
  const hubEp = await endpoint({ alpns: [ALPN] })
  const spokeEps = await Promise.all(Array.from({ length: n }, () => endpoint()))
  const hub = createHub(hubEp, { alpn: ALPN, allow: spokeEps.map((ep) => ep.nodeId()), ...hubOptions })
  const admitted = admissions(hub)
  cleanups.push(() => hub.close())
  const spokes = spokeEps.map((ep) => connectSpoke(ep, hubEp.ticket(), FAST))
  cleanups.push(() => Promise.all(spokes.map((s) => s.close())))
  return { hub, hubEp, spokeEps, spokes, admitted }
}

/** `admitted(nodeId)` resolves with the hub's target for that spoke, through one listener. */
function admissions(hub) {
  const waiting = new Map()
  hub.addEventListener('spoke', (e) => waiting.get(e.detail.nodeId)?.(e.detail.target))
  return (nodeId) => hub.spoke(nodeId) ? Promise.resolve(hub.spoke(nodeId)) : new Promise((resolve) => waiting.set(nodeId, resolve))
}

/** The spoke speaks first (QUIC opens the stream then); resolves with the hub's target. */
async function greet(admitted, spoke, nodeId) {
  const arrived = admitted(nodeId)
  spoke.dispatchEvent(new CustomEvent('hi', { detail: nodeId }))
  const target = await within(arrived, 10_000, 'admission')
  await within(collect(target, 'hi', 1), 10_000, 'first event')
  return target
}

describe('hub', () => {
  it('admits an allowed spoke and refuses an unknown node id with its code', async () => {
    const { hub, hubEp, spokeEps, spokes, admitted } = await hubWithSpokes(1)
    const stranger = await endpoint()
    const refused = new Promise((resolve) => hub.addEventListener('refused', (e) => resolve(e.detail)))
    const outsider = connectSpoke(stranger, hubEp.ticket(), FAST)
    const info = await within(outsider.closed, 10_000, 'refusal')
    expect(info).toMatchObject({ code: HubCloseCode.REFUSED, kind: 'remote' })
    expect(info.error.code).toBe('ERR_IROH_REFUSED')
    expect(outsider.state).toBe('closed')
    expect(await refused).toEqual({ nodeId: stranger.nodeId(), code: HubCloseCode.REFUSED, reason: 'node id not allowed' })

    const target = await greet(admitted, spokes[0], spokeEps[0].nodeId())
    const answer = collect(spokes[0], 'answer', 1)
    target.dispatchEvent(new CustomEvent('answer', { detail: 42 }))
    expect(await within(answer, 10_000, 'answer')).toEqual([42])
    expect(hub.spokes).toEqual([spokeEps[0].nodeId()])
    expect(() => outsider.dispatchEvent(new CustomEvent('x'))).toThrow(expect.objectContaining({ code: 'ERR_IROH_CONNECTION_CLOSED' }))
  })

  it('an allow function may be async, and revoking closes that spoke and not the others', async () => {
    const asked = []
    const { hub, spokeEps, spokes, admitted } = await hubWithSpokes(2, {
      allow: async (nodeId) => {
        asked.push(nodeId)
        return true
      },
    })
    const [a, b] = spokeEps.map((ep) => ep.nodeId())
    await greet(admitted, spokes[0], a)
    const targetB = await greet(admitted, spokes[1], b)
    expect(asked.sort()).toEqual([a, b].sort())
    hub.revoke(a)
    const info = await within(spokes[0].closed, 10_000, 'revoked spoke closes')
    expect(info).toMatchObject({ code: HubCloseCode.REVOKED, kind: 'remote' })
    expect(info.error.code).toBe('ERR_IROH_REFUSED')
    expect(hub.denied).toEqual([a])
    expect(hub.spokes).toEqual([b])
    const still = collect(targetB, 'still', 1)
    spokes[1].dispatchEvent(new CustomEvent('still', { detail: 'here' }))
    expect(await within(still, 10_000, 'other spoke')).toEqual(['here'])
    expect(spokes[1].state).toBe('connected')
  })

  it('broadcast reaches 20 spokes, each event once and in order', async () => {
    const { hub, spokeEps, spokes, admitted } = await hubWithSpokes(20)
    await Promise.all(spokes.map((s, i) => greet(admitted, s, spokeEps[i].nodeId())))
    const N = 200
    const received = spokes.map((s) => collect(s, 'news', N))
    let queued = 0
    for (let i = 0; i < N; i++) queued += hub.broadcast('news', { i })
    expect(queued).toBe(20 * N)
    const expected = Array.from({ length: N }, (_, i) => ({ i }))
    for (const got of await within(Promise.all(received), 20_000, 'broadcasts')) expect(got).toEqual(expected)
    // Nothing more arrives: each event came once.
    await Promise.all(spokes.map((s) => s.flush()))
    const extra = []
    for (const s of spokes) s.addEventListener('news', (e) => extra.push(e.detail))
    const marker = spokes.map((s) => collect(s, 'end', 1))
    hub.broadcast('end')
    await within(Promise.all(marker), 10_000, 'end marker')
    expect(extra).toEqual([])
  })

  it("broadcasts and the hub's own events to one spoke, in one tick, keep their order", async () => {
    const { hub, spokeEps, spokes, admitted } = await hubWithSpokes(2)
    await Promise.all(spokes.map((s, i) => greet(admitted, s, spokeEps[i].nodeId())))
    const toFirst = await admitted(spokeEps[0].nodeId())
    const received = [collect(spokes[0], 'news', 7), collect(spokes[1], 'news', 5)]
    await recordingHandOvers(async (handed) => {
      hub.broadcast('news', 'b1')
      hub.broadcast('news', 'b2')
      toFirst.dispatchEvent(new CustomEvent('news', { detail: 'own1' }))
      hub.broadcast('news', 'b3')
      const news = (...details) => details.map((detail) => ({ type: 'news', detail }))
      // Staged so far: b1 and b2 went over when own1 came, own1 when b3 did; b3 is staged.
      const before = [
        { to: 2, details: news('b1', 'b2') },
        { to: 1, details: news('own1') },
      ]
      expect(handed).toEqual(before)
      // Reading bufferedAmount hands over what is staged; order holds across it.
      const buffered = toFirst.bufferedAmount
      expect(Number.isInteger(buffered) && buffered >= 0).toBe(true)
      expect(handed).toEqual([...before, { to: 2, details: news('b3') }])
      hub.broadcast('news', 'b4')
      toFirst.dispatchEvent(new CustomEvent('news', { detail: 'own2' }))
      hub.broadcast('news', 'b5')
      await new Promise((resolve) => setImmediate(resolve))
      // b4 started a run of its own, after b3: not staged behind anything handed over.
      expect(handed.filter((h) => h.details.some((d) => d?.type === 'news'))).toEqual([
        ...before,
        { to: 2, details: news('b3') },
        { to: 2, details: news('b4') },
        { to: 1, details: news('own2') },
        { to: 2, details: news('b5') },
      ])
    })
    const [first, second] = await within(Promise.all(received), 10_000, 'broadcasts')
    expect(first).toEqual(['b1', 'b2', 'own1', 'b3', 'b4', 'own2', 'b5'])
    expect(second).toEqual(['b1', 'b2', 'b3', 'b4', 'b5'])
  })

  for (const acks of [false, true]) {
    it(`broadcast past a spoke's send buffer: ${acks ? 'kept and sent once it drains' : 'each refusal reported, the rest delivered in order'} (acks ${acks})`, async () => {
      const { hub, spokeEps, spokes, admitted } = await hubWithSpokes(2, { acks, eventTarget: { maxBufferedBytes: 4096 } })
      await Promise.all(spokes.map((s, i) => greet(admitted, s, spokeEps[i].nodeId())))
      const refusals = []
      hub.addEventListener('error', (e) => refusals.push(e.detail))
      const received = spokes.map(() => [])
      spokes.forEach((s, i) => {
        s.addEventListener('news', (e) => received[i].push(e.detail.i))
      })
      const N = 300
      const detail = 'z'.repeat(1000)
      // One synchronous burst: the writer cannot keep a 4 KiB buffer from filling.
      let queued = 0
      for (let i = 0; i < N; i++) queued += hub.broadcast('news', { i, detail })
      expect(queued + refusals.length).toBe(2 * N)
      for (const r of refusals) expect(r.error.code).toBe('ERR_IROH_BUFFER_FULL')
      if (acks) expect(refusals).toEqual([])
      else expect(refusals.length).toBeGreaterThan(0)
      const ends = spokes.map((s) => collect(s, 'end', 1))
      // After the burst, with room again: the end marker follows everything taken.
      await Promise.all(spokeEps.map(async (ep) => (await admitted(ep.nodeId())).flush()))
      hub.broadcast('end')
      await within(Promise.all(ends), 20_000, 'the end marker')
      const accepted = received.map((got) => got.length).reduce((a, b) => a + b, 0)
      expect(accepted).toBe(queued)
      for (const got of received) {
        // In order, none twice; with acknowledged delivery, all of them.
        expect(got).toEqual([...got].sort((a, b) => a - b))
        expect(new Set(got).size).toBe(got.length)
        if (acks) expect(got).toHaveLength(N)
      }
    })
  }

  it('close() returns at once with spokes that never sent anything', async () => {
    const { hub, spokeEps, admitted } = await hubWithSpokes(2)
    await Promise.all(spokeEps.map((ep) => within(admitted(ep.nodeId()), 10_000, 'admission')))
    expect(hub.spokes).toHaveLength(2)
    await within(hub.close(), 10_000, 'hub.close()')
    expect(hub.spokes).toEqual([])
    expect(() => hub.broadcast('late')).toThrow(expect.objectContaining({ code: 'ERR_IROH_CONNECTION_CLOSED' }))
  })

  it('a spoke that only listens gets every broadcast', async () => {
    const { hub, spokes, spokeEps, admitted } = await hubWithSpokes(1)
    await within(admitted(spokeEps[0].nodeId()), 10_000, 'admission')
    const got = collect(spokes[0], 'news', 5)
    for (let i = 1; i <= 5; i++) expect(hub.broadcast('news', i)).toBe(1)
    expect(await within(got, 10_000, 'broadcasts')).toEqual([1, 2, 3, 4, 5])
  })

  it('broadcast and held events use the configured serializer', async () => {
    // Output that JSON.parse would reject: a peer with this parse closes on plain JSON.
    const serializer = { stringify: (v) => `v1:${JSON.stringify(v)}`, parse: (s) => JSON.parse(s.slice(3)) }
    const hubEp = await endpoint({ alpns: [ALPN] })
    const hub = createHub(hubEp, { alpn: ALPN, eventTarget: { serializer } })
    cleanups.push(() => hub.close())
    const arrived = new Promise((resolve) => hub.addEventListener('spoke', (e) => resolve(e.detail.target)))
    const spoke = connectSpoke(await endpoint(), hubEp.ticket(), { ...FAST, eventTarget: { serializer } })
    cleanups.push(() => spoke.close())
    // Dispatched before the first connection: held, then sent.
    spoke.dispatchEvent(new CustomEvent('held', { detail: { n: 1 } }))
    const target = await within(arrived, 10_000, 'admission')
    const held = collect(target, 'held', 1)
    expect(await within(held, 10_000, 'the held event')).toEqual([{ n: 1 }])
    const news = collect(spoke, 'news', 2)
    hub.broadcast('news', 'a')
    hub.broadcast('news', { b: [2] })
    expect(await within(news, 10_000, 'broadcasts')).toEqual(['a', { b: [2] }])
    expect(spoke.state).toBe('connected')
    expect(target.isClosed).toBe(false)
  })

  it('checks its arguments', async () => {
    const ep = await endpoint({ alpns: [ALPN] })
    expect(() => createHub({}, { alpn: ALPN })).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_ARGUMENT' }))
    expect(() => createHub(ep, {})).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_ALPN' }))
    expect(() => createHub(ep, { alpn: ALPN, allow: 'everyone' })).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_ARGUMENT' }))
    expect(() => createHub(ep, { alpn: ALPN, deny: ['not a node id'] })).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_NODE_ID' }))
    expect(() => connectSpoke(ep, 'x', { alpn: ALPN, maxDelayMs: -1 })).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_ARGUMENT' }))
  })
})

/** The ticket of a hub endpoint that has closed: nothing answers there. */
async function goneHubTicket() {
  const gone = await endpoint({ alpns: [ALPN] })
  const ticket = gone.ticket()
  await gone.close()
  return ticket
}

describe('reconnecting spoke', () => {
  it('holds events while the hub is away, up to a bound with a coded error', async () => {
    const spoke = connectSpoke(await endpoint(), await goneHubTicket(), { ...FAST, connectTimeoutMs: 500, maxPendingBytes: 1000 })
    cleanups.push(() => spoke.close())
    const detail = 'y'.repeat(90)
    const size = Buffer.byteLength(JSON.stringify({ type: 'x', detail }))
    let sent = 0
    let refused = null
    while (!refused) {
      try {
        spoke.dispatchEvent(new CustomEvent('x', { detail }))
        sent++
      } catch (err) {
        refused = err
      }
    }
    expect(refused.code).toBe('ERR_IROH_BUFFER_FULL')
    expect(sent).toBe(Math.floor(1000 / size))
    expect(spoke.bufferedAmount).toBe(sent * size)
    expect(['connecting', 'disconnected']).toContain(spoke.state)
  })

  it('onConnect runs on every connection: its events go first, then held ones, then connected', async () => {
    const hubEp = await endpoint({ alpns: [ALPN] })
    const hub = createHub(hubEp, { alpn: ALPN })
    cleanups.push(() => hub.close())
    // The first three events each hub-side target receives, per connection.
    const connections = [deferred(), deferred()]
    let admitted = 0
    hub.addEventListener('spoke', (e) => {
      const { resolve } = connections[admitted++]
      const got = []
      for (const type of ['register', 'held', 'live']) {
        e.detail.target.addEventListener(type, (ev) => got.push([type, ev.detail]) === 3 && resolve(got))
      }
    })
    const seenStates = []
    let registrations = 0
    const spoke = connectSpoke(await endpoint(), hubEp.ticket(), {
      ...FAST,
      onConnect(s) {
        seenStates.push(s.state)
        s.dispatchEvent(new CustomEvent('register', { detail: ++registrations }))
      },
    })
    cleanups.push(() => spoke.close())
    spoke.dispatchEvent(new CustomEvent('held', { detail: 'before the first connection' }))
    await within(stateIs(spoke, 'connected'), 10_000, 'the first connection')
    spoke.dispatchEvent(new CustomEvent('live', { detail: 1 }))
    expect(await within(connections[0].promise, 10_000, 'first connection')).toEqual([['register', 1], ['held', 'before the first connection'], ['live', 1]])
    // The hub drops the connection (a code the spoke redials after).
    const left = stateIs(spoke, 'disconnected')
    hub.spoke(hub.spokes[0]).connection.close(4000, 'bounce')
    await within(left, 10_000, 'the drop')
    spoke.dispatchEvent(new CustomEvent('held', { detail: 'while away' }))
    await within(stateIs(spoke, 'connected'), 10_000, 'the second connection')
    spoke.dispatchEvent(new CustomEvent('live', { detail: 2 }))
    expect(await within(connections[1].promise, 10_000, 'second connection')).toEqual([['register', 2], ['held', 'while away'], ['live', 2]])
    expect(seenStates).toEqual(['connecting', 'connecting'])
  })

  it('gives up after maxAttempts with ERR_IROH_CONNECT', async () => {
    const spoke = connectSpoke(await endpoint(), await goneHubTicket(), { ...FAST, connectTimeoutMs: 300, maxAttempts: 2 })
    const info = await within(spoke.closed, 10_000, 'giving up')
    expect(info.error.code).toBe('ERR_IROH_CONNECT')
    expect(spoke.state).toBe('closed')
  })

  it('rides out a hub killed with SIGKILL and restarted from its key file: nothing lost, nothing twice', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'alkdev-hub-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const keyPath = path.join(dir, 'hub.key')
    const first = startHub(keyPath, '127.0.0.1:0')
    const ready = await within(first.next('ready'), 20_000, 'hub ready')
    const ep = await endpoint({ idleTimeoutMs: 1_500, keepAliveMs: 250 })
    const spoke = connectSpoke(ep, ready.ticket, { ...FAST, connectTimeoutMs: 1_000 })
    cleanups.push(() => spoke.close())
    // The listeners stay put across connections: each hub process greets once.
    const firstHello = collect(spoke, 'hub.hello', 1)
    const bothHellos = collect(spoke, 'hub.hello', 2)

    for (let i = 0; i < 50; i++) spoke.dispatchEvent(new CustomEvent('e', { detail: i }))
    expect(await within(first.events(50), 20_000, 'events before the kill')).toEqual(range(0, 50))
    expect(await within(firstHello, 10_000, 'first hello')).toEqual([{ pid: first.child.pid }])
    // The hub has acknowledged all 50: a crash now cannot make it see them twice.
    await within(spoke.flush({ acked: true }), 10_000, 'acknowledgements')

    first.child.kill('SIGKILL')
    await within(stateIs(spoke, 'disconnected'), 20_000, 'spoke notices the hub is gone')
    for (let i = 50; i < 100; i++) spoke.dispatchEvent(new CustomEvent('e', { detail: i }))

    const port = ready.addr.directAddresses[0].split(':').pop()
    const second = startHub(keyPath, `127.0.0.1:${port}`)
    expect((await within(second.next('ready'), 20_000, 'hub restarted')).nodeId).toBe(ready.nodeId)
    expect(await within(second.events(50), 30_000, 'events after the restart')).toEqual(range(50, 100))
    expect(await within(bothHellos, 10_000, 'second hello')).toEqual([{ pid: first.child.pid }, { pid: second.child.pid }])
    expect(spoke.state).toBe('connected')
    await spoke.close()
    second.child.stdin.end()
    expect(await within(second.exited, 10_000, 'hub exits')).toBe(0)
    expect(second.extra()).toEqual([]) // nothing arrived twice
  })
})

function deferred() {
  let resolve
  const promise = new Promise((r) => (resolve = r))
  return { promise, resolve }
}

const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i)

function startHub(secretKeyPath, bindAddr) {
  const hub = startHubProcess({ secretKeyPath, bindAddr, alpn: ALPN })
  cleanups.push(() => hub.child.exitCode === null && hub.child.kill('SIGKILL'))
  return hub
}
