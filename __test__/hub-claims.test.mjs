// README claims about the hub and the reconnecting spoke that no other test checked
// (issue 31, "Claims with no test"): one test per claim, each on loopback with relays off.
import { afterEach, describe, expect, it } from 'vitest'
import { HubCloseCode, connectSpoke, createHub, createSpokeIrohEventTarget } from '../lib/index.mjs'
import { ALPN, closeAll, collect, endpoint, frame, stateIs, within } from './helpers.mjs'

// The pump's close code for a failed stream (STREAM_ERROR in lib/close-codes.js,
// which the package does not export).
const STREAM_ERROR = 4004
const FAST = { alpn: ALPN, initialDelayMs: 20, maxDelayMs: 200, connectTimeoutMs: 2_000 }
const cleanups = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
  await closeAll()
})

/** Resolves with the detail of the next `type` event on the hub. */
function next(hub, type) {
  return new Promise((resolve) => hub.addEventListener(type, (e) => resolve(e.detail), { once: true }))
}

/**
 * Resolves with the next admitted spoke, `{ nodeId, target, got }`: `got` resolves with the
 * first `count` events of `type` on its target, listened for from its admission on.
 */
function nextAdmitted(hub, type, count = 1) {
  return new Promise((resolve) =>
    hub.addEventListener('spoke', (e) => resolve({ ...e.detail, got: collect(e.detail.target, type, count) }), { once: true }),
  )
}

/** A hub on a fresh loopback endpoint, closed after the test. */
async function startHub(options = {}) {
  const hubEp = await endpoint({ alpns: [ALPN] })
  const hub = createHub(hubEp, { alpn: ALPN, ...options })
  cleanups.push(() => hub.close())
  return { hub, hubEp }
}

/**
 * A plain-protocol dialer (no acknowledged delivery) from `ep`: it says hello, and resolves
 * once the hub's target for it has received that hello.
 */
async function plainSpoke(hub, hubEp, ep, hello) {
  const admitted = nextAdmitted(hub, 'hi')
  const conn = await within(ep.connect(hubEp.addr(), ALPN, { timeoutMs: 10_000 }), 10_000, 'dial')
  const target = await createSpokeIrohEventTarget(conn)
  cleanups.push(() => target.close().catch(() => {}))
  target.dispatchEvent(new CustomEvent('hi', { detail: hello }))
  const { nodeId, target: hubTarget, got } = await within(admitted, 10_000, 'admission')
  expect(await within(got, 10_000, 'hello')).toEqual([hello])
  return { conn, target, nodeId, hubTarget }
}

/** A reconnecting spoke on a fresh endpoint, with its hub-side target once admitted. */
async function spokeOf(hub, hubEp, options = {}) {
  const ep = await endpoint()
  const admitted = next(hub, 'spoke')
  const spoke = connectSpoke(ep, hubEp.ticket(), { ...FAST, ...options })
  cleanups.push(() => spoke.close())
  await within(stateIs(spoke, 'connected'), 10_000, 'the spoke connects')
  const { target } = await within(admitted, 10_000, 'admission')
  return { ep, spoke, target }
}

