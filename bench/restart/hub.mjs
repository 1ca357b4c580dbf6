// The hub process of the restart benchmark: `node hub.mjs '<json>'` with { keyPath,
// bindAddr, expect, dial? }. Its identity is the key file; `dial` is the spoke list a
// restarted hub is told (addresses), which it dials with `hub.connect` as soon as it is up.
// Prints JSON lines: {"ready": {ticket, addr, at}}, {"all": {at, dialed, bothDialed}} the
// first time `expect` spokes are admitted at once, and for each "check" line on stdin
// {"checked": seq} after broadcasting `hub.check`. Runs until killed or stdin closes.
import { createInterface } from 'node:readline'
import { Endpoint, HubCloseCode, createHub } from '../../lib/index.mjs'
import { ALPN, LOCAL } from './shared.mjs'

const out = (value) => process.stdout.write(`${JSON.stringify(value)}\n`)
const { keyPath, bindAddr, expect, dial } = JSON.parse(process.argv[2])
const endpoint = await Endpoint.create({ ...LOCAL, bindAddr, secretKeyPath: keyPath, alpns: [ALPN] })
const hub = createHub(endpoint, { alpn: ALPN })
out({ ready: { ticket: endpoint.ticket(), addr: endpoint.addr(), at: Date.now() } })
let dialedIn = 0
let bothDialed = 0
let done = false
hub.addEventListener('spoke', (e) => {
  if (e.detail.dialed) dialedIn++
  if (!done && hub.spokes.length >= expect) {
    done = true
    out({ all: { at: Date.now(), dialed: dialedIn, bothDialed } })
  }
})
hub.addEventListener('disconnect', (e) => {
  if (e.detail.code === HubCloseCode.BOTH_DIALED) bothDialed++
})
// Failures are expected where a spoke keeps its own connection: connect resolves then.
if (dial) for (const addr of dial) hub.connect(addr, { timeoutMs: 10_000 }).catch(() => {})
let seq = 0
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== 'check') continue
  hub.broadcast('hub.check', ++seq)
  out({ checked: seq })
}
process.stdin.destroy()
await hub.close()
await endpoint.close()
