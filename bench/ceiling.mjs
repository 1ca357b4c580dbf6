// Case D, the JS ceiling: the receiver's work (JSON.parse, CustomEvent, dispatch to one
// listener) on the benchmark's events in one process, with no network at all.
import { Dispatcher, eventFor, peakRss } from './workload.mjs'

export function measureCeiling(workload, count) {
  const { type, detail } = eventFor(workload)
  const text = JSON.stringify({ type, detail })
  const target = new Dispatcher()
  let bytes = 0
  target.addEventListener(type, (event) => {
    bytes += typeof event.detail === 'string' ? event.detail.length : event.detail.id.length
  })
  for (let i = 0; i < Math.min(count, 10_000); i++) target.receive(text) // warm up the JIT
  bytes = 0
  const start = performance.now()
  for (let i = 0; i < count; i++) target.receive(text)
  const secs = (performance.now() - start) / 1000
  return { eventsPerSec: count / secs, mbPerSec: bytes / secs / 1e6, peakRssBytes: peakRss() }
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const [workload, count] = process.argv.slice(2)
  process.stdout.write(`${JSON.stringify({ result: measureCeiling(workload, Number(count)) })}\n`)
}
