// One spoke process of the restart benchmark: `node spokes.mjs '<json>'` with { hub:
// address, count }. Opens `count` endpoints, each a spoke that dials the hub and lets it
// dial (`listen: true`), with the default liveness (heartbeat 1 s, ackTimeoutMs 2.5 s,
// redial backoff from 250 ms). Prints {"addrs": [...]} once all are connected, then
// {"heard": {seq, at}} once every one of its spokes has heard `hub.check` number `seq`.
// Ends when stdin closes.
import { Endpoint, connectSpoke } from '../../lib/index.mjs'
import { ALPN, LOCAL } from './shared.mjs'

const out = (value) => process.stdout.write(`${JSON.stringify(value)}\n`)
const { hub, count } = JSON.parse(process.argv[2])
const spokes = []
const heard = new Map()
await Promise.all(
  Array.from({ length: count }, async () => {
    const endpoint = await Endpoint.create(LOCAL)
    const spoke = connectSpoke(endpoint, hub, { alpn: ALPN, listen: true, connectTimeoutMs: 10_000 })
    spoke.addEventListener('hub.check', (e) => {
      const n = (heard.get(e.detail) ?? 0) + 1
      heard.set(e.detail, n)
      if (n === count) out({ heard: { seq: e.detail, at: Date.now() } })
    })
    await new Promise((resolve) => {
      const check = () => {
        if (spoke.state !== 'connected') return
        spoke.lifecycle.removeEventListener('statechange', check)
        resolve()
      }
      spoke.lifecycle.addEventListener('statechange', check)
      check()
    })
    spokes.push({ endpoint, spoke })
  }),
)
out({ addrs: spokes.map(({ endpoint }) => endpoint.addr()) })
process.stdin.resume()
await new Promise((resolve) => process.stdin.on('end', resolve))
await Promise.all(
  spokes.map(async ({ endpoint, spoke }) => {
    await spoke.close()
    await endpoint.close()
  }),
)
