// Runs one networked measurement: a server process and a client process on loopback,
// each bounded by a timeout. As a script (`node bench/pair.mjs '<json>'`) it prints the
// result, which is how run.mjs measures inside a network namespace.
import { execFileSync, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const here = path.dirname(fileURLToPath(import.meta.url))
const host = execFileSync('rustc', ['-vV'], { encoding: 'utf8' }).match(/^host: (.+)$/m)[1]
const exe = process.platform === 'win32' ? '.exe' : ''
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
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = []
  const waiters = []
  createInterface({ input: child.stdout }).on('line', (line) => {
    let msg
    try {
      msg = JSON.parse(line)
    } catch {
      return
    }
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
  return { child, next, exited }
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
    const exits = await Promise.race([Promise.all([server.exited, client.exited]), limit.promise])
    const bad = exits.find((e) => e.code !== 0)
    if (bad) throw new Error(`${transport} ${config.workload}: a peer exited with ${bad.code ?? bad.signal}`)
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
