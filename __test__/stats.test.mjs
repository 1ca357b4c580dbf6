// hub.stats(), spoke.stats(), hub.metrics() and the status page (hub.serveStatus). Every
// endpoint is on loopback with relays and address lookup off (helpers.mjs).
import { afterEach, describe, expect, it } from 'vitest'
import { existsSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { connectSpoke, createHub } from '../lib/index.mjs'
import { CHROMIUM, launchBrowser } from './browser.mjs'
import { ALPN, closeAll, collect, endpoint, runNode, stateIs, within } from './helpers.mjs'

const FAST = { alpn: ALPN, initialDelayMs: 20, maxDelayMs: 200, connectTimeoutMs: 2_000 }
const cleanups = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
  await closeAll()
})

/** The UTF-8 size of the frame an event of this package is sent as. */
const frameBytes = (type, detail) => Buffer.byteLength(JSON.stringify({ type, detail }))

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const VALUE = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)$/
const unescapeText = (t) => t.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c))

/**
 * A strict parser of Prometheus's text exposition format (0.0.4), for what a hub writes:
 * every family has HELP then TYPE before its samples, samples follow their family, label
 * values are quoted and escaped, no series twice, counters end in `_total` and are not
 * negative, and the text ends in a newline. Returns Map(name -> { type, help, samples }),
 * each sample `{ labels, value }`. Throws naming the line at the first fault.
 */
function parsePrometheus(text) {
  if (!text.endsWith('\n')) throw new Error('the text does not end in a newline')
  const families = new Map()
  const series = new Set()
  let family = null
  const lines = text.slice(0, -1).split('\n')
  lines.forEach((line, i) => {
    const fail = (why) => {
      throw new Error(`line ${i + 1} (${JSON.stringify(line)}): ${why}`)
    }
    let m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line)
    if (m) {
      if (families.has(m[1])) fail('a second HELP for this family')
      if (/\\[^\\n]/.test(m[2].replace(/\\\\/g, ''))) fail('a bad escape in HELP')
      family = { name: m[1], help: unescapeText(m[2]), type: null, samples: [] }
      families.set(m[1], family)
      return
    }
    m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line)
    if (m) {
      if (family?.name !== m[1] || family.type !== null) fail('TYPE not right after its HELP')
      family.type = m[2]
      return
    }
    if (line.startsWith('#')) fail('a comment that is neither HELP nor TYPE')
    m = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`).exec(line)
    if (!m) fail('not a sample')
    const [, name, labelText = '', valueText] = m
    if (family?.name !== name || family.type === null) fail('a sample outside its family')
    if (!VALUE.test(valueText)) fail('not a number')
    const labels = {}
    let rest = labelText
    while (rest !== '') {
      const l = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest)
      if (!l) fail(`bad labels at ${JSON.stringify(rest)}`)
      if (l[1] in labels) fail(`label ${l[1]} twice`)
      labels[l[1]] = unescapeText(l[2])
      rest = rest.slice(l[0].length)
      if (l[3] === ',' && rest === '') fail('a trailing comma')
    }
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`
    if (series.has(key)) fail('the same series twice')
    series.add(key)
    const value = Number(valueText.replace('Inf', 'Infinity'))
    if (family.type === 'counter' && !name.endsWith('_total')) fail('a counter whose name does not end in _total')
    if (family.type === 'counter' && !(value >= 0)) fail('a negative counter')
    family.samples.push({ labels, value })
  })
  for (const f of families.values()) if (f.type === null) throw new Error(`family ${f.name} has no TYPE`)
  return families
}

