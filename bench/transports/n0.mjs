// Case F: the official @number0/iroh binding's raw streams with the same framing.
// Its endpoints cannot turn the port mapper off, so bench/pair.mjs runs this case only
// inside a fresh network namespace that has nothing but loopback.
import { createRequire } from 'node:module'
import { Dispatcher } from '../workload.mjs'
import { FrameReader, encodeFrame } from './frames.mjs'

const { Endpoint, EndpointTicket, RelayMode, presetMinimal } = createRequire(import.meta.url)('@number0/iroh')

const ALPN = [...Buffer.from('alkdev-bench/1')]
const WRITE_CHUNK = 64 * 1024

async function endpoint(accepts) {
  const builder = Endpoint.builder()
  presetMinimal(builder)
  builder.relayMode(RelayMode.disabled())
  builder.bindAddr('127.0.0.1:0')
  if (accepts) builder.alpns([ALPN])
  return builder.bind()
}

export async function listen() {
  const ep = await endpoint(true)
  return {
    addr: EndpointTicket.fromAddr(ep.addr()).toString(),
    async accept() {
      const incoming = await ep.acceptNext()
      const conn = await (await incoming.accept()).connect()
      return wrap(await conn.acceptBi(), conn, ep)
    },
  }
}

export async function dial(addr) {
  const ep = await endpoint(false)
  const conn = await ep.connect(EndpointTicket.fromString(addr).endpointAddr(), ALPN)
  return wrap(await conn.openBi(), conn, ep)
}

function wrap(bi, conn, ep) {
  const target = new Dispatcher()
  const reader = new FrameReader((text) => target.receive(text))
  const { send, recv } = bi
  const ended = (async () => {
    for (;;) {
      const chunk = await recv.read(WRITE_CHUNK)
      if (chunk.length === 0) return
      reader.push(Buffer.from(chunk))
    }
  })().catch(() => {})
  // Frames queue while one writeAll is in flight and go out together in the next.
  let pending = []
  let pendingBytes = 0
  let inFlight = null
  const write = () => {
    if (inFlight !== null || pendingBytes === 0) return
    const chunk = Buffer.concat(pending)
    pending = []
    pendingBytes = 0
    inFlight = send.writeAll(Array.from(chunk)).then(() => {
      inFlight = null
      write()
    })
  }
  return {
    target,
    send(event) {
      if (inFlight !== null && pendingBytes >= WRITE_CHUNK) return false
      const frame = encodeFrame(event)
      pending.push(frame)
      pendingBytes += frame.length
      write()
      return true
    },
    ready: () => inFlight ?? Promise.resolve(),
    async flush() {
      while (inFlight !== null || pendingBytes > 0) {
        write()
        await inFlight
      }
    },
    async close() {
      await send.finish()
      await ended
      conn.close(0n, [])
      await ep.close()
    },
    async closed() {
      await ended
      await send.finish().catch(() => {})
      await conn.closed().catch(() => {})
      await ep.close()
    },
  }
}
