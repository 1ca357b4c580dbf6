// Case C: a raw `net` TCP socket with the same length framing.
import net from 'node:net'
import { once } from 'node:events'
import { Dispatcher } from '../workload.mjs'
import { FrameReader, encodeFrame } from './frames.mjs'

const HIGH_WATER = 1 << 20

/** `listen()` and `dial(addr)` over loopback TCP; `wrap(socket, server)` makes the peer. */
export function socketTransport(wrap) {
  return {
    async listen() {
      const server = net.createServer({ noDelay: true })
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      return {
        addr: `127.0.0.1:${server.address().port}`,
        async accept() {
          const [socket] = await once(server, 'connection')
          return wrap(socket, server)
        },
      }
    },
    async dial(addr) {
      const [host, port] = addr.split(':')
      const socket = net.connect({ host, port: Number(port), noDelay: true })
      await once(socket, 'connect')
      return wrap(socket, null)
    },
  }
}

export const { listen, dial } = socketTransport(wrap)

function wrap(socket, server) {
  const target = new Dispatcher()
  const reader = new FrameReader((text) => target.receive(text))
  socket.on('data', (chunk) => reader.push(chunk))
  return { target, ...socketPeer(socket, server, encodeFrame) }
}

/**
 * The sending side and the end of a socket peer: `send` frames with `encode` while less
 * than 1 MiB waits in the socket, `ready` waits for it to drain.
 */
export function socketPeer(socket, server, encode) {
  const ended = once(socket, 'close')
  return {
    send(value) {
      if (socket.writableLength >= HIGH_WATER) return false
      socket.write(encode(value))
      return true
    },
    ready: () => once(socket, 'drain'),
    flush: () => (socket.writableLength === 0 ? Promise.resolve() : once(socket, 'drain')),
    async close() {
      socket.end()
      await ended
    },
    async closed() {
      await ended
      server?.close()
    },
  }
}
