// Hub restart: a hub with SPOKES spokes (in PROCESSES processes, each spoke its own endpoint,
// dialing the hub and letting it dial: `listen: true`) is SIGKILLed and started again at
// once from its key file, on the same port. Measured from the kill: until the new hub is
// up, until it has all spokes admitted at once, and until every spoke heard a broadcast
// from it; once with the spokes coming back on their own (their silence watcher redials
// after ackTimeoutMs, 2.5 s), once with the new hub told its spoke list and dialing each
// (`hub.connect`). Orientation only: one run each, on whatever else the machine is doing.
//   node bench/restart/run.mjs              200 spokes, 4 processes
//   BENCH_RESTART_SPOKES=1000 node bench/restart/run.mjs
//   BENCH_RESTART_DOWN_MS=45000 node bench/restart/run.mjs   the hub stays away 45 s first
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createInterface } from 'node:readline'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const SPOKES = Number(process.env.BENCH_RESTART_SPOKES ?? 200)
const PROCESSES = Number(process.env.BENCH_RESTART_PROCESSES ?? 4)
// How long the hub stays away before it is started again (figures still count from the kill).
const DOWN_MS = Number(process.env.BENCH_RESTART_DOWN_MS ?? 0)
const TIMEOUT_MS = 120_000 + DOWN_MS

/** A child speaking JSON lines: `next(key)` resolves the next message holding `key`. */
function child(script, arg) {
  const proc = spawn(process.execPath, [path.join(here, script), JSON.stringify(arg)], { stdio: ['pipe', 'pipe', 'inherit'] })
  const queue = []
  const waiters = []
  createInterface({ input: proc.stdout }).on('line', (line) => {
    try {
      queue.push(JSON.parse(line))
    } catch {
      return
    }
    for (const w of waiters.splice(0)) w()
  })
  const exited = new Promise((resolve) => proc.on('exit', resolve))
  return {
    proc,
    exited,
    send: (line) => proc.stdin.write(`${line}\n`),
    async next(key) {
      const deadline = Date.now() + TIMEOUT_MS
      for (;;) {
        const i = queue.findIndex((m) => key in m)
        if (i >= 0) return queue.splice(i, 1)[0][key]
        if (proc.exitCode !== null) throw new Error(`${script} exited (${proc.exitCode}) before saying ${key}`)
        if (Date.now() > deadline) throw new Error(`${script} did not say ${key} within ${TIMEOUT_MS} ms`)
        await Promise.race([new Promise((resolve) => waiters.push(resolve)), exited, new Promise((resolve) => setTimeout(resolve, 1_000))])
      }
    },
  }
}

async function scenario(hubDials) {
  const dir = mkdtempSync(path.join(tmpdir(), 'alkdev-restart-'))
  const keyPath = path.join(dir, 'hub.key')
  const first = child('hub.mjs', { keyPath, bindAddr: '127.0.0.1:0', expect: SPOKES })
  const { addr } = await first.next('ready')
  const bindAddr = addr.directAddresses.find((a) => a.startsWith('127.0.0.1:'))
  const per = Math.ceil(SPOKES / PROCESSES)
  const spokes = Array.from({ length: PROCESSES }, (_, i) => child('spokes.mjs', { hub: addr, count: Math.min(per, SPOKES - i * per) }))
  const addrs = (await Promise.all(spokes.map((s) => s.next('addrs')))).flat()
  await first.next('all')
  // Let the connections settle (the first seconds after a handshake are busier).
  await new Promise((resolve) => setTimeout(resolve, 3_000))
  first.proc.kill('SIGKILL')
  const killedAt = Date.now()
  await first.exited
  if (DOWN_MS > 0) await new Promise((resolve) => setTimeout(resolve, DOWN_MS))
  const second = child('hub.mjs', { keyPath, bindAddr, expect: SPOKES, dial: hubDials ? addrs : undefined })
  const ready = await second.next('ready')
  const all = await second.next('all')
  second.send('check')
  const heard = await Promise.all(spokes.map((s) => s.next('heard')))
  const result = {
    hubDials,
    spokes: SPOKES,
    upMs: ready.at - killedAt,
    allAdmittedMs: all.at - killedAt,
    allHeardMs: Math.max(...heard.map((h) => h.at)) - killedAt,
    admittedByHubDial: all.dialed,
    bothDialedClosed: all.bothDialed,
  }
  second.proc.stdin.end()
  for (const s of spokes) s.proc.stdin.end()
  await Promise.all([second.exited, ...spokes.map((s) => s.exited)])
  rmSync(dir, { recursive: true, force: true })
  return result
}

const results = []
for (const hubDials of [false, true]) {
  const r = await scenario(hubDials)
  results.push(r)
  console.log(
    `${r.spokes} spokes, hub ${hubDials ? 'dials them (hub.connect each)' : 'waits for them'}${DOWN_MS ? `, away ${DOWN_MS} ms` : ''}: up ${r.upMs} ms after the kill; ` +
      `all admitted ${r.allAdmittedMs} ms, all heard a broadcast ${r.allHeardMs} ms after it ` +
      `(${r.admittedByHubDial} admitted on the hub's dial, ${r.bothDialedClosed} closed as both dialed)`,
  )
}
console.log(JSON.stringify(results))
