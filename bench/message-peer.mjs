// One process of a binary-message case: `node bench/message-peer.mjs <transport> server|client '<config>'`.
// The server prints {"ready": addr} and, as the receiver, {"result": {..}}.
import { runMessages } from './messages.mjs'

const [transport, role, json] = process.argv.slice(2)
const config = JSON.parse(json ?? '{}')
const out = (value) => process.stdout.write(`${JSON.stringify(value)}\n`)
const { listen, dial } = await import(`./transports/${transport}.mjs`)

let peer
if (role === 'server') {
  const server = await listen()
  out({ ready: server.addr })
  peer = await server.accept()
} else {
  peer = await dial(config.addr)
}
out({ armed: true })
const result = await runMessages(peer, { ...config, role })
if (result !== null) out({ result })
// The client ends the connection; the server waits for that.
if (role === 'client') await peer.close()
else await peer.closed()
