// Case D, the JS limits with no network, in one process: D-recv is the receiver's work
// (JSON.parse, CustomEvent, dispatch to one listener), D-send the sender's (a CustomEvent,
// JSON.stringify of { type, detail }, the frame encoded into a staging buffer). A pipeline
// of the two, each on its own core, runs no faster than the slower one.
import { Dispatcher, eventFor, peakRss } from './workload.mjs'

const STAGING_BYTES = 64 * 1024

/** Runs `work(i)` `count` times after a JIT warm-up; rate and CPU per call. */
function timed(count, work) {
  for (let i = 0; i < Math.min(count, 10_000); i++) work(i)
  const cpu = process.cpuUsage()
  const start = performance.now()
  for (let i = 0; i < count; i++) work(i)
  const secs = (performance.now() - start) / 1000
  const used = process.cpuUsage(cpu)
  return { secs, cpuUsPerEvent: (used.user + used.system) / count }
}

export function measureReceive(workload, count) {
  const { type, detail } = eventFor(workload)
  const text = JSON.stringify({ type, detail })
  const target = new Dispatcher()
  let payload = 0
  // Touch the parsed detail, as a real listener would.
  target.addEventListener(type, (event) => {
    payload = typeof event.detail === 'string' ? event.detail.length : event.detail.id.length
  })
  const { secs, cpuUsPerEvent } = timed(count, () => target.receive(text))
  return { eventsPerSec: count / secs, mbPerSec: (payload * count) / secs / 1e6, cpuUsPerEvent, peakRssBytes: peakRss() }
}

export function measureSend(workload, count) {
  const { type, detail } = eventFor(workload)
  const staging = Buffer.allocUnsafe(STAGING_BYTES + 4 + 3 * JSON.stringify({ type, detail }).length)
  let at = 0
  let payload = 0
  const { secs, cpuUsPerEvent } = timed(count, () => {
    const event = new CustomEvent(type, { detail })
    const text = JSON.stringify({ type: event.type, detail: event.detail })
    const len = staging.write(text, at + 4)
    staging.writeUInt32BE(len, at)
    at += 4 + len
    payload = typeof event.detail === 'string' ? event.detail.length : event.detail.id.length
    if (at >= STAGING_BYTES) at = 0
  })
  return { eventsPerSec: count / secs, mbPerSec: (payload * count) / secs / 1e6, cpuUsPerEvent, peakRssBytes: peakRss() }
}

export const measureCeiling = (side, workload, count) => (side === 'send' ? measureSend : measureReceive)(workload, count)

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const [side, workload, count] = process.argv.slice(2)
  process.stdout.write(`${JSON.stringify({ result: measureCeiling(side, workload, Number(count)) })}\n`)
}
