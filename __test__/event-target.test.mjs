import { afterEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createPubSub } from '@graphql-yoga/subscription'
import { createHubIrohEventTarget, createSpokeIrohEventTarget } from '../lib/index.mjs'
import { ALPN, closeAll, dispatchAll, endpoint, fillUntilStalled, frame, orListenerError, pair, readFrame, within } from './helpers.mjs'

afterEach(closeAll)

async function targets(options = {}) {
  const p = await pair()
  const spoke = await within(createSpokeIrohEventTarget(p.clientConn, options.spoke), 10_000, 'createSpokeIrohEventTarget')
  const hub = await within(createHubIrohEventTarget(p.serverConn, options.hub), 10_000, 'createHubIrohEventTarget')
  return { ...p, spoke, hub }
}

/**
 * Collects `count` events of the given types from `target`, in arrival order. Rejects with
 * the error of a listener of `target` that failed (the `expect` here, or the test's own),
 * unless `listenerErrors` is false (a test that makes its listeners throw).
 */
function collect(target, types, count, { listenerErrors = true } = {}) {
  const got = []
  const collected = new Promise((resolve) => {
    for (const type of types) {
      target.addEventListener(type, (event) => {
        expect(event).toBeInstanceOf(CustomEvent)
        got.push([event.type, event.detail])
        if (got.length === count) resolve(got)
      })
    }
  })
  return listenerErrors ? orListenerError(collected, target) : collected
}

