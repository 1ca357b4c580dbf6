// The scale part of the benchmark: one hub process and spokes from PROCESSES processes,
// each spoke its own endpoint. For each size: time until all are admitted, hub RSS per
// spoke, hub CPU while idle (keep-alives and heartbeats only), the hub's event-loop delay,
// hub.broadcast deliveries/s across all spokes, and the hub's event-loop time per broadcast
// when it broadcasts once per tick, and the datagrams the kernel dropped at the hub's socket
// (QUIC resends them after a timeout; a larger buffer shortened admission). At the largest size it
// runs again with a 2 s heartbeat and with no heartbeat (acks off), to show what the default
// liveness costs.
//   node bench/scale/run.mjs                      100, 500 and 1,000 spokes (+ 2 variants)
//   BENCH_SCALE_VARIANTS=0                        without the variants
//   BENCH_SPOKES=1000 BENCH_WORKERS=1,2 node bench/scale/run.mjs
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { markdownTable } from '../table.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const PROCESSES = 4
const SIZES = (process.env.BENCH_SPOKES ?? '100,500,1000').split(',').map(Number)
const WORKERS = (process.env.BENCH_WORKERS ?? '1').split(',').map(Number)
const IDLE_MS = 5_000
// Idle is measured this long after admission: in the first seconds after their handshakes
// the connections still finish setting up: 4x the datagrams, 2x the CPU when admission was quick.
const SETTLE_MS = 5_000
const DELIVERIES = 200_000
// Then broadcasts one per tick: what each costs the hub's event loop.
const STEADY = 300
const TIMEOUT_MS = 180_000
// At the largest size, the hub's idle cost with less liveness checking: what the default
// heartbeat (1 s) costs against a slower one and none at all.
const VARIANTS = [
  { variant: 'heartbeat 2 s', env: { BENCH_SCALE_HEARTBEAT_MS: '2000' } },
  { variant: 'acks off, no heartbeat', env: { BENCH_SCALE_ACKS: '0' } },
]

