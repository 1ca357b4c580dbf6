// bench/browser's Node sender: reads its config as JSON on stdin, dials the hub through the
// relay and sends with the same function text as the page.
import { Endpoint, createSpokeIrohEventTarget } from '../../lib/index.mjs'

let input = ''
for await (const chunk of process.stdin) input += chunk
const config = JSON.parse(input)
const ep = await Endpoint.create({
  relayMode: { relays: [config.relay] },
  relayCaCertificates: [config.ca],
  relayOnly: true,
  addressLookup: 'none',
})
const target = await createSpokeIrohEventTarget(await ep.connect(config.ticket, config.alpn, { timeoutMs: 15_000 }))
// The sender is the same function text in both cases.
await new Function(`return (${config.send})`)()({ target, total: config.total })
await target.close()
await ep.close()