describe('hub and spoke event targets', () => {
  it('carry 100k events of many types both ways, in order, none lost', async () => {
    const { spoke, hub } = await targets()
    const N = 100_000
    const types = ['call.requested', 'call.responded', 'ping', 'ünïcødé ✓', '']
    const make = (from) => Array.from({ length: N }, (_, i) => [types[i % types.length], { from, i, args: [1, 'two', { three: 3 }] }])
    const toHub = make('spoke')
    const toSpoke = make('hub')
    const atHub = collect(hub, types, N)
    const atSpoke = collect(spoke, types, N)
    await within(Promise.all([dispatchAll(spoke, toHub), dispatchAll(hub, toSpoke)]), 60_000, 'dispatching both ways')
    expect(await within(atHub, 60_000, 'hub receiving')).toEqual(toHub)
    expect(await within(atSpoke, 60_000, 'spoke receiving')).toEqual(toSpoke)
  })

  it('delivers a missing detail as null, supports handleEvent objects, once and removal', async () => {
    const { spoke, hub, clientConn, server } = await targets()
    // A raw frame without `detail`, written on the spoke's own stream is not possible
    // here, so check the event shape through normal dispatch plus listener options.
    const seen = []
    const object = { handleEvent: (e) => seen.push(['object', e.detail]) }
    const once = (e) => seen.push(['once', e.detail])
    const removed = (e) => seen.push(['removed', e.detail])
    hub.addEventListener('t', object)
    hub.addEventListener('t', once, { once: true })
    hub.addEventListener('t', removed)
    hub.removeEventListener('t', removed)
    const done = new Promise((resolve) => hub.addEventListener('end', resolve))
    spoke.dispatchEvent(new CustomEvent('t', { detail: 1 }))
    spoke.dispatchEvent(new CustomEvent('t'))
    spoke.dispatchEvent(new Event('end'))
    await within(done, 10_000, 'end event')
    expect(seen).toEqual([['object', 1], ['once', 1], ['object', null]])
    expect(clientConn.remoteNodeId()).toBe(server.nodeId())
  })

  it('dispatchEvent sends and does not deliver locally', async () => {
    const { spoke, hub } = await targets()
    let local = 0
    spoke.addEventListener('x', () => local++)
    const arrived = new Promise((resolve) => hub.addEventListener('x', (e) => resolve(e.detail)))
    expect(spoke.dispatchEvent(new CustomEvent('x', { detail: 'hi' }))).toBe(true)
    expect(await within(arrived, 10_000, 'x')).toBe('hi')
    expect(local).toBe(0)
  })

  it('is a drop-in eventTarget for createPubSub, both directions', async () => {
    const { spoke, hub } = await targets()
    const spokePubSub = createPubSub({ eventTarget: spoke })
    const hubPubSub = createPubSub({ eventTarget: hub })

    const hubSide = hubPubSub.subscribe('call.requested')[Symbol.asyncIterator]()
    const firstAtHub = hubSide.next()
    spokePubSub.publish('call.requested', { id: 'a1', op: 'echo' })
    expect((await within(firstAtHub, 10_000, 'hub subscribe')).value).toEqual({ id: 'a1', op: 'echo' })

    const spokeSide = spokePubSub.subscribe('call.responded', 'a1')[Symbol.asyncIterator]()
    const firstAtSpoke = spokeSide.next()
    hubPubSub.publish('call.responded', 'a1', { result: 42 })
    expect((await within(firstAtSpoke, 10_000, 'spoke subscribe')).value).toEqual({ result: 42 })
    await within(hubSide.return(), 10_000, 'hub subscription return()')
    await within(spokeSide.return(), 10_000, 'spoke subscription return()')
  })

  it('a burst of 100k published events reaches a createPubSub subscriber whole, in order, without overflow', async () => {
    const { spoke, hub } = await targets({ spoke: { maxBufferedBytes: 64 * 1024 * 1024 } })
    const N = 100_000
    const errors = []
    const onUncaught = (err) => errors.push(err)
    process.on('uncaughtException', onUncaught)
    try {
      const hubPubSub = createPubSub({ eventTarget: hub })
      const spokePubSub = createPubSub({ eventTarget: spoke })
      const iterator = hubPubSub.subscribe('call.requested')[Symbol.asyncIterator]()
      const received = (async () => {
        let expected = 0
        for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
          if (r.value.i !== expected) throw new Error(`event ${r.value.i} arrived where ${expected} was due`)
          if (++expected === N) break
        }
        await iterator.return()
        return expected
      })()
      // The subscription's listener is attached by the first next() above, which ran
      // synchronously; the events reach the hub over the network, in later tasks.
      for (let i = 0; i < N; i++) spokePubSub.publish('call.requested', { i, op: 'echo' })
      expect(await within(received, 60_000, 'burst')).toBe(N)
    } finally {
      process.off('uncaughtException', onUncaught)
    }
    expect(errors).toEqual([])
  })

  it('speaks the wire format with a raw-stream peer in both directions', async () => {
    const { clientConn, serverConn } = await pair()
    const hub = await within(createHubIrohEventTarget(serverConn), 10_000, 'createHubIrohEventTarget')
    const got = collect(hub, ['a', 'b'], 3)
    const { send, recv } = await clientConn.openBi()
    await within(
      send.writeAll(
        Buffer.concat([frame({ type: 'a', detail: { n: 1 } }), frame('{"type":"b"}'), frame({ detail: [1, 2], type: 'a', extra: true })]),
      ),
      10_000,
      'writeAll of raw frames',
    )
    expect(await within(got, 10_000, 'raw frames')).toEqual([['a', { n: 1 }], ['b', null], ['a', [1, 2]]])
    hub.dispatchEvent(new CustomEvent('reply', { detail: { ok: true, text: 'é' } }))
    hub.dispatchEvent(new CustomEvent('reply', { detail: 2 }))
    expect(await within(readFrame(recv), 10_000, 'frame')).toEqual({ type: 'reply', detail: { ok: true, text: 'é' } })
    expect(await within(readFrame(recv), 10_000, 'second frame')).toEqual({ type: 'reply', detail: 2 })
  })

  it('keeps order when one tick mixes small events, large ones and two targets', async () => {
    const a = await targets()
    const b = await targets()
    const big = (i) => `${i}:${'é'.repeat(100_000)}` // past what JS stages in one buffer
    const plan = []
    for (let i = 0; i < 3_000; i++) plan.push(i % 500 === 7 ? ['big', big(i)] : ['small', { i, text: 'ü✓'.repeat(i % 40) }])
    const gotA = collect(a.hub, ['small', 'big'], plan.length)
    const gotB = collect(b.hub, ['small', 'big'], plan.length)
    // One synchronous tick: the two targets take turns at the staging buffer.
    for (const [type, detail] of plan) {
      a.spoke.dispatchEvent(new CustomEvent(type, { detail }))
      b.spoke.dispatchEvent(new CustomEvent(type, { detail }))
    }
    expect(await within(gotA, 20_000, 'target a')).toEqual(plan)
    expect(await within(gotB, 20_000, 'target b')).toEqual(plan)
  })

  it('the hub may dispatch before the spoke has spoken: events wait for the stream', async () => {
    const { clientConn, serverConn } = await pair()
    const hub = await within(createHubIrohEventTarget(serverConn), 10_000, 'createHubIrohEventTarget')
    hub.dispatchEvent(new CustomEvent('welcome', { detail: 'early' }))
    const spoke = await within(createSpokeIrohEventTarget(clientConn), 10_000, 'createSpokeIrohEventTarget')
    const welcome = new Promise((resolve) => spoke.addEventListener('welcome', (e) => resolve(e.detail)))
    spoke.dispatchEvent(new CustomEvent('hello'))
    expect(await within(welcome, 10_000, 'welcome')).toBe('early')
  })

  it('a spoke that never dispatches hears the hub: the stream is announced at once', async () => {
    const { spoke, hub } = await targets()
    const got = collect(spoke, ['news'], 5)
    for (let i = 1; i <= 5; i++) hub.dispatchEvent(new CustomEvent('news', { detail: i }))
    expect(await within(got, 10_000, 'news on a listen-only spoke')).toEqual([1, 2, 3, 4, 5].map((i) => ['news', i]))
  })

  it('announcing the stream puts no byte on it: a raw hub peer sees only the frames sent', async () => {
    const { clientConn, serverConn } = await pair()
    const spoke = await within(createSpokeIrohEventTarget(clientConn), 10_000, 'createSpokeIrohEventTarget')
    // The raw peer learns of the stream although the spoke has sent nothing yet.
    const { send, recv } = await within(serverConn.acceptBi(), 10_000, 'the announced stream')
    const heard = collect(spoke, ['hello'], 1)
    await within(send.writeAll(frame({ type: 'hello', detail: 'from raw' })), 10_000, 'writeAll of a raw frame')
    expect(await within(heard, 10_000, 'raw frame')).toEqual([['hello', 'from raw']])
    spoke.dispatchEvent(new CustomEvent('reply', { detail: 1 }))
    await within(spoke.flush(), 10_000, 'flush')
    // The first bytes the raw peer reads are the one frame the spoke sent.
    expect(await within(readFrame(recv), 10_000, 'reply')).toEqual({ type: 'reply', detail: 1 })
    await within(spoke.close(), 10_000, 'close() of the spoke')
    expect(await within(readFrame(recv), 10_000, 'end of stream')).toBeNull()
  })

  it('uses a custom serializer', async () => {
    const serializer = {
      stringify: (v) => `v1:${JSON.stringify(v)}`,
      parse: (s) => JSON.parse(s.slice(3)),
    }
    const { spoke, hub } = await targets({ spoke: { serializer }, hub: { serializer } })
    const got = collect(hub, ['x'], 2)
    await within(dispatchAll(spoke, [['x', { a: 1 }], ['x', [2]]]), 10_000, 'dispatchAll')
    expect(await within(got, 10_000, 'custom')).toEqual([['x', { a: 1 }], ['x', [2]]])
  })

  it('a frame the custom parse rejects closes the connection with a protocol error', async () => {
    const serializer = {
      stringify: (v) => JSON.stringify(v),
      parse: (s) => {
        const v = JSON.parse(s)
        if (v.type === 'poison') throw new Error('refused')
        return v
      },
    }
    const { spoke, hub, clientConn } = await targets({ hub: { serializer } })
    const got = collect(hub, ['ok'], 1)
    spoke.dispatchEvent(new CustomEvent('ok', { detail: 1 }))
    spoke.dispatchEvent(new CustomEvent('poison'))
    spoke.dispatchEvent(new CustomEvent('ok', { detail: 'never' }))
    expect(await within(got, 10_000, 'event before the bad one')).toEqual([['ok', 1]])
    const info = await within(hub.closed, 10_000, 'hub closed')
    expect(info).toMatchObject({ code: 4002, kind: 'local' })
    expect(info.error).toMatchObject({ code: 'ERR_IROH_PROTOCOL' })
    expect(info.error.message).toMatch(/refused/)
    expect(await within(clientConn.closed(), 10_000, 'spoke side')).toMatchObject({ code: 4002, kind: 'remote' })
  })

  it('close() delivers what was dispatched, then closes both sides with code and reason', async () => {
    const { spoke, hub, serverConn } = await targets()
    const got = collect(hub, ['last'], 1000)
    for (let i = 0; i < 1000; i++) spoke.dispatchEvent(new CustomEvent('last', { detail: i }))
    const info = await within(spoke.close(7, 'done'), 10_000, 'close')
    expect(info).toEqual({ code: 7, reason: 'done', kind: 'local' })
    expect((await within(got, 10_000, 'events before close')).length).toBe(1000)
    expect(await within(hub.closed, 10_000, 'hub closed')).toEqual({ code: 7, reason: 'done', kind: 'remote' })
    expect(hub.isClosed).toBe(true)
    expect(serverConn.closeReason()).toMatchObject({ code: 7, kind: 'remote' })
    expect(() => spoke.dispatchEvent(new CustomEvent('late'))).toThrow(expect.objectContaining({ code: 'ERR_IROH_CONNECTION_CLOSED' }))
  })

  it('closing the connection closes the target, and the lifecycle target reports it', async () => {
    const { spoke, hub, clientConn } = await targets()
    const lifecycle = new Promise((resolve) => hub.lifecycle.addEventListener('close', (e) => resolve(e.detail)))
    spoke.dispatchEvent(new CustomEvent('hello'))
    clientConn.close(3, 'bye')
    expect(await within(lifecycle, 10_000, 'lifecycle close')).toEqual({ code: 3, reason: 'bye', kind: 'remote' })
    expect(await within(spoke.closed, 10_000, 'spoke closed')).toEqual({ code: 3, reason: 'bye', kind: 'local' })
  })

  it('an event larger than maxFrameBytes is refused with a coded error', async () => {
    const { spoke } = await targets({ spoke: { maxFrameBytes: 1024 } })
    expect(() => spoke.dispatchEvent(new CustomEvent('big', { detail: 'x'.repeat(2000) }))).toThrow(expect.objectContaining({ code: 'ERR_IROH_FRAME_TOO_LARGE' }))
    expect(spoke.dispatchEvent(new CustomEvent('small', { detail: 'ok' }))).toBe(true)
  })

  it('signals drain after dispatchEvent refused for a full buffer', async () => {
    const { spoke, hub } = await targets({ spoke: { maxBufferedBytes: 64 * 1024 } })
    const drained = new Promise((resolve) => spoke.lifecycle.addEventListener('drain', resolve, { once: true }))
    let sent = 0
    let refused = null
    while (!refused) {
      try {
        spoke.dispatchEvent(new CustomEvent('x', { detail: 'y'.repeat(1000) }))
        sent++
      } catch (err) {
        refused = err
      }
    }
    expect(refused.code).toBe('ERR_IROH_BUFFER_FULL')
    const got = collect(hub, ['x'], sent)
    await within(drained, 10_000, 'drain')
    expect(spoke.bufferedAmount).toBe(0)
    expect((await within(got, 10_000, 'events')).length).toBe(sent)
  })

  it('a listener that throws is reported and delivery continues', async () => {
    const { spoke, hub } = await targets()
    const errors = []
    hub.lifecycle.addEventListener('error', (e) => errors.push(e.detail.message))
    hub.addEventListener('x', () => { throw new Error('listener failed') })
    const got = collect(hub, ['x'], 3, { listenerErrors: false })
    await within(dispatchAll(spoke, [['x', 1], ['x', 2], ['x', 3]]), 10_000, 'dispatchAll')
    expect((await within(got, 10_000, 'events')).map((e) => e[1])).toEqual([1, 2, 3])
    expect(errors).toEqual(['listener failed', 'listener failed', 'listener failed'])
  })

  it('a slow listener in another process: the sender buffers, flush() waits, memory stays bounded', async () => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/slow-hub.mjs', import.meta.url))], {
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    const reports = []
    const waiters = []
    createInterface({ input: child.stdout }).on('line', (line) => {
      reports.push(JSON.parse(line))
      for (const wake of waiters.splice(0)) wake()
    })
    const report = async (predicate, what) => {
      for (;;) {
        const found = reports.find(predicate)
        if (found) return found
        await within(new Promise((resolve) => waiters.push(resolve)), 60_000, what)
      }
    }
    try {
      const { addr } = await report((r) => r.addr, 'slow hub start')
      const maxBufferedBytes = 1024 * 1024
      const client = await endpoint()
      const conn = await client.connect(addr, 'slow/1', { timeoutMs: 10_000 })
      const spoke = await within(createSpokeIrohEventTarget(conn, { maxBufferedBytes }), 10_000, 'createSpokeIrohEventTarget')
      const payload = 'p'.repeat(16 * 1024)
      spoke.dispatchEvent(new CustomEvent('slow', { detail: payload }))
      await report((r) => r.stalled, 'hub stalls on the first event')
      // The hub consumes nothing now. Send until the whole path (its backlog, QUIC's
      // windows, our outbox) is full: dispatchEvent refuses and nothing drains (see
      // fillUntilStalled).
      const filled = await within(
        fillUntilStalled({
          send: () => spoke.dispatchEvent(new CustomEvent('slow', { detail: payload })),
          flush: () => spoke.flush(),
          buffered: () => spoke.bufferedAmount,
        }),
        60_000,
        'filling the path',
      )
      const sent = 1 + filled.sent
      const flush = filled.stalled
      const order = []
      flush.then(() => order.push('flushed'))
      expect(spoke.bufferedAmount).toBeGreaterThan(0)
      expect(filled.peakBuffered).toBeLessThanOrEqual(maxBufferedBytes)
      // What is in flight is bounded by flow control, not by how much we tried to send.
      expect(sent * payload.length).toBeLessThan(maxBufferedBytes + 64 * 1024 * 1024)
      // While the hub is stalled, flush() waits: the flush that saw nothing drain is still
      // pending, with what it waits for still buffered, and settles only after the hub's
      // JS is let go.
      expect(order).toEqual([])
      order.push('go')
      child.stdin.write('go\n')
      await within(flush, 60_000, 'flush after the hub resumes')
      expect(order).toEqual(['go', 'flushed'])
      // It resolved because everything was handed to QUIC.
      expect(spoke.bufferedAmount).toBe(0)
      // close() waits until the peer has received everything, however slowly it reads.
      await within(spoke.close(), 60_000, 'close')
      const final = await report((r) => r.closed, 'hub close report')
      expect(final.consumed).toBe(sent)
      expect(final.peakRss - final.baselineRss).toBeLessThan(maxBufferedBytes + 64 * 1024 * 1024)
    } finally {
      child.kill()
    }
  })
})

