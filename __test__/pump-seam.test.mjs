// Event targets, message channels and acknowledged delivery over an in-memory pump pair
// (memory-pump.mjs): no network, no connection. They must not know which pump they run
// over; this is what the browser build's WebAssembly pump plugs into.
import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { memoryPair } from './memory-pump.mjs'
import { collect as hear, within } from './helpers.mjs'

const require = createRequire(import.meta.url)
const { IrohEventTarget, DELIVERY, START, DEFER_START } = require('../lib/event-target.js')
const { MessageChannel } = require('../lib/message-channel.js')
const { Session } = require('../lib/delivery/session.js')

describe('the pump seam', () => {
  it('carries events both ways between two targets over a memory pair', async () => {
    const { a, b } = memoryPair()
    const left = new IrohEventTarget(a)
    const right = new IrohEventTarget(b)
    expect(left.connection).toBeNull()
    expect(left.pathType()).toBe('none')
    const heard = hear(right, 'n', 1000)
    for (let i = 0; i < 1000; i++) left.dispatchEvent(new CustomEvent('n', { detail: i }))
    expect(await within(heard, 5_000, 'events')).toEqual(Array.from({ length: 1000 }, (_, i) => i))
    const back = hear(left, 'pong', 1)
    right.dispatchEvent(new CustomEvent('pong'))
    expect(await within(back, 5_000, 'pong')).toEqual([null])
    const [mine, theirs] = await Promise.all([left.close(7, 'done'), right.closed])
    expect(mine).toEqual({ code: 7, reason: 'done', kind: 'local' })
    expect(theirs).toEqual({ code: 7, reason: 'done', kind: 'remote' })
    expect(left.state).toBe('closed')
    expect(() => left.dispatchEvent(new CustomEvent('late'))).toThrow(expect.objectContaining({ code: 'ERR_IROH_CONNECTION_CLOSED' }))
  })

  it('takes a custom serializer over the same seam', async () => {
    const serializer = { stringify: (v) => `${JSON.stringify(v)} `, parse: (t) => JSON.parse(t.trim()) }
    const { a, b } = memoryPair()
    const left = new IrohEventTarget(a, { serializer })
    const right = new IrohEventTarget(b, { serializer })
    const heard = hear(right, 'x', 2)
    left.dispatchEvent(new CustomEvent('x', { detail: { a: 1 } }))
    left.dispatchEvent(new CustomEvent('x'))
    expect(await within(heard, 5_000, 'events')).toEqual([{ a: 1 }, null])
    await left.close()
  })

  it('reports a frame the parser refuses as a protocol error on close', async () => {
    const serializer = { stringify: JSON.stringify, parse: () => 'not an event' }
    const { a, b } = memoryPair()
    const left = new IrohEventTarget(a)
    const right = new IrohEventTarget(b, { serializer })
    left.dispatchEvent(new CustomEvent('x'))
    const info = await within(right.closed, 5_000, 'close')
    expect(info.code).toBe(4002)
    expect(info.error.code).toBe('ERR_IROH_PROTOCOL')
  })

  it('moves binary messages between two message channels', async () => {
    const { a, b } = memoryPair()
    const left = new MessageChannel(a, { role: 'open' })
    const right = new MessageChannel(b, { role: 'accept' })
    for (let i = 0; i < 100; i++) left.send(Buffer.from([i, i + 1]))
    left.send(Buffer.alloc(32 * 1024, 7))
    const got = []
    for (let i = 0; i < 101; i++) got.push(await within(right.receive(), 5_000, 'message'))
    expect(got.slice(0, 100).map((m) => [...m])).toEqual(Array.from({ length: 100 }, (_, i) => [i, i + 1]))
    expect(got[100].length).toBe(32 * 1024)
    await left.close()
    expect(await within(right.receive(), 5_000, 'end')).toBeNull()
  })

  it('acknowledged delivery resends what a cut connection lost, once, in order', async () => {
    const spokeSession = new Session({ maxPendingBytes: 1 << 20 })
    const hubSession = new Session({ maxPendingBytes: 1 << 20 })
    const heard = []
    const connect = () => {
      const pair = memoryPair()
      const spoke = new IrohEventTarget(pair.a, { [DELIVERY]: spokeSession })
      const hub = new IrohEventTarget(pair.b, { [DELIVERY]: hubSession })
      hub.addEventListener('n', (e) => heard.push(e.detail))
      return { pair, spoke, hub }
    }
    const first = connect()
    for (let i = 0; i < 500; i++) first.spoke.dispatchEvent(new CustomEvent('n', { detail: i }))
    // Some arrive, then the connection dies with the rest in flight or unacknowledged.
    await within(new Promise((resolve) => first.hub.addEventListener('n', (e) => e.detail === 99 && resolve())), 5_000, 'the first hundred')
    first.pair.cut()
    await Promise.all([first.spoke.closed, first.hub.closed])
    expect(spokeSession.out.size, 'the spoke keeps what was not acknowledged').toBeGreaterThan(0)
    const second = connect()
    for (let i = 500; i < 600; i++) second.spoke.dispatchEvent(new CustomEvent('n', { detail: i }))
    await within(second.spoke.flush({ acked: true }), 5_000, 'acknowledgement')
    expect(heard).toEqual(Array.from({ length: 600 }, (_, i) => i))
    expect(spokeSession.out.size).toBe(0)
    await second.spoke.close()
  })

  it('a deferred start sends the greeting first, before what the session kept', async () => {
    const session = new Session({ maxPendingBytes: 1 << 20 })
    const { a, b } = memoryPair()
    const spoke = new IrohEventTarget(a, { [DELIVERY]: session, [DEFER_START]: true })
    const hub = new IrohEventTarget(b, { [DELIVERY]: new Session({ maxPendingBytes: 1 << 20 }) })
    spoke.dispatchEvent(new CustomEvent('e', { detail: 'kept' }))
    const heard = hear(hub, 'e', 2)
    spoke[START]([JSON.stringify({ type: 'e', detail: 'greeting' })])
    expect(await within(heard, 5_000, 'events')).toEqual(['greeting', 'kept'])
    await spoke.close()
  })

  it('a full send buffer throws ERR_IROH_BUFFER_FULL and drains', async () => {
    const { a, b } = memoryPair({ maxBufferedBytes: 1024 })
    const left = new IrohEventTarget(a)
    new IrohEventTarget(b)
    let err
    try {
      for (let i = 0; i < 100; i++) left.dispatchEvent(new CustomEvent('x', { detail: 'y'.repeat(100) }))
    } catch (e) {
      err = e
    }
    expect(err?.code).toBe('ERR_IROH_BUFFER_FULL')
    await within(new Promise((resolve) => left.lifecycle.addEventListener('drain', resolve, { once: true })), 5_000, 'drain')
    expect(left.bufferedAmount).toBe(0)
    await left.close()
  })
})