/** The value of `name` for `nodeId` in parsed metrics. */
function sampleOf(families, name, nodeId) {
  const found = families.get(name)?.samples.filter((s) => s.labels.node_id === nodeId) ?? []
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name} for ${nodeId}`)
  return found[0]
}

/** A hub on a fresh endpoint, closed after the test. */
async function startHub(options = {}) {
  const ep = await endpoint({ alpns: [ALPN] })
  const hub = createHub(ep, { alpn: ALPN, ...options })
  cleanups.push(() => hub.close())
  return { ep, hub }
}

/** A spoke of `hub` at `hubEp`, closed after the test; resolves once the hub admitted it. */
async function startSpoke(hub, hubEp, options = {}) {
  const ep = await endpoint()
  const admitted = new Promise((resolve) =>
    hub.addEventListener('spoke', function seen(e) {
      if (e.detail.nodeId !== ep.nodeId()) return
      hub.removeEventListener('spoke', seen)
      resolve(e.detail.target)
    }),
  )
  const spoke = connectSpoke(ep, hubEp.ticket(), { ...FAST, ...options })
  cleanups.push(() => spoke.close())
  const target = await within(admitted, 10_000, 'the hub admitting the spoke')
  await within(stateIs(spoke, 'connected'), 10_000, 'the spoke connecting')
  return { ep, spoke, target, nodeId: ep.nodeId() }
}

/** Resolves once the hub reports `nodeId` gone. */
function disconnected(hub, nodeId) {
  return new Promise((resolve) =>
    hub.addEventListener('disconnect', function gone(e) {
      if (e.detail.nodeId !== nodeId) return
      hub.removeEventListener('disconnect', gone)
      resolve()
    }),
  )
}

describe('stats', () => {
  it('count the events and bytes each way, matching what was sent, on a plain connection', async () => {
    const { ep: hubEp, hub } = await startHub({ acks: false })
    const { spoke, target, nodeId } = await startSpoke(hub, hubEp, { acks: false })

    const before = hub.stats().spokes[nodeId]
    expect(before).toMatchObject({ nodeId, state: 'open', dialed: false, acked: false, eventsIn: 0, eventsOut: 0, bytesIn: 0, bytesOut: 0, reconnects: 0 })

    // Spoke to hub: details of different sizes, non-ASCII included (bytes, not characters).
    const details = [1, 'zwölf', { a: [1, 2, 3] }, 'x'.repeat(5000), null]
    const arrived = collect(target, 'up', details.length)
    for (const d of details) spoke.dispatchEvent(new CustomEvent('up', { detail: d }))
    await within(arrived, 10_000, 'the events reaching the hub')
    const upBytes = details.reduce((n, d) => n + frameBytes('up', d), 0)

    // Hub to spoke: to this spoke alone, and broadcasts.
    const down = collect(spoke, 'down', 3)
    const all = collect(spoke, 'all', 2)
    target.dispatchEvent(new CustomEvent('down', { detail: 'a' }))
    target.dispatchEvent(new CustomEvent('down', { detail: 'bb' }))
    target.dispatchEvent(new CustomEvent('down', { detail: 'ccc' }))
    expect(hub.broadcast('all', { n: 1 })).toBe(1)
    expect(hub.broadcast('all', { n: 2 })).toBe(1)
    await within(Promise.all([down, all]), 10_000, 'the events reaching the spoke')
    const downBytes = frameBytes('down', 'a') + frameBytes('down', 'bb') + frameBytes('down', 'ccc') + frameBytes('all', { n: 1 }) + frameBytes('all', { n: 2 })

    const atHub = hub.stats().spokes[nodeId]
    expect(atHub).toMatchObject({ eventsIn: details.length, bytesIn: upBytes, eventsOut: 5, bytesOut: downBytes, unackedEvents: 0, unackedBytes: 0 })
    expect(atHub.pathType).toBe('direct')
    expect(typeof atHub.rttMs).toBe('number')
    expect(atHub.rttMs).toBeGreaterThanOrEqual(0)
    expect(atHub.eventsInPerSecond).toBeGreaterThan(0)
    expect(atHub.rateWindowMs).toBeGreaterThan(0)
    expect(atHub.lastSeen).toBeGreaterThanOrEqual(atHub.connectedAt)

    const atSpoke = spoke.stats()
    expect(atSpoke).toMatchObject({
      nodeId,
      hubNodeId: hubEp.nodeId(),
      state: 'connected',
      pathType: 'direct',
      acked: false,
      eventsOut: details.length,
      bytesOut: upBytes,
      eventsIn: 5,
      bytesIn: downBytes,
      reconnects: 0,
    })
    const hubStats = hub.stats()
    expect(hubStats.nodeId).toBe(hubEp.nodeId())
    expect(hubStats.state).toBe('open')
  })

  it('show what a spoke holds for the hub until it is acknowledged, with acknowledged delivery', async () => {
    const { ep: hubEp, hub } = await startHub()
    const ep = await endpoint()
    const spoke = connectSpoke(ep, hubEp.ticket(), FAST)
    cleanups.push(() => spoke.close())
    // Dispatched before the first connection: held, so unacknowledged, with their exact size.
    for (let i = 0; i < 4; i++) spoke.dispatchEvent(new CustomEvent('held', { detail: i }))
    const held = spoke.stats()
    expect(held).toMatchObject({ state: 'connecting', pathType: 'none', rttMs: null, eventsOut: 4, unackedEvents: 4, connectedAt: null })
    expect(held.unackedBytes).toBe([0, 1, 2, 3].reduce((n, i) => n + frameBytes('held', i), 0))

    const admitted = new Promise((resolve) => hub.addEventListener('spoke', (e) => resolve(e.detail.target), { once: true }))
    const target = await within(admitted, 10_000, 'the hub admitting the spoke')
    const got = collect(target, 'held', 4)
    await within(spoke.flush({ acked: true }), 10_000, 'the hub acknowledging')
    await within(got, 10_000, 'the held events reaching the hub')
    const after = spoke.stats()
    expect(after).toMatchObject({ state: 'connected', acked: true, unackedEvents: 0, unackedBytes: 0, eventsOut: 4 })
    expect(hub.stats().spokes[ep.nodeId()]).toMatchObject({ acked: true, eventsIn: 4 })
    // The hub's control frames (its hello and acknowledgements) are bytes in at the spoke.
    expect(after.bytesIn).toBeGreaterThan(0)
  })

  it('keep a spoke\'s counts across its reconnects, and count them on both ends', async () => {
    const { ep: hubEp, hub } = await startHub({ acks: false })
    const { spoke, target, nodeId } = await startSpoke(hub, hubEp, { acks: false })
    const first = collect(target, 'n', 3)
    for (let i = 0; i < 3; i++) spoke.dispatchEvent(new CustomEvent('n', { detail: i }))
    await within(first, 10_000, 'the first events')

    const back = new Promise((resolve) => hub.addEventListener('spoke', (e) => resolve(e.detail.target), { once: true }))
    target.connection.close(0, 'kicked by the test')
    const again = await within(back, 10_000, 'the spoke reconnecting')
    await within(stateIs(spoke, 'connected'), 10_000, 'the spoke connected again')
    const second = collect(again, 'n', 2)
    for (let i = 0; i < 2; i++) spoke.dispatchEvent(new CustomEvent('n', { detail: i }))
    await within(second, 10_000, 'the events after the reconnect')

    expect(hub.stats().spokes[nodeId]).toMatchObject({ eventsIn: 5, reconnects: 1 })
    expect(spoke.stats()).toMatchObject({ eventsOut: 5, reconnects: 1 })
  })

  it('leave out a spoke once it disconnects', async () => {
    const { ep: hubEp, hub } = await startHub()
    const a = await startSpoke(hub, hubEp)
    const b = await startSpoke(hub, hubEp)
    expect(Object.keys(hub.stats().spokes).sort()).toEqual([a.nodeId, b.nodeId].sort())
    const gone = disconnected(hub, a.nodeId)
    await a.spoke.close()
    await within(gone, 10_000, 'the hub seeing the spoke leave')
    expect(Object.keys(hub.stats().spokes)).toEqual([b.nodeId])
    expect(a.spoke.stats()).toMatchObject({ state: 'closed', pathType: 'none', rttMs: null })
  })
})

describe('metrics', () => {
  it('the parser refuses what Prometheus would', () => {
    const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{node_id="x"} 1\n'
    expect(parsePrometheus(ok).get('a_total').samples).toEqual([{ labels: { node_id: 'x' }, value: 1 }])
    const bad = [
      ok.slice(0, -1),
      ok.replace('a_total{', 'b_total{'),
      ok.replace('node_id', 'node-id'),
      ok.replaceAll('a_total', 'a'),
      ok.replace('1\n', 'one\n'),
      ok.replace('"x"', 'x'),
      ok.replace('"x"', '"x",'),
      `${ok}a_total{node_id="x"} 2\n`,
      ok.replace('# TYPE a_total counter\n', ''),
      ok.replace(' 1\n', ' -1\n'),
    ]
    for (const text of bad) expect(() => parsePrometheus(text), text).toThrow()
  })

  it('hub.metrics() is Prometheus text with every spoke\'s figures, labelled by node id', async () => {
    const { ep: hubEp, hub } = await startHub({ acks: false })
    const a = await startSpoke(hub, hubEp, { acks: false })
    const b = await startSpoke(hub, hubEp, { acks: false })
    const got = collect(a.target, 'm', 3)
    for (let i = 0; i < 3; i++) a.spoke.dispatchEvent(new CustomEvent('m', { detail: 'quote " and \\ and \n' }))
    await within(got, 10_000, 'the events reaching the hub')
    const both = Promise.all([collect(a.spoke, 'all', 1), collect(b.spoke, 'all', 1)])
    hub.broadcast('all', 1)
    await within(both, 10_000, 'the broadcast reaching both spokes')

    const text = hub.metrics()
    const families = parsePrometheus(text)
    const stats = hub.stats().spokes
    expect(families.get('iroh_hub_spokes').samples).toEqual([{ labels: {}, value: 2 }])
    for (const [name, f] of families) if (f.type === 'counter') expect(name.endsWith('_total')).toBe(true)
    for (const spoke of [a, b]) {
      const s = stats[spoke.nodeId]
      expect(sampleOf(families, 'iroh_hub_spoke_info', spoke.nodeId).labels).toEqual({ node_id: spoke.nodeId, state: 'open', path: 'direct', acked: 'false', dialed: 'false' })
      expect(sampleOf(families, 'iroh_hub_spoke_received_events_total', spoke.nodeId).value).toBe(s.eventsIn)
      expect(sampleOf(families, 'iroh_hub_spoke_sent_events_total', spoke.nodeId).value).toBe(s.eventsOut)
      expect(sampleOf(families, 'iroh_hub_spoke_received_bytes_total', spoke.nodeId).value).toBe(s.bytesIn)
      expect(sampleOf(families, 'iroh_hub_spoke_sent_bytes_total', spoke.nodeId).value).toBe(s.bytesOut)
      expect(sampleOf(families, 'iroh_hub_spoke_reconnects_total', spoke.nodeId).value).toBe(0)
      expect(sampleOf(families, 'iroh_hub_spoke_rtt_seconds', spoke.nodeId).value).toBeGreaterThanOrEqual(0)
      expect(sampleOf(families, 'iroh_hub_spoke_unacked_events', spoke.nodeId).value).toBe(0)
    }
    expect(sampleOf(families, 'iroh_hub_spoke_received_events_total', a.nodeId).value).toBe(3)
    expect(sampleOf(families, 'iroh_hub_spoke_received_bytes_total', a.nodeId).value).toBe(3 * frameBytes('m', 'quote " and \\ and \n'))
    expect(sampleOf(families, 'iroh_hub_spoke_sent_events_total', b.nodeId).value).toBe(1)

    // A spoke that leaves leaves the metrics too.
    const gone = disconnected(hub, b.nodeId)
    await b.spoke.close()
    await within(gone, 10_000, 'the hub seeing the spoke leave')
    const after = parsePrometheus(hub.metrics())
    expect(after.get('iroh_hub_spokes').samples[0].value).toBe(1)
    expect(after.get('iroh_hub_spoke_info').samples.map((s) => s.labels.node_id)).toEqual([a.nodeId])
  })
})

/** GET with a bounded wait: resolves with `{ status, type, text }`. */
async function get(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() }
}

describe('status server', () => {
  it('serves /metrics and /stats.json on 127.0.0.1, 404 elsewhere, and closes with the hub', async () => {
    const { ep: hubEp, hub } = await startHub()
    const a = await startSpoke(hub, hubEp)
    const status = await hub.serveStatus({ port: 0 })
    expect(status.host).toBe('127.0.0.1')
    expect(status.port).toBeGreaterThan(0)
    expect(status.url).toBe(`http://127.0.0.1:${status.port}/`)

    const metrics = await get(`${status.url}metrics`)
    expect(metrics.status).toBe(200)
    expect(metrics.type).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(sampleOf(parsePrometheus(metrics.text), 'iroh_hub_spoke_info', a.nodeId).labels.path).toBe('direct')
    const json = await get(`${status.url}stats.json`)
    expect(json.type).toBe('application/json')
    expect(Object.keys(JSON.parse(json.text).spokes)).toEqual([a.nodeId])
    const page = await get(status.url)
    expect(page.type).toMatch(/^text\/html/)
    expect(page.text).toContain('stats.json')
    expect((await get(`${status.url}nope`)).status).toBe(404)

    await hub.close()
    await expect(fetch(`${status.url}metrics`, { signal: AbortSignal.timeout(10_000) })).rejects.toThrow()
    // Closing it again, or a hub that closed, does nothing more.
    await within(status.close(), 5_000, 'a second close')
    await expect(hub.serveStatus()).rejects.toMatchObject({ code: 'ERR_IROH_CONNECTION_CLOSED' })
  })

  it('is not loaded, so nothing listens, until serveStatus() is called', async () => {
    const lib = fileURLToPath(new URL('../lib/index.js', import.meta.url))
    const script = `
      const { Endpoint, createHub } = require(${JSON.stringify(lib)})
      const loaded = () => Object.keys(require.cache).some((f) => f.endsWith('status-server.js'))
      ;(async () => {
        const ep = await Endpoint.create({ relayMode: 'disabled', bindAddr: '127.0.0.1:0', addressLookup: 'none', alpns: ['a/1'] })
        const hub = createHub(ep, { alpn: 'a/1' })
        hub.stats(); hub.metrics()
        const before = loaded()
        const status = await hub.serveStatus()
        console.log(JSON.stringify({ before, after: loaded(), port: status.port > 0 }))
        await hub.close()
        await ep.close()
      })()`
    const { code, stdout, stderr } = await runNode(['-e', script], 30_000)
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
    expect(JSON.parse(stdout)).toEqual({ before: false, after: true, port: true })
  })

  it('does not keep the process alive: an unref\'d hub\'s process exits right after its page served a request', async () => {
    const lib = fileURLToPath(new URL('../lib/index.js', import.meta.url))
    const script = `
      const { Endpoint, createHub } = require(${JSON.stringify(lib)})
      ;(async () => {
        const ep = await Endpoint.create({ relayMode: 'disabled', bindAddr: '127.0.0.1:0', addressLookup: 'none', alpns: ['a/1'] })
        const hub = createHub(ep, { alpn: 'a/1' }).unref()
        const status = await hub.serveStatus()
        const text = await fetch(status.url + 'metrics').then((r) => r.text())
        console.log(text.split('\\n').find((l) => l.startsWith('iroh_hub_spokes ')))
      })()`
    const { code, signal, stdout, stderr } = await runNode(['-e', script], 30_000)
    expect({ code, signal, stderr, stdout }).toEqual({ code: 0, signal: null, stderr: '', stdout: 'iroh_hub_spokes 0\n' })
  })

  it('refuses bad options', async () => {
    const { hub } = await startHub()
    await expect(hub.serveStatus({ port: 70_000 })).rejects.toMatchObject({ code: 'ERR_IROH_INVALID_ARGUMENT' })
    await expect(hub.serveStatus({ host: 7 })).rejects.toMatchObject({ code: 'ERR_IROH_INVALID_ARGUMENT' })
  })

  it('a plain script with a hub, its status page and a spoke prints the stats and exits on its own', async () => {
    const script = fileURLToPath(new URL('./fixtures/status-script.mjs', import.meta.url))
    const { code, signal, stdout, stderr } = await runNode([script], 30_000)
    expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' })
    const [url, spokes, gauge] = stdout.trim().split('\n')
    expect(url).toMatch(/^status page: http:\/\/127\.0\.0\.1:\d+\/$/)
    const [only] = Object.values(JSON.parse(spokes))
    expect(only).toMatchObject({ state: 'open', pathType: 'direct', acked: true, eventsIn: 1, unackedEvents: 0 })
    expect(gauge).toBe('iroh_hub_spokes 1')
  })
})