/** A child speaking JSON lines: `next(key)` resolves the next message holding `key`. */
function child(script, args, env = {}) {
  const proc = spawn(process.execPath, [path.join(here, script), ...args], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } })
  const queue = []
  const waiters = []
  createInterface({ input: proc.stdout }).on('line', (line) => {
    let msg
    try {
      msg = JSON.parse(line)
    } catch {
      return
    }
    queue.push(msg)
    for (const w of waiters.splice(0)) w()
  })
  const exited = new Promise((resolve) => proc.on('exit', resolve))
  return {
    proc,
    send: (msg) => proc.stdin.write(`${JSON.stringify(msg)}\n`),
    async next(key) {
      for (;;) {
        const i = queue.findIndex((m) => key in m)
        if (i >= 0) return queue.splice(i, 1)[0]
        if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${script} exited (${proc.exitCode ?? proc.signalCode}) before "${key}"`)
        await Promise.race([new Promise((resolve) => waiters.push(resolve)), exited])
      }
    },
    exited,
  }
}

function bounded(promise, what) {
  let timer
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS))),
  ])
}

async function measure(n, workers, { variant, env = {} } = {}) {
  const hub = child('hub.mjs', [], { TOKIO_WORKER_THREADS: String(workers), ...env })
  const spokes = []
  try {
    const { ready } = await bounded(hub.next('ready'), 'hub start')
    hub.send({ expect: n })
    const startAt = Date.now()
    for (let p = 0; p < PROCESSES; p++) {
      const count = Math.floor(n / PROCESSES) + (p < n % PROCESSES ? 1 : 0)
      spokes.push(child('spokes.mjs', [JSON.stringify({ hub: ready, count })], env))
    }
    const connected = await bounded(Promise.all(spokes.map((s) => s.next('connected'))), 'spokes connect')
    const admitted = await bounded(hub.next('admitted'), 'hub admission')
    const lastConnect = Math.max(...connected.map((c) => c.lastAt))
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
    hub.send({ idle: IDLE_MS })
    const { idle } = await bounded(hub.next('idle'), 'idle')
    const k = Math.max(10, Math.round(DELIVERIES / n))
    for (const s of spokes) s.send({ expect: k })
    hub.send({ broadcast: k })
    const { broadcast } = await bounded(hub.next('broadcast'), 'broadcast')
    const received = await bounded(Promise.all(spokes.map((s) => s.next('received'))), 'broadcast delivery')
    const deliveredAt = Math.max(...received.map((r) => r.lastAt))
    hub.send({ cpu: true })
    const { cpu } = await bounded(hub.next('cpu'), 'hub CPU')
    hub.send({ steady: STEADY })
    const { steady } = await bounded(hub.next('steady'), 'steady broadcasts')
    return {
      spokes: n,
      workers,
      variant,
      connectedSecs: (lastConnect - startAt) / 1000,
      admittedSecs: (admitted.at - startAt) / 1000,
      admittedAfterLastConnectSecs: (admitted.at - lastConnect) / 1000,
      rssPerSpokeKiB: (idle.rssBytes - admitted.baseRssBytes) / n / 1024,
      idleCpuPercent: idle.cpuPercent,
      admissionLoopP99Ms: admitted.loopP99Ms,
      idleLoopP99Ms: idle.loopP99Ms,
      broadcastDeliveriesPerSec: (k * n) / ((deliveredAt - broadcast.startAt) / 1000),
      broadcastErrors: broadcast.errors,
      // How long the hub's JS took to queue them all, of the whole delivery time.
      broadcastLoopSecs: broadcast.loopMs / 1000,
      broadcastSecs: (deliveredAt - broadcast.startAt) / 1000,
      hubCpuUsPerDelivery: (cpu.broadcastCpuSecs * 1e6) / (k * n),
      admissionDrops: admitted.drops,
      broadcastDrops: cpu.drops - idle.drops,
      steadyMsPerBroadcast: steady.msPerBroadcast,
    }
  } finally {
    for (const s of spokes) s.send({ close: true })
    hub.send({ close: true })
    const all = Promise.all([hub, ...spokes].map((c) => c.exited))
    const timer = setTimeout(() => {
      for (const c of [hub, ...spokes]) c.proc.kill('SIGKILL')
    }, 30_000)
    await all
    clearTimeout(timer)
  }
}

const fmt = (v, d = 0) => (v === null || v === undefined ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }))

export async function runScale() {
  const rows = []
  for (const workers of WORKERS) {
    for (const n of SIZES) {
      process.stderr.write(`\rscale: ${n} spokes, ${workers} tokio worker(s)   `)
      try {
        rows.push(await measure(n, workers))
      } catch (err) {
        process.stderr.write(`\nscale ${n}: ${err.message}\n`)
        rows.push({ spokes: n, workers, error: err.message })
      }
    }
  }
  const largest = Math.max(...SIZES)
  for (const v of process.env.BENCH_SCALE_VARIANTS === '0' ? [] : VARIANTS) {
    process.stderr.write(`\rscale: ${largest} spokes, ${v.variant}   `)
    try {
      rows.push(await measure(largest, 1, v))
    } catch (err) {
      process.stderr.write(`\nscale ${largest}, ${v.variant}: ${err.message}\n`)
      rows.push({ spokes: largest, workers: 1, variant: v.variant, error: err.message })
    }
  }
  process.stderr.write(`${'\r'.padEnd(50)}\r`)
  return rows
}

export function renderScale(rows) {
  const head = ['spokes', 'hub workers', 'spoke liveness', 'all connected s', 'hub admitted all s', 'admitted after last connect s', 'hub RSS KiB/spoke', 'idle hub CPU %', 'loop delay p99 ms (admission / idle)', 'broadcast deliveries/s', 'hub CPU µs/delivery', 'ms per broadcast, one per tick', 'hub socket drops (admission / broadcast)']
  const body = rows.map((r) =>
    r.error
      ? [r.spokes, r.workers, r.variant ?? 'heartbeat 1 s (default)', `failed: ${r.error}`, '', '', '', '', '', '', '', '', '']
      : [
          fmt(r.spokes),
          r.workers,
          r.variant ?? 'heartbeat 1 s (default)',
          fmt(r.connectedSecs, 2),
          fmt(r.admittedSecs, 2),
          fmt(r.admittedAfterLastConnectSecs, 2),
          fmt(r.rssPerSpokeKiB),
          fmt(r.idleCpuPercent, 1),
          `${fmt(r.admissionLoopP99Ms, 1)} / ${fmt(r.idleLoopP99Ms, 1)}`,
          fmt(r.broadcastDeliveriesPerSec),
          fmt(r.hubCpuUsPerDelivery, 2),
          fmt(r.steadyMsPerBroadcast, 2),
          `${fmt(r.admissionDrops)} / ${fmt(r.broadcastDrops)}`,
        ],
  )
  return `${markdownTable([head, ...body])}\n\n${receiveBufferNote()}`
}

/** The cap on a socket's receive buffer here: iroh asks for 7 MiB, Linux grants at most this. */
function receiveBufferNote() {
  let max
  try {
    max = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'))
  } catch {
    return 'net.core.rmem_max: unknown'
  }
  return `net.core.rmem_max: ${fmt(max)} bytes (iroh asks for ${fmt(7 * 2 ** 20)} per socket; Linux grants at most this)`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rows = await runScale()
  console.log(renderScale(rows))
  if (process.env.BENCH_SCALE_TRACE) console.log(JSON.stringify(rows, null, 1))
}
