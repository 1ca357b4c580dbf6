// Case H: a `net` TCP socket carrying the same binary frames (4-byte big-endian length,
// then the bytes), each received message a Buffer sliced out of what the socket read.
import { once } from 'node:events'
import { FrameReader } from './frames.mjs'
import { socketTransport } from './net.mjs'

const HIGH_WATER = 1 << 20

export const { listen, dial } = socketTransport(wrap)

function wrap(socket, server) {
  // Messages wait here for the consumer; the socket pauses while too many do.
  const queue = []
  let wake = null
  const reader = new FrameReader((message) => queue.push(message), { binary: true })
  socket.on('data', (chunk) => {
    reader.push(chunk)
    if (queue.length > 4096) socket.pause()
    wake?.()
  })
  const ended = once(socket, 'close')
  let done = false
  ended.then(() => {
    done = true
    wake?.()
  })
  const messages = {
    async *[Symbol.asyncIterator]() {
      for (let head = 0; ; ) {
        if (head < queue.length) {
          yield queue[head++]
          if (head === queue.length) {
            queue.length = 0
            head = 0
            socket.resume()
          }
          continue
        }
        if (done) return
        await new Promise((resolve) => (wake = resolve))
        wake = null
      }
    },
  }
  return {
    messages,
    send(bytes) {
      if (socket.writableLength >= HIGH_WATER) return false
      const frame = Buffer.allocUnsafe(4 + bytes.length)
      frame.writeUInt32BE(bytes.length, 0)
      frame.set(bytes, 4)
      socket.write(frame)
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
