// The fan-out part of the benchmark: one event stream to 12 receivers in 3 processes,
// through a topic (one publishing member, 12 receiving members) and through hub.broadcast
// (a hub, 12 reconnecting spokes), the same events in the same run. Deliveries/s counts
// from the first dispatch until the last receiver has every event; lost and duplicated
// deliveries are counted, and both must be 0.
//   node bench/fanout/run.mjs             (BENCH_FANOUT_EVENTS, default 5,000)
// At 20,000 events in one burst the topic stalled here (iroh-gossip's actors waiting on
// each other, see README: Topics): the default stays where it completes.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { markdownTable } from '../table.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const PROCESSES = 3
const PER_PROCESS = 4
const EVENTS = Number(process.env.BENCH_FANOUT_EVENTS ?? 5_000)
const TIMEOUT_MS = 120_000

function child(args) {
  const proc = spawn(process.execPath, [path.join(here, 'node.mjs'), JSON.stringify(args)], { stdio: ['pipe', 'pipe', 'inherit'] })
  const queue = []
  const waiters = []
  createInterface({ input: proc.stdout }).on('line', (line) => {
    queue.push(JSON.parse(line))
    for (const w of waiters.splice(0)) w()
  })
  return {
    proc,
    send: (msg) => proc.stdin.write(`${JSON.stringify(msg)}\n`),
    async next(key) {
      const deadline = Date.now() + TIMEOUT_MS
      for (;;) {
        const i = queue.findIndex((m) => key in m)
        if (i >= 0) return queue.splice(i, 1)[0][key]
        if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`fan-out bench: no ${key} from ${args.role}`)
        await new Promise((resolve) => {
          waiters.push(resolve)
          setTimeout(resolve, 1_000)
        })
      }
    },
  }
}

async function measure(kind) {
  const source = child({ role: kind === 'topic' ? 'publisher' : 'hub', expect: PROCESSES * PER_PROCESS })
  const ticket = await source.next('ready')
  const receivers = Array.from({ length: PROCESSES }, () => child({ role: kind === 'topic' ? 'members' : 'spokes', count: PER_PROCESS, ticket }))
  await Promise.all(receivers.map((r) => r.next('ready')))
  await source.next('joined')
  for (const r of receivers) r.send({ expect: EVENTS })
  const startAt = Date.now()
  source.send({ go: EVENTS })
  const done = await Promise.all(receivers.map((r) => r.next('done')))
  const lastAt = Math.max(...done.map((d) => d.lastAt))
  const lost = done.reduce((n, d) => n + d.lost, 0)
  const twice = done.reduce((n, d) => n + d.twice, 0)
  for (const p of [source, ...receivers]) p.send({ close: true })
  return { kind, receivers: PROCESSES * PER_PROCESS, events: EVENTS, deliveriesPerSec: Math.round((EVENTS * PROCESSES * PER_PROCESS) / ((lastAt - startAt) / 1000)), lost, twice }
}

export async function runFanout() {
  return [await measure('hub'), await measure('topic')]
}

export function renderFanout(rows, binaryBytes) {
  const hub = rows.find((r) => r.kind === 'hub')
  return markdownTable([
    ['fan-out to 12 receivers, 3 processes', 'deliveries/s', 'vs hub.broadcast', 'lost', 'twice'],
    ...rows.map((r) => [r.kind === 'topic' ? 'topic (joinTopic)' : 'hub.broadcast', r.deliveriesPerSec.toLocaleString('en'), (r.deliveriesPerSec / hub.deliveriesPerSec).toFixed(2), r.lost, r.twice]),
  ]) + (binaryBytes ? `\n\nportable linux-x64-gnu binary: ${binaryBytes.toLocaleString('en')} bytes (limit 16,777,216)` : '')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rows = await runFanout()
  console.log(renderFanout(rows))
  console.log(JSON.stringify(rows))
}