describe('bad input from a peer', () => {
  async function hostile(bytes, finish, hubOptions) {
    const server = await endpoint({ alpns: [ALPN] })
    const raw = await endpoint()
    const accepted = server.accept()
    const rawConn = await raw.connect(server.addr(), ALPN, { timeoutMs: 10_000 })
    const hub = await within(
      within(accepted, 10_000, "accept() of the raw peer's dial").then((conn) => createHubIrohEventTarget(conn, hubOptions)),
      20_000,
      'the hub target for the raw peer',
    )
    const errors = []
    hub.lifecycle.addEventListener('error', (e) => errors.push(e.detail))
    const { send } = await rawConn.openBi()
    await within(send.writeAll(bytes), 10_000, 'writeAll of the hostile bytes')
    if (finish) await within(send.finish(), 10_000, 'finish() of the raw stream')
    const info = await within(hub.closed, 10_000, 'hub closed')
    const remote = await within(rawConn.closed(), 10_000, 'raw peer closed')

    // The endpoint keeps serving: a healthy spoke still exchanges events.
    const healthy = await endpoint()
    const next = server.accept()
    const spoke = await within(
      healthy.connect(server.addr(), ALPN, { timeoutMs: 10_000 }).then((conn) => createSpokeIrohEventTarget(conn)),
      20_000,
      'the healthy spoke',
    )
    const hub2 = await within(
      within(next, 10_000, "accept() of the healthy spoke's dial").then((conn) => createHubIrohEventTarget(conn)),
      20_000,
      'the hub target for the healthy spoke',
    )
    const echoed = new Promise((resolve) => spoke.addEventListener('pong', (e) => resolve(e.detail)))
    hub2.addEventListener('ping', (e) => hub2.dispatchEvent(new CustomEvent('pong', { detail: e.detail })))
    spoke.dispatchEvent(new CustomEvent('ping', { detail: 'still alive' }))
    expect(await within(echoed, 10_000, 'healthy echo')).toBe('still alive')
    return { info, remote, errors }
  }

  const cases = [
    ['a length over maxFrameBytes', Buffer.from([0xff, 0xff, 0xff, 0xff]), false, 'ERR_IROH_FRAME_TOO_LARGE', 4001],
    ['bytes that are not JSON', frame('not json at all'), false, 'ERR_IROH_PROTOCOL', 4002],
    ['JSON that is not an object', frame('[1,2,3]'), false, 'ERR_IROH_PROTOCOL', 4002],
    ['an object without a string type', frame({ type: 5, detail: 1 }), false, 'ERR_IROH_PROTOCOL', 4002],
    ['two objects smuggled in one frame', frame('{"type":"a"},{"type":"b"}'), false, 'ERR_IROH_PROTOCOL', 4002],
    ['invalid UTF-8', frame(Buffer.from([0x7b, 0x22, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])), false, 'ERR_IROH_PROTOCOL', 4002],
    ['a stream that ends mid-frame', Buffer.concat([frame({ type: 'ok' }), frame({ type: 'cut' }).subarray(0, 9)]), true, 'ERR_IROH_PROTOCOL', 4003],
    // The peer keeps the connection open and sends nothing more: the timeout frees it.
    ['a frame that stalls mid-way', frame({ type: 'stall', detail: 'x'.repeat(100) }).subarray(0, 50), false, 'ERR_IROH_PROTOCOL', 4003, { frameTimeoutMs: 300 }],
  ]
  for (const [name, bytes, finish, code, closeCode, hubOptions] of cases) {
    it(`${name}: coded error, connection closed, endpoint keeps working`, async () => {
      const { info, remote, errors } = await hostile(bytes, finish, hubOptions)
      expect(info.error?.code).toBe(code)
      expect(info).toMatchObject({ code: closeCode, kind: 'local' })
      expect(remote).toMatchObject({ code: closeCode, kind: 'remote' })
      expect(remote.reason.length).toBeGreaterThan(0)
      expect(errors.map((e) => e.code)).toEqual([code])
    })
  }
})