describe('hub claims', () => {
  it('a node id that connects again replaces its older connection: 4102 on the old one, hub.spoke() is the new target', async () => {
    const { hub, hubEp } = await startHub()
    const ep = await endpoint()
    const first = await plainSpoke(hub, hubEp, ep, 1)
    expect(first.nodeId).toBe(ep.nodeId())
    expect(hub.spoke(ep.nodeId())).toBe(first.hubTarget)
    const dropped = next(hub, 'disconnect')
    const second = await plainSpoke(hub, hubEp, ep, 2)
    // The first connection's side hears why.
    expect(await within(first.target.closed, 10_000, 'the old connection closes')).toMatchObject({ code: HubCloseCode.REPLACED, kind: 'remote' })
    expect(await within(dropped, 10_000, 'the disconnect event')).toMatchObject({ nodeId: ep.nodeId(), code: HubCloseCode.REPLACED, kind: 'local' })
    expect(hub.spoke(ep.nodeId())).toBe(second.hubTarget)
    expect(second.hubTarget).not.toBe(first.hubTarget)
    expect(hub.spokes).toEqual([ep.nodeId()])
    // The new connection is live in both directions.
    const answer = collect(second.target, 'answer', 1)
    hub.spoke(ep.nodeId()).dispatchEvent(new CustomEvent('answer', { detail: 'to the new one' }))
    expect(await within(answer, 10_000, 'answer on the new connection')).toEqual(['to the new one'])
    expect(second.target.isClosed).toBe(false)
  })

  it('deny (an array of node ids) refuses that node id with 4100; restore() lets it in again', async () => {
    const ep = await endpoint()
    const nodeId = ep.nodeId()
    const { hub, hubEp } = await startHub({ deny: [nodeId] })
    expect(hub.denied).toEqual([nodeId])
    const refused = next(hub, 'refused')
    const denied = connectSpoke(ep, hubEp.ticket(), FAST)
    cleanups.push(() => denied.close())
    const info = await within(denied.closed, 10_000, 'refusal')
    expect(info).toMatchObject({ code: HubCloseCode.REFUSED, kind: 'remote', reason: 'node id not allowed' })
    expect(info.error.code).toBe('ERR_IROH_REFUSED')
    expect(await within(refused, 10_000, 'refused event')).toEqual({ nodeId, code: HubCloseCode.REFUSED, reason: 'node id not allowed' })
    expect(hub.spokes).toEqual([])

    hub.restore(nodeId)
    expect(hub.denied).toEqual([])
    const admitted = nextAdmitted(hub, 'back')
    const again = connectSpoke(ep, hubEp.ticket(), FAST)
    cleanups.push(() => again.close())
    again.dispatchEvent(new CustomEvent('back', { detail: nodeId }))
    const spoke = await within(admitted, 10_000, 'admission after restore')
    expect(spoke.nodeId).toBe(nodeId)
    expect(await within(spoke.got, 10_000, 'event after restore')).toEqual([nodeId])
    await within(stateIs(again, 'connected'), 10_000, 'connected after restore')
    expect(hub.spokes).toEqual([nodeId])
  })

  it('revoke() closes a live spoke with 4101 and refuses it later, whatever allow says; restore() lets allow decide again', async () => {
    const ep = await endpoint()
    const nodeId = ep.nodeId()
    const { hub, hubEp } = await startHub({ allow: new Set([nodeId]) })
    const first = await plainSpoke(hub, hubEp, ep, 'first')
    hub.revoke(nodeId)
    expect(await within(first.target.closed, 10_000, 'the revoked spoke closes')).toMatchObject({ code: HubCloseCode.REVOKED, kind: 'remote', reason: 'revoked' })
    expect(await within(first.hubTarget.closed, 10_000, 'the hub side closes')).toMatchObject({ code: HubCloseCode.REVOKED, kind: 'local' })
    expect(hub.denied).toEqual([nodeId])
    expect(hub.spokes).toEqual([])
    expect(hub.spoke(nodeId)).toBeUndefined()

    // Still in the allow Set, but denied: its next connection is refused before any stream.
    const refused = next(hub, 'refused')
    const again = connectSpoke(ep, hubEp.ticket(), FAST)
    cleanups.push(() => again.close())
    const info = await within(again.closed, 10_000, 'refusal after revoke')
    expect(info).toMatchObject({ code: HubCloseCode.REFUSED, kind: 'remote', reason: 'node id not allowed' })
    expect(info.error.code).toBe('ERR_IROH_REFUSED')
    expect(await within(refused, 10_000, 'refused event')).toEqual({ nodeId, code: HubCloseCode.REFUSED, reason: 'node id not allowed' })

    // Restored: the allow Set decides, and admits it.
    hub.restore(nodeId)
    expect(hub.denied).toEqual([])
    const back = await plainSpoke(hub, hubEp, ep, 'back')
    expect(back.nodeId).toBe(nodeId)
    expect(hub.spokes).toEqual([nodeId])
    expect(hub.spoke(nodeId)).toBe(back.hubTarget)
  })

  it('an allow Set is read live: a node id added after createHub is admitted, one deleted is refused', async () => {
    const allow = new Set()
    const { hub, hubEp } = await startHub({ allow })
    const ep = await endpoint()
    const nodeId = ep.nodeId()

    // Not in the Set yet: refused.
    const firstRefusal = next(hub, 'refused')
    const early = connectSpoke(ep, hubEp.ticket(), FAST)
    cleanups.push(() => early.close())
    expect(await within(early.closed, 10_000, 'refusal before add')).toMatchObject({ code: HubCloseCode.REFUSED, kind: 'remote' })
    expect(await within(firstRefusal, 10_000, 'refused event')).toEqual({ nodeId, code: HubCloseCode.REFUSED, reason: 'node id not allowed' })

    // Added after createHub: admitted.
    allow.add(nodeId)
    const admitted = next(hub, 'spoke')
    const member = connectSpoke(ep, hubEp.ticket(), FAST)
    cleanups.push(() => member.close())
    await within(stateIs(member, 'connected'), 10_000, 'admitted after add')
    expect((await within(admitted, 10_000, 'spoke event')).nodeId).toBe(nodeId)
    await within(member.close(), 10_000, 'member closes')

    // Deleted: its next connection is refused.
    allow.delete(nodeId)
    const secondRefusal = next(hub, 'refused')
    const late = connectSpoke(ep, hubEp.ticket(), FAST)
    cleanups.push(() => late.close())
    expect(await within(late.closed, 10_000, 'refusal after delete')).toMatchObject({ code: HubCloseCode.REFUSED, kind: 'remote' })
    expect(await within(secondRefusal, 10_000, 'refused event')).toEqual({ nodeId, code: HubCloseCode.REFUSED, reason: 'node id not allowed' })
  })

  it('a spoke gone past sessionTtlMs with events unacknowledged: the hub reports error { nodeId, error, undelivered }', async () => {
    const sessionTtlMs = 300
    const { hub, hubEp } = await startHub({ sessionTtlMs })
    const { ep, spoke, target } = await spokeOf(hub, hubEp, { maxAttempts: 1 })
    const nodeId = ep.nodeId()
    const errors = []
    hub.addEventListener('error', (e) => errors.push({ at: performance.now(), detail: e.detail }))
    const reported = next(hub, 'error')
    const gone = next(hub, 'disconnect').then((detail) => ({ at: performance.now(), detail }))
    // The spoke vanishes on the first event, inside its listener: before it acknowledges
    // anything (acknowledgements leave after the batch, or 20 ms later), and for good.
    let seen = 0
    spoke.addEventListener('e', () => {
      if (seen++ > 0) return
      spoke.connection.close(4000, 'gone')
      ep.close()
    })
    for (let i = 0; i < 5; i++) target.dispatchEvent(new CustomEvent('e', { detail: i }))
    const left = await within(gone, 10_000, 'the hub sees the spoke go')
    expect(left.detail.nodeId).toBe(nodeId)
    const detail = await within(reported, sessionTtlMs + 10_000, 'the lost-session error')
    const at = performance.now()
    expect(seen).toBeGreaterThan(0)
    expect(detail.nodeId).toBe(nodeId)
    expect(detail.error.code).toBe('ERR_IROH_CONNECTION_CLOSED')
    // The spoke closed inside its first listener, before any acknowledgement left: all five.
    expect(detail.undelivered).toBe(5)
    // Not before the TTL ran out (timers may fire a little early on a busy machine).
    expect(at - left.at).toBeGreaterThanOrEqual(sessionTtlMs - 20)
    expect(errors).toHaveLength(1)
  })

  it('the listener { signal } option: after abort() that listener is silent while others still get events', async () => {
    const { hub, hubEp } = await startHub()
    const { spoke, target } = await spokeOf(hub, hubEp)
    for (const [receiver, send] of [
      // The hub's target for the spoke, fed by the spoke.
      [target, (detail) => spoke.dispatchEvent(new CustomEvent('e', { detail }))],
      // The reconnecting spoke, fed by the hub.
      [spoke, (detail) => target.dispatchEvent(new CustomEvent('e', { detail }))],
    ]) {
      const controller = new AbortController()
      const aborted = []
      receiver.addEventListener('e', (e) => aborted.push(e.detail), { signal: controller.signal })
      const first = collect(receiver, 'e', 1)
      send(1)
      expect(await within(first, 10_000, 'first event')).toEqual([1])
      expect(aborted).toEqual([1])
      controller.abort()
      const later = collect(receiver, 'e', 2)
      send(2)
      send(3)
      expect(await within(later, 10_000, 'events after abort')).toEqual([2, 3])
      expect(aborted).toEqual([1])
    }
  })

  it('close codes as the peer sees them: 4104 when the hub closes', async () => {
    const { hub, hubEp } = await startHub()
    const { target, hubTarget } = await plainSpoke(hub, hubEp, await endpoint(), 'plain')
    await within(hub.close(), 10_000, 'hub.close()')
    expect(await within(target.closed, 10_000, 'the spoke target closes')).toMatchObject({ code: HubCloseCode.CLOSING, kind: 'remote', reason: 'hub closing' })
    expect(hubTarget.isClosed).toBe(true)
  })

  it('close codes as the peer sees them: 4004 when the peer resets its stream', async () => {
    const { hub, hubEp } = await startHub()
    const admitted = nextAdmitted(hub, 'e')
    const conn = await within((await endpoint()).connect(hubEp.addr(), ALPN, { timeoutMs: 10_000 }), 10_000, 'dial')
    const { send } = await conn.openBi()
    await send.writeAll(frame({ type: 'e', detail: 'valid' }))
    const { target, got } = await within(admitted, 10_000, 'admission')
    expect(await within(got, 10_000, 'the valid frame')).toEqual(['valid'])
    await send.reset(1)
    const info = await within(target.closed, 10_000, 'the hub target closes')
    expect(info).toMatchObject({ code: STREAM_ERROR, kind: 'local' })
    expect(info.error.code).toBe('ERR_IROH_PROTOCOL')
    expect(await within(conn.closed(), 10_000, 'the peer sees the close')).toMatchObject({ code: STREAM_ERROR, kind: 'remote' })
  })

  it('close codes as the peer sees them: 4004 when the peer stops reading the stream', async () => {
    const { hub, hubEp } = await startHub()
    const admitted = nextAdmitted(hub, 'e')
    const conn = await within((await endpoint()).connect(hubEp.addr(), ALPN, { timeoutMs: 10_000 }), 10_000, 'dial')
    const { send, recv } = await conn.openBi()
    await send.writeAll(frame({ type: 'e', detail: 'valid' }))
    const { target, got } = await within(admitted, 10_000, 'admission')
    expect(await within(got, 10_000, 'the valid frame')).toEqual(['valid'])
    // The hub answers each ping; its write after the stop fails.
    target.addEventListener('ping', () => target.dispatchEvent(new CustomEvent('pong')))
    await recv.stop(1)
    await send.writeAll(frame({ type: 'ping' }))
    const info = await within(target.closed, 10_000, 'the hub target closes')
    expect(info).toMatchObject({ code: STREAM_ERROR, kind: 'local' })
    expect(info.error.code).toBe('ERR_IROH_STREAM_STOPPED')
    expect(await within(conn.closed(), 10_000, 'the peer sees the close')).toMatchObject({ code: STREAM_ERROR, kind: 'remote' })
  })
})

