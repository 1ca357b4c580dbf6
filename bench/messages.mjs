// The binary message workloads (cases G and H): the same frames case E sends, as opaque
// bytes. The sender pushes `count` messages as fast as the transport takes them; the
// receiver takes each (touching its first and last byte, as a consumer would), times from
// the first tenth on, and answers with one message when it has them all.
import { eventFor, peakRss } from './workload.mjs'

/** The bytes of case E's frames: 103 bytes for `msgSmall`, 65,563 for `msgLarge`. */
export const messageFor = (workload) => Buffer.from(JSON.stringify(eventFor(workload === 'msgLarge' ? 'large' : 'small')))

/**
 * `peer`: `{ send(bytes) -> boolean, ready(): Promise, flush(): Promise, messages: AsyncIterable<Buffer> }`.
 * `send` returning false means "buffer full": wait for `ready()` and send again.
 */
export function runMessages(peer, { workload, role, count, spinMs = 0 }) {
  const message = messageFor(workload)
  return role === 'client' ? sendMessages(peer, message, count) : receiveMessages(peer, message, count, spinMs)
}

async function sendMessages(peer, message, count) {
  for (let i = 0; i < count; ) {
    if (peer.send(message)) i++
    else await peer.ready()
  }
  await peer.flush()
  for await (const _ of peer.messages) break
  return null
}

async function receiveMessages(peer, message, count, spinMs) {
  // Connected and idle: what the process costs before any message arrives.
  const baselineRssBytes = process.memoryUsage.rss()
  const warm = Math.floor(count / 10)
  let received = 0
  let bytes = 0
  let start = 0
  for await (const m of peer.messages) {
    if (m.length !== message.length || m[0] !== message[0] || m[m.length - 1] !== message[message.length - 1]) {
      throw new Error(`message ${received} is not what was sent`)
    }
    if (spinMs > 0) for (const until = performance.now() + spinMs; performance.now() < until; );
    if (++received <= warm) {
      start = performance.now()
      continue
    }
    bytes += m.length
    if (received === count) break
  }
  const secs = (performance.now() - start) / 1000
  peer.send(Buffer.from('done'))
  await peer.flush()
  return { eventsPerSec: (count - warm) / secs, mbPerSec: bytes / secs / 1e6, peakRssBytes: peakRss(), baselineRssBytes }
}
