// Headless Chromium for the browser tests: Debian's chromium driven by puppeteer-core, a
// page served from 127.0.0.1 that imports the package's browser build (dist/browser.mjs),
// and nothing reachable but loopback (every host name resolves to nothing but 127.0.0.1).
import { createServer } from 'node:http'
import { existsSync, readFileSync } from 'node:fs'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sourceHash } from '../scripts/wasm-sources.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Why the browser build cannot be tested here, or null: missing, stale, or no chromium. */
export function browserBuildProblem() {
  const stampFile = join(root, 'dist/build-stamp.json')
  if (!existsSync(join(root, 'dist/browser.mjs')) || !existsSync(stampFile)) {
    return 'the browser build is missing: run `bash scripts/wasm-toolchain.sh` once, then `npm run build:wasm`'
  }
  const stamp = JSON.parse(readFileSync(stampFile, 'utf8'))
  if (stamp.sources !== sourceHash(root)) {
    return 'the browser build is stale (lib/ or crates/ changed since): run `npm run build:wasm`'
  }
  if (!existsSync(CHROMIUM)) return `no chromium at ${CHROMIUM}: run \`bash scripts/wasm-toolchain.sh\` (or set CHROMIUM_PATH)`
  return null
}

/** The package's browser entry, as its `browser` export condition names it. */
export function browserEntry() {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  return manifest.exports['.'].browser.replace(/^\.\//, '/')
}

/** `createPubSub` from @graphql-yoga/subscription, bundled for the page as an app would. */
async function pubsubBundle() {
  const esbuild = await import('esbuild')
  const out = await esbuild.build({
    stdin: { contents: "export { createPubSub } from '@graphql-yoga/subscription'", resolveDir: root },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    write: false,
  })
  return out.outputFiles[0].contents
}

const TYPES = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' }

/** Serves the package's dist/ on 127.0.0.1, and an empty page at `/`. */
export async function servePackage() {
  const pubsub = await pubsubBundle()
  const imports = { '@alkdev/iroh': browserEntry(), '@graphql-yoga/subscription': '/vendor/subscription.mjs' }
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html' })
      // The page imports the package by name, resolved to its browser entry (an import map
      // from package.json's `browser` condition), as an app without a bundler would.
      return res.end(`<!doctype html><title>@alkdev/iroh browser test</title>
<script type="importmap">${JSON.stringify({ imports })}</script>
<script type="module">
  Promise.all([import('@alkdev/iroh'), import('@graphql-yoga/subscription')]).then(
    ([iroh, sub]) => { globalThis.createPubSub = sub.createPubSub; globalThis.iroh = iroh },
    (e) => { globalThis.irohError = String(e && e.stack || e) })
</script>`)
    }
    if (path === '/vendor/subscription.mjs') {
      res.writeHead(200, { 'content-type': 'text/javascript' })
      return res.end(pubsub)
    }
    const file = normalize(join(root, path))
    if (!file.startsWith(join(root, 'dist')) || !existsSync(file)) {
      res.writeHead(404)
      return res.end()
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' })
    res.end(readFileSync(file))
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) }
}

/** A headless Chromium that reaches loopback only. */
export async function launchBrowser() {
  const { default: puppeteer } = await import('puppeteer-core')
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      // Containers often give /dev/shm 64 MiB, which a renderer can outgrow.
      '--disable-dev-shm-usage',
      '--disable-gpu',
      // The local relay's certificate comes from a throwaway CA of its own.
      '--ignore-certificate-errors',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-sync',
      '--no-first-run',
      '--no-default-browser-check',
      '--metrics-recording-only',
      '--disable-domain-reliability',
      '--disable-breakpad',
    ],
  })
}

/**
 * A page with the browser build loaded as `globalThis.iroh` (from the package's `browser`
 * entry, dist/browser.mjs). Console errors and page errors go to `log`.
 */
export async function openPage(browser, site, log = []) {
  const page = await browser.newPage()
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`))
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`))
  await page.goto(site.url)
  await page.waitForFunction(() => globalThis.iroh || globalThis.irohError, { timeout: 20_000 })
  const error = await page.evaluate(() => globalThis.irohError)
  if (error) throw new Error(`the browser build did not load: ${error}`)
  return page
}
