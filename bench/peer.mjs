// One process of a networked case: `node bench/peer.mjs <transport> server|client '<config>'`.
// The server prints {"ready": addr}; whichever side measures prints {"result": {..}}.
import { runWorkload } from './workload.mjs'

const [transport, role, json] = process.argv.slice(2)
const config = JSON.parse(json ?? '{}')
const out = (value) => process.stdout.write(`${JSON.stringify(value)}\n`)
const { listen, dial } = await import(`./transports/${transport}.mjs`)

let peer
let hello
if (role === 'server') {
  const server = await listen(config)
  out({ ready: server.addr })
  peer = await server.accept()
  // The client speaks first, so that every transport has its stream open both ways.
  hello = new Promise((resolve) => peer.target.addEventListener('hello', resolve))
} else {
  peer = await dial(config.addr, config)
  peer.send(new CustomEvent('hello', { detail: null }))
  hello = Promise.resolve()
}
// Connected: CPU from here on is the workload's (pair.mjs reads /proc).
out({ armed: true })
const result = await runWorkload(peer, { ...config, role }, hello)
if (result !== null) out({ result })
// The round-trip breakdown (BENCH_RTT_TRACE): this side's stamps, joined in pair.mjs.
if (config.trace && peer.trace) out({ trace: peer.trace() })
// The client ends the connection; the server waits for that.
if (role === 'client') await peer.close()
else await peer.closed()
