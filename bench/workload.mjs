// What every case does, whatever carries the bytes: the events, the receiver's work
// (parse, CustomEvent, dispatch to one listener) and the three workloads.

export const SMALL_EVENT = {
  type: 'call.requested',
  detail: { id: '0123456789abcdef', op: 'echo', args: [1, 2, 3], ts: 1700000000 },
}
export const LARGE_EVENT = { type: 'blob', detail: 'x'.repeat(64 * 1024) }
export const eventFor = (workload) => (workload === 'large' ? LARGE_EVENT : SMALL_EVENT)

/**
 * The receiving work of cases B, C, D and F, the same per event as the addon's target:
 * one JSON.parse, one CustomEvent, listeners looked up in a Map and called.
 */
export class Dispatcher {
  #listeners = new Map()

  addEventListener(type, listener) {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener])
  }

  receive(text) {
    const event = JSON.parse(text)
    const list = this.#listeners.get(event.type)
    if (list === undefined) return
    const custom = new CustomEvent(event.type, { detail: event.detail })
    for (const listener of list) listener(custom)
  }
}

export const peakRss = () => process.resourceUsage().maxRSS * 1024

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]
}

/**
 * Runs one side of a workload over `peer`:
 * `{ target, send(event) -> boolean, ready(): Promise, flush(): Promise }`.
 * `send` returning false means "refused, buffer full": wait for `ready()` and send again.
 * The side that receives (or, for `rtt`, the pinging client) returns the result.
 */
export function runWorkload(peer, { workload, role, direction = 'up', count, warmup = 0, spinMs = 0, trace = false }, hello) {
  // Listeners go on before anything is awaited: events may already be arriving.
  if (workload === 'rtt') return role === 'client' ? ping(peer, count, warmup, trace) : echo(peer, count + warmup)
  const sender = (direction === 'up') === (role === 'client')
  const event = eventFor(workload)
  return sender ? sendEvents(peer, event, count, hello) : receiveEvents(peer, event, count, spinMs)
}

async function sendEvents(peer, { type, detail }, count, hello) {
  const done = new Promise((resolve) => peer.target.addEventListener('done', resolve))
  await hello
  for (let i = 0; i < count; ) {
    if (peer.send(new CustomEvent(type, { detail }))) i++
    else await peer.ready()
  }
  await peer.flush()
  await done
  return null
}

/** `spinMs` makes the listener slow: it holds the thread that long per event. */
function receiveEvents(peer, { type }, count, spinMs) {
  // Connected and idle: what the process costs before any event arrives.
  const baselineRssBytes = process.memoryUsage.rss()
  return new Promise((resolve, reject) => {
    // Timing starts after the first tenth (JIT warm-up, QUIC and TCP ramp-up).
    const warm = Math.floor(count / 10)
    let received = 0
    let bytes = 0
    let start = 0
    peer.target.addEventListener(type, (event) => {
      // Touch the parsed detail, as a real listener would.
      const size = typeof event.detail === 'string' ? event.detail.length : event.detail.id.length
      if (size === 0) reject(new Error('empty detail'))
      if (spinMs > 0) for (const until = performance.now() + spinMs; performance.now() < until; );
      if (++received <= warm) {
        start = performance.now()
        return
      }
      bytes += size
      if (received === count) {
        const secs = (performance.now() - start) / 1000
        peer.send(new CustomEvent('done', { detail: null }))
        peer.flush().then(
          () => resolve({ eventsPerSec: (count - warm) / secs, mbPerSec: bytes / secs / 1e6, peakRssBytes: peakRss(), baselineRssBytes }),
          reject,
        )
      }
    })
  })
}

/** `trace`: also return every round trip in order, for the breakdown (bench/rtt-trace.mjs). */
async function ping(peer, count, warmup, trace) {
  const micros = []
  let pong
  peer.target.addEventListener('pong', () => pong())
  for (let i = 0; i < warmup + count; i++) {
    const answered = new Promise((resolve) => (pong = resolve))
    const start = process.hrtime.bigint()
    while (!peer.send(new CustomEvent('ping', { detail: SMALL_EVENT.detail }))) await peer.ready()
    await answered
    if (i >= warmup) micros.push(Number(process.hrtime.bigint() - start) / 1000)
  }
  const inOrder = trace ? [...micros] : undefined
  micros.sort((a, b) => a - b)
  return { rttP50Us: percentile(micros, 0.5), rttP99Us: percentile(micros, 0.99), peakRssBytes: peakRss(), rttsUs: inOrder }
}

function echo(peer, total) {
  return new Promise((resolve) => {
    let seen = 0
    peer.target.addEventListener('ping', (event) => {
      peer.send(new CustomEvent('pong', { detail: event.detail }))
      if (++seen === total) peer.flush().then(() => resolve(null))
    })
  })
}
