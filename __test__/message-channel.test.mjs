import { afterEach, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createMessageChannel, MessageChannel } from '../lib/index.mjs'
import { ALPN, closeAll, endpoint, fillUntilStalled, frame, pair, readFramePayload, rejectsWithCode, spawnJsonLines, within } from './helpers.mjs'

afterEach(closeAll)

async function channels(options = {}) {
  const p = await pair()
  const opener = createMessageChannel(p.clientConn, { role: 'open', ...options.opener })
  const acceptor = createMessageChannel(p.serverConn, { role: 'accept', ...options.acceptor })
  return { ...p, opener, acceptor }
}

/** Sends every message, waiting for the buffer to drain whenever it is full. */
async function sendAll(channel, messages) {
  for (const message of messages) {
    for (;;) {
      try {
        channel.send(message)
        break
      } catch (err) {
        if (err.code !== 'ERR_IROH_BUFFER_FULL') throw err
        await channel.flush()
      }
    }
  }
  await channel.flush()
}

async function receiveN(channel, n) {
  const got = []
  while (got.length < n) got.push(await channel.receive())
  return got
}

/** A raw peer dialing `server`: the channel goes on the server's side of the connection. */
async function rawPeer() {
  const server = await endpoint({ alpns: [ALPN] })
  const raw = await endpoint()
  const accepted = server.accept()
  const rawConn = await raw.connect(server.addr(), ALPN, { timeoutMs: 10_000 })
  return { rawConn, serverConn: await within(accepted, 10_000, "accept() of the raw peer's dial") }
}