// Debian's chromium (scripts/wasm-toolchain.sh installs it; .ci/run has it): in CI it must be
// there unless the run skips browser tests (the OS matrix does, having no toolchain).
const noChromium = process.env.IROH_BROWSER_TESTS === 'skip' || (!existsSync(CHROMIUM) && !process.env.CI)

describe.skipIf(noChromium)('status page in headless Chromium', () => {
  it('lists the connected spokes with their paths, and a spoke that disconnects leaves the table', async () => {
    const { ep: hubEp, hub } = await startHub()
    const spokes = []
    for (let i = 0; i < 3; i++) spokes.push(await startSpoke(hub, hubEp))
    // Some traffic, so the figures are not all zero.
    for (const [i, s] of spokes.entries()) {
      for (let n = 0; n <= i * 20; n++) s.spoke.dispatchEvent(new CustomEvent('work', { detail: { n, pad: 'x'.repeat(100 * i) } }))
      await within(s.spoke.flush({ acked: true }), 10_000, 'the spoke\'s events acknowledged')
    }
    hub.broadcast('tick', { at: 1 })
    const status = await hub.serveStatus({ port: 0 })
    const browser = await launchBrowser()
    cleanups.push(() => browser.close())
    const page = await browser.newPage()
    const errors = []
    page.on('pageerror', (e) => errors.push(e.message))
    await page.setViewport({ width: 1180, height: 250 })
    await page.goto(status.url)

    const rows = () =>
      page.$$eval('#spokes tr', (trs) => trs.map((tr) => ({ nodeId: tr.dataset.nodeId, path: tr.querySelector('.path').textContent, state: tr.querySelector('.state').textContent })))
    const ids = spokes.map((s) => s.nodeId).sort()
    await page.waitForFunction((n) => document.querySelectorAll('#spokes tr').length === n, { timeout: 10_000 }, 3)
    expect(await rows()).toEqual(ids.map((nodeId) => ({ nodeId, path: 'direct', state: 'open' })))
    expect(await page.$eval('#hub', (el) => el.textContent)).toContain(hubEp.nodeId())
    if (process.env.IROH_STATUS_SCREENSHOT) writeFileSync(process.env.IROH_STATUS_SCREENSHOT, await page.screenshot({ type: 'png' }))

    // One leaves: the page, refreshing on its own, drops its row.
    const leaving = spokes[1]
    const gone = disconnected(hub, leaving.nodeId)
    await leaving.spoke.close()
    await within(gone, 10_000, 'the hub seeing the spoke leave')
    await page.waitForFunction((id) => ![...document.querySelectorAll('#spokes tr')].some((tr) => tr.dataset.nodeId === id), { timeout: 10_000 }, leaving.nodeId)
    expect((await rows()).map((r) => r.nodeId)).toEqual(ids.filter((id) => id !== leaving.nodeId))
    expect(errors).toEqual([])
  })
})
