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
  const ended = once(socket, 'close')
  return {
    target,
    send(event) {
      if (socket.writableLength >= HIGH_WATER) return false
      socket.write(encodeFrame(event))
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
