// A page in the browser talking to a Node hub through a relay, all on this machine:
//
//   npm run build:wasm && node examples/browser/serve.mjs
//
// starts a relay (startRelayServer, with a throwaway CA), a hub on it, and a web server on
// 127.0.0.1 for index.html, which imports @alkdev/iroh's browser build. Open the printed URL
// in a browser started with --ignore-certificate-errors (the relay's CA is its own; with a
// relay that has a real certificate, no flag is needed). The hub prints what the page says
// and answers; the page shows what the hub says. Prints {"url": ...} first, as JSON lines.
import { createServer } from 'node:http'
import { readFileSync } from 'node:fs'
import { Endpoint, createHub, startRelayServer } from '../../lib/index.mjs'

const ALPN = 'example/browser/1'
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`)
const relay = await startRelayServer()
const endpoint = await Endpoint.create({
  relayMode: { relays: [relay.relay] },
  relayCaCertificates: [relay.caCertificatePem],
  relayOnly: true,
  addressLookup: 'none',
  alpns: [ALPN],
})
await endpoint.online({ timeoutMs: 10_000 })
const hub = createHub(endpoint, { alpn: ALPN })
hub.addEventListener('spoke', ({ detail: { nodeId, target } }) => {
  target.addEventListener('page.hello', (e) => {
    print({ heard: { nodeId, pathType: target.connection.pathType(), detail: e.detail } })
    target.dispatchEvent(new CustomEvent('hub.hello', { detail: { text: `hello, ${nodeId.slice(0, 8)}` } }))
  })
})

const files = {
  '/': ['text/html', readFileSync(new URL('./index.html', import.meta.url))],
  '/dist/browser.mjs': ['text/javascript', readFileSync(new URL('../../dist/browser.mjs', import.meta.url))],
  '/dist/wasm/alkdev_iroh_wasm.js': ['text/javascript', readFileSync(new URL('../../dist/wasm/alkdev_iroh_wasm.js', import.meta.url))],
  '/dist/wasm/alkdev_iroh_wasm_bg.wasm': ['application/wasm', readFileSync(new URL('../../dist/wasm/alkdev_iroh_wasm_bg.wasm', import.meta.url))],
  '/config.json': ['application/json', JSON.stringify({ relay: relay.url, ticket: endpoint.ticket(), alpn: ALPN })],
}
const server = createServer((req, res) => {
  const file = files[new URL(req.url, 'http://x').pathname]
  if (!file) return res.writeHead(404).end()
  res.writeHead(200, { 'content-type': file[0] }).end(file[1])
})
server.listen(0, '127.0.0.1', () => print({ url: `http://127.0.0.1:${server.address().port}/` }))

const stop = async () => {
  server.close()
  server.closeAllConnections()
  // The endpoint first: it drops every connection at once, where hub.close() would wait for
  // a page that went away without closing until its connection times out (30 s on a relay).
  await endpoint.close()
  await hub.close()
  await relay.close()
}
process.on('SIGINT', stop)
process.stdin.on('end', stop)
process.stdin.resume()