describe('message channel', () => {
  it('carries many messages both ways, in order, byte for byte', async () => {
    const { opener, acceptor } = await channels()
    const N = 50_000
    const make = (tag) =>
      Array.from({ length: N }, (_, i) => {
        // Sizes from 0 to ~20 KiB, so staged and directly sent messages interleave.
        const m = Buffer.alloc(i % 97 === 0 ? 20_000 + (i % 7) : i % 300)
        m.fill(i & 0xff)
        if (m.length >= 5) {
          m.writeUInt32BE(i, 0)
          m[4] = tag
        }
        return m
      })
    const up = make(1)
    const down = make(2)
    const atAcceptor = receiveN(acceptor, N)
    const atOpener = receiveN(opener, N)
    await within(Promise.all([sendAll(opener, up), sendAll(acceptor, down)]), 60_000, 'sending both ways')
    const [gotUp, gotDown] = await within(Promise.all([atAcceptor, atOpener]), 60_000, 'receiving')
    expect(gotUp.every((m) => Buffer.isBuffer(m))).toBe(true)
    expect(Buffer.concat(gotUp).equals(Buffer.concat(up))).toBe(true)
    expect(gotUp.map((m) => m.length)).toEqual(up.map((m) => m.length))
    expect(Buffer.concat(gotDown).equals(Buffer.concat(down))).toBe(true)
    expect(gotDown.map((m) => m.length)).toEqual(down.map((m) => m.length))
  })

  it('carries empty and 1 MiB messages, and any Uint8Array; a sent message may be reused at once', async () => {
    const { opener, acceptor } = await channels()
    const big = Buffer.alloc(1024 * 1024)
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i)
    const reused = new Uint8Array([9, 9, 9])
    opener.send(Buffer.alloc(0))
    opener.send(big)
    opener.send(reused)
    reused.fill(0)
    opener.send(new Uint8Array(new ArrayBuffer(10), 2, 5).fill(7))
    opener.send(new Uint8Array(0))
    // Large enough to skip staging: the native send takes a view into a bigger ArrayBuffer.
    opener.send(new Uint8Array(new ArrayBuffer(40_010), 5, 40_000).fill(6))
    const got = await within(receiveN(acceptor, 6), 20_000, 'messages')
    expect(got[5].equals(Buffer.alloc(40_000, 6))).toBe(true)
    expect(got[0]).toEqual(Buffer.alloc(0))
    expect(got[1].equals(big)).toBe(true)
    expect([...got[2]]).toEqual([9, 9, 9])
    expect([...got[3]]).toEqual([7, 7, 7, 7, 7])
    expect(got[4].length).toBe(0)
    acceptor.send(big)
    expect((await within(opener.receive(), 20_000, '1 MiB back')).equals(big)).toBe(true)
  })

  it('for await yields every message and ends when the peer closes', async () => {
    const { opener, acceptor } = await channels()
    for (let i = 0; i < 1000; i++) opener.send(Buffer.from(`m${i}`))
    const closing = opener.close(0, 'done')
    const got = []
    await within(
      (async () => {
        for await (const message of acceptor) got.push(String(message))
      })(),
      10_000,
      'for await to the end of the channel',
    )
    expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => `m${i}`))
    await within(closing, 10_000, 'close() of the opener')
    expect(await within(acceptor.receive(), 10_000, 'receive() after the end')).toBeNull()
    expect(await within(acceptor.closed, 10_000, 'acceptor closed')).toMatchObject({ code: 0, reason: 'done', kind: 'remote' })
  })

  it('close(), closed and isClosed; sending after close fails with a coded error', async () => {
    const { opener, acceptor, serverConn, clientConn } = await channels()
    expect(opener.isClosed).toBe(false)
    expect(opener.connection).toBe(clientConn)
    const pending = acceptor.receive()
    opener.send(Buffer.from('last'))
    const info = await within(opener.close(7, 'bye'), 10_000, 'close')
    expect(info).toMatchObject({ code: 7, reason: 'bye', kind: 'local' })
    expect(opener.isClosed).toBe(true)
    expect(String(await within(pending, 10_000, 'receive() of the last message'))).toBe('last')
    expect(await within(acceptor.closed, 10_000, 'acceptor closed')).toMatchObject({ code: 7, reason: 'bye', kind: 'remote' })
    expect(acceptor.isClosed).toBe(true)
    expect(await within(acceptor.receive(), 10_000, 'receive() after close')).toBeNull()
    expect(() => opener.send(Buffer.from('x'))).toThrow(expect.objectContaining({ code: 'ERR_IROH_CONNECTION_CLOSED' }))
    expect(serverConn.isClosed()).toBe(true)
  })

  it('closing the connection closes the channel; a receive() waiting gets null; lifecycle reports close', async () => {
    const { opener, acceptor, clientConn } = await channels()
    const closes = []
    acceptor.lifecycle.addEventListener('close', (e) => closes.push(e.detail))
    const waiting = acceptor.receive()
    clientConn.close(5, 'gone')
    expect(await within(waiting, 10_000, 'receive')).toBeNull()
    expect(closes).toEqual([expect.objectContaining({ code: 5, reason: 'gone', kind: 'remote' })])
    expect(await within(opener.closed, 10_000, 'opener closed')).toMatchObject({ code: 5, kind: 'local' })
  })

  it('Connection.onClose tells every listener once, without a pending promise; isClosed() agrees', async () => {
    const { clientConn, serverConn } = await pair()
    const heard = []
    serverConn.onClose((info) => heard.push(['a', info]))
    const cancel = serverConn.onClose((info) => heard.push(['cancelled', info]))
    cancel()
    expect(serverConn.isClosed()).toBe(false)
    const both = new Promise((resolve) => clientConn.onClose(resolve))
    clientConn.close(3, 'done')
    expect(await within(both, 10_000, 'local onClose')).toMatchObject({ code: 3, reason: 'done', kind: 'local' })
    await within(new Promise((resolve) => serverConn.onClose(resolve)), 10_000, 'remote onClose')
    expect(heard).toEqual([['a', expect.objectContaining({ code: 3, reason: 'done', kind: 'remote' })]])
    expect(serverConn.isClosed()).toBe(true)
    // Registered after the close: called at once.
    expect(await within(new Promise((resolve) => serverConn.onClose(resolve)), 10_000, 'late onClose')).toMatchObject({ code: 3 })
    expect(() => serverConn.onClose('nope')).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_ARGUMENT' }))
  })

  it('a message over maxFrameBytes: send throws; from a peer it closes the connection with 4001', async () => {
    const { opener, acceptor, clientConn } = await channels({ acceptor: { maxFrameBytes: 1000 }, opener: { maxFrameBytes: 100_000 } })
    expect(() => acceptor.send(Buffer.alloc(1001))).toThrow(expect.objectContaining({ code: 'ERR_IROH_FRAME_TOO_LARGE' }))
    const errors = []
    acceptor.lifecycle.addEventListener('error', (e) => errors.push(e.detail))
    opener.send(Buffer.from('fine'))
    opener.send(Buffer.alloc(1001))
    expect(String(await within(acceptor.receive(), 10_000, 'first message'))).toBe('fine')
    const err = await rejectsWithCode(within(acceptor.receive(), 10_000, 'receive'), 'ERR_IROH_FRAME_TOO_LARGE')
    expect(err.message).toMatch(/maxFrameBytes/)
    // for await throws the same error.
    await rejectsWithCode(
      within(
        (async () => {
          for await (const _ of acceptor);
        })(),
        10_000,
        'for await after the error',
      ),
      'ERR_IROH_FRAME_TOO_LARGE',
    )
    expect(await within(acceptor.closed, 10_000, 'acceptor closed')).toMatchObject({ code: 4001, kind: 'local' })
    expect(errors.map((e) => e.code)).toEqual(['ERR_IROH_FRAME_TOO_LARGE'])
    expect(await within(clientConn.closed(), 10_000, 'peer closed')).toMatchObject({ code: 4001, kind: 'remote' })
  })

  it('a frame that stalls mid-way closes the connection with 4003 and ERR_IROH_PROTOCOL', async () => {
    const { rawConn, serverConn } = await rawPeer()
    const channel = createMessageChannel(serverConn, { role: 'accept', frameTimeoutMs: 300 })
    const { send } = await rawConn.openBi()
    await within(send.writeAll(frame(Buffer.alloc(100)).subarray(0, 50)), 10_000, 'writeAll of half a frame')
    await rejectsWithCode(within(channel.receive(), 10_000, 'receive'), 'ERR_IROH_PROTOCOL')
    expect(await within(channel.closed, 10_000, 'channel closed')).toMatchObject({ code: 4003, kind: 'local' })
    expect(await within(rawConn.closed(), 10_000, 'raw closed')).toMatchObject({ code: 4003, kind: 'remote' })
  })

  it('speaks the framing with a raw-stream peer that opens the stream', async () => {
    const { rawConn, serverConn } = await rawPeer()
    const channel = createMessageChannel(serverConn, { role: 'accept' })
    const { send, recv } = await rawConn.openBi()
    const sent = [Buffer.from('hand'), Buffer.alloc(0), Buffer.alloc(70_000, 3)]
    await within(send.writeAll(Buffer.concat(sent.map((m) => frame(m)))), 10_000, 'writeAll of raw frames')
    const got = await within(receiveN(channel, 3), 10_000, 'raw frames')
    expect(got.map((m) => m.toString('hex'))).toEqual(sent.map((m) => m.toString('hex')))
    channel.send(Buffer.from('made'))
    channel.send(Buffer.alloc(70_000, 4))
    expect(String(await within(readFramePayload(recv), 10_000, 'raw read of the first frame'))).toBe('made')
    expect((await within(readFramePayload(recv), 10_000, 'raw read of the 70 kB frame')).equals(Buffer.alloc(70_000, 4))).toBe(true)
    await within(send.finish(), 10_000, 'finish() of the raw stream')
    await within(channel.close(), 10_000, 'close() of the channel')
    expect(await within(readFramePayload(recv), 10_000, 'raw read of the end')).toBeNull()
  })

  it('speaks the framing with a raw-stream peer that accepts the stream; the stream is announced at once', async () => {
    const server = await endpoint({ alpns: [ALPN] })
    const client = await endpoint()
    const accepted = server.accept()
    const channel = createMessageChannel(await client.connect(server.addr(), ALPN, { timeoutMs: 10_000 }), { role: 'open' })
    // The channel has sent nothing, yet the raw peer sees the stream (and no byte on it).
    const { send, recv } = await within((await accepted).acceptBi(), 10_000, 'acceptBi')
    await within(send.writeAll(Buffer.concat([frame(Buffer.from('to channel')), frame(Buffer.alloc(0))])), 10_000, 'writeAll of raw frames')
    expect(String(await within(channel.receive(), 10_000, 'receive'))).toBe('to channel')
    expect((await within(channel.receive(), 10_000, 'receive of the empty message')).length).toBe(0)
    channel.send(Buffer.from('to raw'))
    expect(String(await within(readFramePayload(recv), 10_000, 'raw read'))).toBe('to raw')
  })

  it('signals drain after send refused for a full buffer; bufferedAmount and flush()', async () => {
    const { opener } = await channels({ opener: { maxBufferedBytes: 64 * 1024 } })
    const chunk = Buffer.alloc(8 * 1024)
    let refused
    for (let i = 0; i < 10_000 && !refused; i++) {
      try {
        opener.send(chunk)
      } catch (err) {
        refused = err
      }
    }
    expect(refused?.code).toBe('ERR_IROH_BUFFER_FULL')
    expect(opener.bufferedAmount).toBeLessThanOrEqual(64 * 1024)
    await within(new Promise((resolve) => opener.lifecycle.addEventListener('drain', resolve, { once: true })), 10_000, 'drain')
    await within(opener.flush(), 10_000, 'flush')
    expect(opener.bufferedAmount).toBe(0)
  })

  it('checks its arguments', async () => {
    const { clientConn } = await pair()
    expect(() => createMessageChannel(clientConn)).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_ARGUMENT' }))
    expect(() => createMessageChannel(clientConn, { role: 'dial' })).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_ARGUMENT' }))
    expect(() => createMessageChannel({}, { role: 'open' })).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_ARGUMENT' }))
    expect(() => createMessageChannel(clientConn, { role: 'open', maxFrameBytes: 0 })).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_ARGUMENT' }))
    const channel = createMessageChannel(clientConn, { role: 'open' })
    expect(channel).toBeInstanceOf(MessageChannel)
    expect(() => channel.send('text')).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_ARGUMENT' }))
    expect(channel.unref()).toBe(channel)
    expect(channel.ref()).toBe(channel)
  })

  it('a consumer that does not receive pushes back on the sender; its memory stays bounded', async () => {
    const peer = spawnJsonLines(process.execPath, [fileURLToPath(new URL('./fixtures/slow-channel.mjs', import.meta.url))], 'the slow channel')
    try {
      const addr = await within(peer.waitFor(() => peer.lines.find((l) => l.addr)?.addr), 20_000, 'slow channel start')
      const maxBufferedBytes = 1024 * 1024
      const client = await endpoint()
      const channel = createMessageChannel(await client.connect(addr, 'slow/1', { timeoutMs: 10_000 }), { role: 'open', maxBufferedBytes })
      await within(peer.waitFor(() => peer.lines.find((l) => l.stalled)), 20_000, 'stalled')
      const message = Buffer.alloc(64 * 1024, 1)
      // Send until the whole path (QUIC's windows, the receiver's bounded backlog, our
      // outbox) is full: send refuses and nothing drains (see fillUntilStalled).
      const { sent, stalled } = await within(
        fillUntilStalled({
          send: () => channel.send(message),
          flush: () => channel.flush(),
          buffered: () => channel.bufferedAmount,
        }),
        60_000,
        'filling the path',
      )
      const order = []
      stalled.then(() => order.push('flushed'))
      expect(channel.bufferedAmount).toBeGreaterThan(0)
      expect(sent * message.length).toBeLessThan(maxBufferedBytes + 64 * 1024 * 1024)
      peer.send('rss')
      const stalledRss = await within(peer.waitFor(() => peer.lines.find((l) => l.rss && !l.stalled)?.rss), 10_000, 'rss')
      const baseline = peer.lines.find((l) => l.stalled).rss
      expect(stalledRss - baseline).toBeLessThan(maxBufferedBytes + 64 * 1024 * 1024)
      // The flush that made no progress is still pending after a round trip to the peer (its
      // JS answers; only its consumer waits), and settles only once the consumer reads.
      expect(order).toEqual([])
      order.push('go')
      peer.send('go')
      await within(stalled, 60_000, 'the stalled flush after the consumer resumes')
      expect(order).toEqual(['go', 'flushed'])
      await within(channel.close(), 60_000, 'close after the consumer resumes')
      const final = await within(peer.waitFor(() => peer.lines.find((l) => 'consumed' in l)), 60_000, 'final report')
      expect(final.consumed).toBe(sent)
      expect(final.bytes).toBe(sent * message.length)
      expect(final.peakRss - final.baselineRss).toBeLessThan(maxBufferedBytes + 64 * 1024 * 1024)
      expect((await within(peer.exited, 20_000, 'exit')).code).toBe(0)
    } finally {
      peer.child.kill()
    }
  })

  it('the ten-line program: two endpoints exchange messages and the process exits by itself', async () => {
    const program = fileURLToPath(new URL('./fixtures/channel-echo.mjs', import.meta.url))
    // A process that does not exit on its own is killed by the timeout, and fails here.
    const { stdout } = await promisify(execFile)(process.execPath, [program], { timeout: 20_000 })
    expect(stdout).toBe('echo: one\necho: two\necho: three\n')
  })
})
