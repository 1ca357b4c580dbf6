// One spoke process of the scale benchmark: `node spokes.mjs '<json>'` with
// { hub: ticket, count }. Opens `count` endpoints, each with a reconnecting spoke, and
// prints {"connected": count, "lastAt": epoch ms} once all are connected. Then
//   {"expect": K}  (stdin)  -> {"received": K * count, "lastAt"} once each spoke has K events
//   {"close": true}         -> closes everything and exits
import { createInterface } from 'node:readline'
import { Endpoint, connectSpoke } from '../../lib/index.mjs'
import { ALPN, LOCAL, SMALL_EVENT } from './shared.mjs'

const out = (value) => process.stdout.write(`${JSON.stringify(value)}\n`)
const { hub, count } = JSON.parse(process.argv[2])
// BENCH_SCALE_HEARTBEAT_MS: the spokes' heartbeatMs (ackTimeoutMs 2.5 times it, as the defaults).
const heartbeatMs = Number(process.env.BENCH_SCALE_HEARTBEAT_MS ?? 0)
const liveness = heartbeatMs > 0 ? { heartbeatMs, ackTimeoutMs: heartbeatMs * 2.5 } : {}
const spokes = []
const counts = []
let lastAt = 0
let total = 0
let wanted = Infinity
let onAll = null

await Promise.all(
  Array.from({ length: count }, async (_, i) => {
    const endpoint = await Endpoint.create(LOCAL)
    const spoke = connectSpoke(endpoint, hub, { alpn: ALPN, connectTimeoutMs: 60_000, acks: process.env.BENCH_SCALE_ACKS !== '0', ...liveness })
    counts[i] = 0
    spoke.addEventListener(SMALL_EVENT.type, () => {
      counts[i]++
      total++
      if (total >= wanted && onAll !== null) {
        onAll(Date.now())
        onAll = null
      }
    })
    await new Promise((resolve) => {
      const check = () => {
        if (spoke.state !== 'connected') return
        spoke.lifecycle.removeEventListener('statechange', check)
        lastAt = Math.max(lastAt, Date.now())
        resolve()
      }
      spoke.lifecycle.addEventListener('statechange', check)
      check()
    })
    spokes.push({ endpoint, spoke })
  }),
)
out({ connected: count, lastAt })

for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line)
  if (cmd.expect) {
    const at = await new Promise((resolve) => {
      wanted = cmd.expect * count
      if (total >= wanted) resolve(Date.now())
      else onAll = resolve
    })
    out({ received: total, lastAt: at })
  } else if (cmd.close) break
}
// Leaving the loop does not release stdin, and the parent keeps its end open: without
// this the process would not exit, and the runner waited 30 s for each size to kill it.
process.stdin.destroy()
await Promise.all(spokes.map(async ({ endpoint, spoke }) => {
  await spoke.close()
  await endpoint.close()
}))