describe('reconnecting spoke claims', () => {
  it('an async onConnect: what it dispatches before and after an await goes ahead of held events; connected only once it settles', async () => {
    const { hub, hubEp } = await startHub()
    const got = []
    const arrived = new Promise((resolve) =>
      hub.addEventListener('spoke', (e) => {
        for (const type of ['register', 'held']) {
          e.detail.target.addEventListener(type, (ev) => got.push([type, ev.detail]) === 4 && resolve(got))
        }
      }),
    )
    let settled = false
    const statesInside = []
    const spoke = connectSpoke(await endpoint(), hubEp.ticket(), {
      ...FAST,
      async onConnect(s) {
        s.dispatchEvent(new CustomEvent('register', { detail: 'before the await' }))
        statesInside.push(s.state)
        // Work the application does before it is ready, such as reading a file.
        await new Promise((resolve) => setTimeout(resolve, 50))
        statesInside.push(s.state)
        s.dispatchEvent(new CustomEvent('register', { detail: 'after the await' }))
        settled = true
      },
    })
    cleanups.push(() => spoke.close())
    const connected = new Promise((resolve) =>
      spoke.lifecycle.addEventListener('statechange', (e) => e.detail.state === 'connected' && resolve(settled)),
    )
    spoke.dispatchEvent(new CustomEvent('held', { detail: 1 }))
    spoke.dispatchEvent(new CustomEvent('held', { detail: 2 }))
    expect(await within(connected, 10_000, 'connected'), 'onConnect had settled when the state became connected').toBe(true)
    expect(await within(arrived, 10_000, 'the events')).toEqual([
      ['register', 'before the await'],
      ['register', 'after the await'],
      ['held', 1],
      ['held', 2],
    ])
    expect(statesInside).toEqual(['connecting', 'connecting'])
  })

  it('an onConnect that throws is reported as error on spoke.lifecycle, and the spoke still connects', async () => {
    const { hub, hubEp } = await startHub()
    const got = new Promise((resolve) => hub.addEventListener('spoke', (e) => resolve(collect(e.detail.target, 'held', 1))))
    const boom = new Error('onConnect failed')
    const spoke = connectSpoke(await endpoint(), hubEp.ticket(), {
      ...FAST,
      async onConnect() {
        await Promise.resolve()
        throw boom
      },
    })
    cleanups.push(() => spoke.close())
    const errors = []
    spoke.lifecycle.addEventListener('error', (e) => errors.push(e.detail))
    const reported = new Promise((resolve) => spoke.lifecycle.addEventListener('error', (e) => resolve(e.detail), { once: true }))
    spoke.dispatchEvent(new CustomEvent('held', { detail: 'still delivered' }))
    expect(await within(reported, 10_000, 'the error event')).toBe(boom)
    await within(stateIs(spoke, 'connected'), 10_000, 'connected despite the throw')
    expect(await within(got, 10_000, 'the held event')).toEqual(['still delivered'])
    expect(spoke.state).toBe('connected')
    expect(errors).toEqual([boom])
  })
})
