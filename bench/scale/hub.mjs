// The hub process of the scale benchmark. Commands arrive as JSON lines on stdin, answers
// leave as JSON lines on stdout: {"ready": ticket}, then
//   {"expect": N}        -> {"admitted": N, "at": epoch ms, "rssBytes", "loopP99Ms", "drops"}
//   {"idle": ms}         -> {"idle": {cpuPercent, loopP99Ms, rssBytes, drops}}
//   {"broadcast": K}     -> {"broadcast": {sent, calls, startAt}} once K events are queued
//   {"steady": K}        -> {"steady": {msPerBroadcast}}: K broadcasts, one per tick, and
//                           the hub's event-loop time each took (the call and its hand-over)
//   {"cpu": true}        -> {"cpu": {broadcastCpuSecs, drops}}: CPU since the broadcast began
//   {"close": true}      -> exits
// "drops" counts datagrams the kernel dropped at the hub's socket so far.
import { readFileSync, readdirSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Endpoint, createHub } from '../../lib/index.mjs'
import { ALPN, LOCAL, SMALL_EVENT } from './shared.mjs'

const out = (value) => process.stdout.write(`${JSON.stringify(value)}\n`)
const endpoint = await Endpoint.create({ ...LOCAL, alpns: [ALPN] })
// BENCH_SCALE_ACKS=0: plain targets, no acknowledged delivery (and no heartbeats).
const acks = process.env.BENCH_SCALE_ACKS !== '0'
const hub = createHub(endpoint, { alpn: ALPN, acks })
let errors = 0
hub.addEventListener('error', () => errors++)
let replaced = 0
let disconnects = 0
hub.addEventListener('disconnect', (e) => {
  disconnects++
  if (e.detail.code === 4102) replaced++
})
if (process.env.BENCH_SCALE_TRACE) {
  setInterval(() => process.stderr.write(`hub: ${hub.spokes.length} spokes, ${disconnects} disconnects (${replaced} replaced), ${errors} errors\n`), 1000).unref()
}
const baseRss = process.memoryUsage.rss()
const port = (await endpoint.addr()).directAddresses[0].split(':').pop()
out({ ready: endpoint.ticket(), rssBytes: baseRss })

/**
 * Datagrams the kernel dropped at this hub's UDP socket because its receive buffer was full
 * (Linux, /proc/net/udp's last column). Each one is a packet that QUIC sends again later.
 */
function socketDrops() {
  const hex = Number(port).toString(16).toUpperCase().padStart(4, '0')
  let drops = 0
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    try {
      for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
        const f = line.trim().split(/\s+/)
        if (f[1]?.endsWith(`:${hex}`)) drops += Number(f[f.length - 1])
      }
    } catch {}
  }
  return drops
}

// Samples are the timer interval plus the lag; the interval is taken off.
const RESOLUTION_MS = 5
const loop = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
const p99 = () => Math.max(0, loop.percentile(99) / 1e6 - RESOLUTION_MS)

/** CPU seconds per thread name of this process (Linux), for BENCH_SCALE_TRACE. */
function threadCpu() {
  const by = {}
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      by[name] = (by[name] ?? 0) + (Number(f[11]) + Number(f[12])) / 100
    } catch {}
  }
  return by
}

async function admitted(n) {
  loop.reset()
  loop.enable()
  while (hub.spokes.length < n) await new Promise((resolve) => hub.addEventListener('spoke', resolve, { once: true }))
  const at = Date.now()
  loop.disable()
  if (process.env.BENCH_SCALE_TRACE) process.stderr.write(`hub threads' CPU s at admission: ${JSON.stringify(threadCpu())}\n`)
  return { admitted: n, at, rssBytes: process.memoryUsage.rss(), baseRssBytes: baseRss, loopP99Ms: p99(), disconnects, replaced, drops: socketDrops() }
}

async function idle(ms) {
  loop.reset()
  loop.enable()
  const cpu = process.cpuUsage()
  const start = performance.now()
  await new Promise((resolve) => setTimeout(resolve, ms))
  const used = process.cpuUsage(cpu)
  const wall = performance.now() - start
  loop.disable()
  return { cpuPercent: ((used.user + used.system) / 1000 / wall) * 100, loopP99Ms: p99(), rssBytes: process.memoryUsage.rss(), drops: socketDrops() }
}

let broadcastCpu = null

function broadcast(k) {
  broadcastCpu = process.cpuUsage()
  const startAt = Date.now()
  let sent = 0
  for (let i = 0; i < k; i++) sent += hub.broadcast(SMALL_EVENT.type, SMALL_EVENT.detail)
  return { sent, startAt, loopMs: Date.now() - startAt, errors }
}

async function steady(k) {
  let ms = 0
  for (let i = 0; i < k; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    const start = performance.now()
    hub.broadcast(SMALL_EVENT.type, SMALL_EVENT.detail)
    // The staged broadcast is handed over in a microtask, before this resumes.
    await null
    ms += performance.now() - start
  }
  return { msPerBroadcast: ms / k }
}

for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line)
  if (cmd.expect) out(await admitted(cmd.expect))
  else if (cmd.idle) out({ idle: await idle(cmd.idle) })
  else if (cmd.broadcast) out({ broadcast: broadcast(cmd.broadcast) })
  else if (cmd.steady) out({ steady: await steady(cmd.steady) })
  else if (cmd.cpu) {
    // CPU since the broadcast began, asked for once every spoke has had it.
    const used = process.cpuUsage(broadcastCpu)
    out({ cpu: { broadcastCpuSecs: (used.user + used.system) / 1e6, drops: socketDrops() } })
  } else if (cmd.close) break
}
// Leaving the loop does not release stdin, and the parent keeps its end open: without
// this the process would not exit, and the runner waited 30 s for each size to kill it.
process.stdin.destroy()
await hub.close()
await endpoint.close()
