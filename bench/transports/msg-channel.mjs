// Case G: this package's binary message channel (`createMessageChannel`), received with
// `for await`.
import { Endpoint, createMessageChannel } from '../../lib/index.mjs'
import { peerOf } from './alkdev.mjs'

const ALPN = 'alkdev-bench/1'
const LOCAL = { relayMode: 'disabled', addressLookup: 'none', bindAddr: '127.0.0.1:0' }

export async function listen() {
  const endpoint = await Endpoint.create({ ...LOCAL, alpns: [ALPN] })
  return {
    addr: endpoint.ticket(),
    async accept() {
      return wrap(createMessageChannel(await endpoint.accept(), { role: 'accept' }), endpoint)
    },
  }
}

export async function dial(addr) {
  const endpoint = await Endpoint.create(LOCAL)
  const conn = await endpoint.connect(addr, ALPN, { timeoutMs: 10_000 })
  return wrap(createMessageChannel(conn, { role: 'open' }), endpoint)
}

function wrap(channel, endpoint) {
  return { messages: channel, ...peerOf(channel, endpoint, (bytes) => channel.send(bytes)) }
}
