// Runs one networked measurement: a server process and a client process on loopback,
// each bounded by a timeout. As a script (`node bench/pair.mjs '<json>'`) it prints the
// result, which is how run.mjs measures inside a network namespace.
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { rttBreakdown } from './rtt-trace.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const host = execFileSync('rustc', ['-vV'], { encoding: 'utf8' }).match(/^host: (.+)$/m)[1]
const exe = process.platform === 'win32' ? '.exe' : ''
const TICKS_PER_SEC = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100
  } catch {
    return 100
  }
})()

/** User + system CPU seconds a live process has used so far (Linux), or null. */
export function cpuSeconds(pid) {
  try {
    // Fields after the command name, which is in parentheses and may hold spaces.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SEC
  } catch {
    return null
  }
}

export const RUST_BIN = path.join(here, '..', 'target', 'bench-e', host, 'release', 'examples', `iroh-raw${exe}`)

function command(transport, role, config) {
  const json = JSON.stringify(config)
  if (transport === 'rust') return [RUST_BIN, [role, json]]
  // @number0/iroh's package.json trips a deprecation warning on every load.
  const flags = transport === 'n0' ? ['--no-deprecation'] : []
  // Binary-message transports (msg-*) run the message workloads.
  const script = transport.startsWith('msg-') ? 'message-peer.mjs' : 'peer.mjs'
  return [process.execPath, [...flags, path.join(here, script), transport, role, json]]
}

/** Starts one side; resolves its JSON lines as they come and its exit. */
function start(transport, role, config) {
  const [cmd, args] = command(transport, role, config)
  // The round-trip breakdown: the addon stamps its hand-overs (lib/trace.js).
  const env = config.trace ? { ...process.env, ALKDEV_IROH_TRACE: '1' } : process.env
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env })
  const lines = []
  const waiters = []
  // CPU is counted from the moment the side is connected ({"armed":true}): start-up and
  // the handshake are not the events' cost.
  const side = { child, armedCpu: null }
  createInterface({ input: child.stdout }).on('line', (line) => {
    let msg
    try {
      msg = JSON.parse(line)
    } catch {
      return
    }
    if (msg.armed) side.armedCpu = cpuSeconds(child.pid)
    lines.push(msg)
    for (const w of waiters.splice(0)) w()
  })
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const next = async (key) => {
    for (;;) {
      const found = lines.find((m) => key in m)
      if (found) return found[key]
      await Promise.race([new Promise((resolve) => waiters.push(resolve)), exited])
      if (child.exitCode !== null && !lines.some((m) => key in m)) {
        throw new Error(`${transport} ${role} exited (${child.exitCode}) without "${key}"`)
      }
    }
  }
  return Object.assign(side, { next, exited })
}

/** CPU seconds both sides spent from connected until the result, or null where unknown. */
function cpuSince(sides) {
  let total = 0
  for (const s of sides) {
    const now = cpuSeconds(s.child.pid)
    if (now === null || s.armedCpu === null) return null
    total += now - s.armedCpu
  }
  return total
}

function deadline(ms, what) {
  let timer
  const promise = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
  })
  return { promise, cancel: () => clearTimeout(timer) }
}

/**
 * One measurement. `config.workload` picks what runs; the result comes from the side
 * that measures (the receiver, or the pinging client for rtt).
 */
export async function runPair(transport, config, timeoutMs = 120_000) {
  const limit = deadline(timeoutMs, `${transport} ${config.workload}`)
  const server = start(transport, 'server', config)
  let client = null
  try {
    const addr = await Promise.race([server.next('ready'), limit.promise])
    client = start(transport, 'client', { ...config, addr })
    const measuring = config.workload === 'rtt' || (config.direction ?? 'up') === 'down' ? client : server
    const result = await Promise.race([measuring.next('result'), limit.promise])
    const cpu = cpuSince([server, client])
    // Events the receiver counted (rtt: pings and pongs both).
    const events = config.workload === 'rtt' ? 2 * (config.count + (config.warmup ?? 0)) : config.count
    if (cpu !== null) result.cpuUsPerEvent = (cpu * 1e6) / events
    const exits = await Promise.race([Promise.all([server.exited, client.exited]), limit.promise])
    const bad = exits.find((e) => e.code !== 0)
    if (bad) throw new Error(`${transport} ${config.workload}: a peer exited with ${bad.code ?? bad.signal}`)
    if (config.trace) {
      result.breakdown = rttBreakdown(await client.next('trace'), await server.next('trace'), result.rttsUs, config.count)
    }
    delete result.rttsUs
    return result
  } finally {
    limit.cancel()
    for (const side of [server, client]) if (side && side.child.exitCode === null) side.child.kill('SIGKILL')
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { transport, config, timeoutMs } = JSON.parse(process.argv[2])
  runPair(transport, config, timeoutMs).then(
    (result) => process.stdout.write(`${JSON.stringify({ result })}\n`),
    (err) => {
      console.error(err.message)
      process.exitCode = 1
    },
  )
}
