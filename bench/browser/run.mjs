// The browser build against Node, the same run, the same local relay: events/s from a page
// (headless Chromium, the wasm pump) to a Node hub, and from a Node process to the same hub,
// both relay-only. Plain event targets, the sender respecting backpressure (it waits for
// flush() whenever more than 1 MiB is buffered). Prints one line per case and the gzipped
// size of the .wasm beside them.
//
//   npm run build:wasm && node bench/browser/run.mjs     (BENCH_EVENTS=200000 by default)
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'
import { Endpoint, createHub, startRelayServer } from '../../lib/index.mjs'
import { browserBuildProblem, launchBrowser, openPage, servePackage } from '../../__test__/browser.mjs'

const EVENTS = Number(process.env.BENCH_EVENTS ?? 200_000)
const ALPN = 'alkdev/bench-browser/1'
const problem = browserBuildProblem()
if (problem) {
  console.error(`bench/browser: ${problem}`)
  process.exit(1)
}

const relay = await startRelayServer()
const hubEp = await Endpoint.create({
  relayMode: { relays: [relay.relay] },
  relayCaCertificates: [relay.caCertificatePem],
  relayOnly: true,
  addressLookup: 'none',
  alpns: [ALPN],
})
await hubEp.online({ timeoutMs: 10_000 })
const hub = createHub(hubEp, { alpn: ALPN })
const ticket = hubEp.ticket()

/** Resolves with events/s at the hub for the next spoke's EVENTS events, first to last. */
function measure() {
  return new Promise((resolve) => {
    hub.addEventListener(
      'spoke',
      ({ detail: { target } }) => {
        let count = 0
        let first = 0
        target.addEventListener('e', () => {
          if (count === 0) first = performance.now()
          if (++count === EVENTS) resolve(((EVENTS - 1) / (performance.now() - first)) * 1000)
        })
      },
      { once: true },
    )
  })
}

const sender = async ({ target, total }) => {
  const pad = 'x'.repeat(48)
  for (let n = 0; n < total; n++) {
    target.dispatchEvent(new CustomEvent('e', { detail: { n, pad } }))
    if (n % 512 === 511 && target.bufferedAmount > 1024 * 1024) await target.flush()
  }
  await target.flush()
}

const results = {}

// Case: a page.
{
  const site = await servePackage()
  const browser = await launchBrowser()
  const page = await openPage(browser, site)
  const rate = measure()
  await page.evaluate(
    async ({ options, ticket, alpn, total, send }) => {
      const { Endpoint, createSpokeIrohEventTarget } = globalThis.iroh
      const ep = await Endpoint.create(options)
      const target = await createSpokeIrohEventTarget(await ep.connect(ticket, alpn, { timeoutMs: 15_000 }))
      // The sender is the same function text in both cases.
      await new Function(`return (${send})`)()({ target, total })
      globalThis.ep = ep
    },
    { options: { relayMode: { relays: [relay.url] }, addressLookup: 'none' }, ticket, alpn: ALPN, total: EVENTS, send: sender.toString() },
  )
  results.page = await rate
  await page.evaluate(() => globalThis.ep.close())
  await browser.close()
  await site.close()
}

// Case: a Node process, same relay, same hub.
{
  const rate = measure()
  const child = spawn(process.execPath, [fileURLToPath(new URL('./node-spoke.mjs', import.meta.url))], { stdio: ['pipe', 'inherit', 'inherit'] })
  child.stdin.end(JSON.stringify({ relay: relay.relay, ca: relay.caCertificatePem, ticket, alpn: ALPN, total: EVENTS, send: sender.toString() }))
  results.node = await rate
  await new Promise((resolve) => child.on('exit', resolve))
}

const wasm = readFileSync(fileURLToPath(new URL('../../dist/wasm/alkdev_iroh_wasm_bg.wasm', import.meta.url)))
const k = (r) => `${(r / 1000).toFixed(1)} k events/s`
console.log(`page -> Node hub through the local relay: ${k(results.page)}`)
console.log(`Node -> Node hub through the same relay:  ${k(results.node)}`)
console.log(`page / Node: ${(results.page / results.node).toFixed(2)}; .wasm ${wasm.length} bytes, ${gzipSync(wasm, { level: 9 }).length} gzipped; ${EVENTS} events of ~70 bytes each`)
await hub.close()
await hubEp.close()
await relay.close()
