// Case H: a `net` TCP socket carrying the same binary frames (4-byte big-endian length,
// then the bytes), each received message a Buffer sliced out of what the socket read.
import { once } from 'node:events'
import { FrameReader } from './frames.mjs'
import { socketPeer, socketTransport } from './net.mjs'

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
  return { messages, ...socketPeer(socket, server, frameOf) }
}

/** One binary message as a frame: 4-byte big-endian length, then the bytes. */
function frameOf(bytes) {
  const frame = Buffer.allocUnsafe(4 + bytes.length)
  frame.writeUInt32BE(bytes.length, 0)
  frame.set(bytes, 4)
  return frame
}
