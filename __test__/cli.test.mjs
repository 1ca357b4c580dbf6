// bin/iroh.mjs as users run it: each command a child process. A relay of its own on
// loopback (`relay --self-signed`), `listen`/`connect` through it with bytes both ways,
// `ping`, `ticket`, exit codes. No n0 service: every command gets --relay or --no-relay,
// and ALKDEV_IROH_CLI_NO_N0=1 turns a forgotten one into a usage error.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Endpoint } from '../lib/index.mjs'
import { within } from './helpers.mjs'

const CLI = fileURLToPath(new URL('../bin/iroh.mjs', import.meta.url))
const DUMBPIPE_FIXTURE = fileURLToPath(new URL('./fixtures/cli-dumbpipe.mjs', import.meta.url))
const ENV = { ...process.env, ALKDEV_IROH_CLI_NO_N0: '1' }
const LIMIT_MS = 20_000

const dir = mkdtempSync(join(tmpdir(), 'iroh-cli-'))
const children = []
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/**
 * Starts the CLI. `line(stream, predicate)` resolves with the first line of stdout or stderr
 * that matches (bounded); `exited` with `{ code, signal, stdout, stderr }` (stdout as a Buffer).
 */
function cli(args, { input, shared = false } = {}) {
  const child = spawn(process.execPath, [CLI, ...args], { env: ENV, stdio: ['pipe', 'pipe', 'pipe'] })
  // The shared relay lives through the file; every other process ends with its test.
  if (!shared) children.push(child)
  const chunks = []
  const text = { stdout: '', stderr: '' }
  const waiters = []
  const check = () => {
    for (const w of waiters.slice()) {
      const found = text[w.stream].split('\n').slice(0, -1).find(w.predicate)
      if (found !== undefined) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(found)
      }
    }
  }
  child.stdout.on('data', (d) => {
    chunks.push(d)
    text.stdout += d
    check()
  })
  child.stderr.on('data', (d) => {
    text.stderr += d
    check()
  })
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(chunks), stderr: text.stderr })))
  exited.then(() => {
    for (const w of waiters.splice(0)) w.reject(new Error(`iroh ${args[0]} exited without printing the line waited for; stderr:\n${text.stderr}`))
  })
  if (input !== undefined) child.stdin.end(input)
  const line = (stream, predicate) =>
    within(
      new Promise((resolve, reject) => {
        waiters.push({ stream, predicate, resolve, reject })
        check()
      }),
      LIMIT_MS,
      `a line of iroh ${args[0]} on ${stream} (so far: ${JSON.stringify(text[stream].slice(-500))})`,
    )
  const json = async (stream, event) => JSON.parse(await line(stream, (l) => l.startsWith('{') && JSON.parse(l).event === event))
  return { child, line, json, exited: within(exited, LIMIT_MS * 2, `iroh ${args[0]} to exit`), text }
}

/** Runs the CLI to its end. */
const run = (args, options) => cli(args, options).exited

describe('iroh CLI', () => {
  let relay
  let relayArgs
  beforeAll(async () => {
    relay = cli(['relay', '--bind', '127.0.0.1:0', '--self-signed', '--ca-out', join(dir, 'ca.pem'), '--json'], { shared: true })
    const started = await relay.json('stdout', 'relay')
    expect(started.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/)
    expect(started.caFile).toBe(join(dir, 'ca.pem'))
    relayArgs = ['--relay', started.relayArgument, '--relay-ca', join(dir, 'ca.pem')]
  })
  afterAll(async () => {
    if (relay.child.exitCode === null) relay.child.kill('SIGKILL')
  })

  it('listen and connect pipe bytes both ways through a relay of its own, byte-exact', async () => {
    const toListener = randomBytes(700_000)
    const toDialer = randomBytes(300_001)
    const listener = cli(['listen', ...relayArgs, '--json'], { input: toDialer })
    const { ticket, alpn } = await listener.json('stderr', 'listening')
    expect(alpn).toBe('DUMBPIPEV0')
    const dialer = cli(['connect', ticket, ...relayArgs, '--json'], { input: toListener })
    // dumbpipe's protocol, under the ALPN by which two of ours know each other
    expect(await dialer.json('stderr', 'connected')).toMatchObject({ alpn: 'alkdev-iroh/pipe/0', remoteNodeId: expect.stringMatching(/^[0-9a-f]{64}$/) })
    const [l, d] = await Promise.all([listener.exited, dialer.exited])
    expect({ code: l.code, stderr: l.stderr }).toMatchObject({ code: 0 })
    expect({ code: d.code, stderr: d.stderr }).toMatchObject({ code: 0 })
    expect(l.stdout.equals(toListener)).toBe(true)
    expect(d.stdout.equals(toDialer)).toBe(true)
  })

  it('listen and connect with a custom ALPN and only the relay as path', async () => {
    const listener = cli(['listen', ...relayArgs, '--relay-only', '--alpn', 'utf8:my/proto/1', '--json'], { input: 'from listener\n' })
    const { ticket, alpn } = await listener.json('stderr', 'listening')
    expect(alpn).toBe('my/proto/1')
    const dialer = cli(['connect', ticket, ...relayArgs, '--relay-only', '--alpn', 'my/proto/1', '--json'], { input: Buffer.from([0, 1, 2, 255]) })
    const connected = await dialer.json('stderr', 'connected')
    expect(connected.pathType).toBe('relay')
    const [l, d] = await Promise.all([listener.exited, dialer.exited])
    expect([l.code, d.code]).toEqual([0, 0])
    expect([...l.stdout]).toEqual([0, 1, 2, 255])
    expect(d.stdout.toString()).toBe('from listener\n')
  })

  it('listen turns away a peer without the handshake and keeps waiting for one with it', async () => {
    const listener = cli(['listen', '--no-relay', '--bind', '127.0.0.1:0', '--json'], { input: 'ok\n' })
    const { ticket } = await listener.json('stderr', 'listening')
    const stranger = await Endpoint.create({ relayMode: 'disabled', addressLookup: 'none', bindAddr: '127.0.0.1:0' })
    try {
      const conn = await stranger.connect(ticket, 'DUMBPIPEV0', { timeoutMs: 10_000 })
      const { send } = await conn.openBi()
      await send.writeAll(Buffer.from('howdy'))
      expect(await within(conn.closed(), LIMIT_MS, 'the listener closing the stranger')).toMatchObject({ code: 1, reason: 'bad handshake' })
      expect(await listener.json('stderr', 'warning')).toMatchObject({ code: 'ERR_IROH_PROTOCOL' })
    } finally {
      await stranger.close()
    }
    const dialer = cli(['connect', ticket, '--no-relay', '--bind', '127.0.0.1:0'], { input: 'fine\n' })
    const [l, d] = await Promise.all([listener.exited, dialer.exited])
    expect([l.code, d.code]).toEqual([0, 0])
    expect([l.stdout.toString(), d.stdout.toString()]).toEqual(['fine\n', 'ok\n'])
  })

  it('a listener interrupted mid-pipe exits 0, and its dialer 1 with ERR_IROH_CONNECTION_CLOSED', async () => {
    const listener = cli(['listen', '--no-relay', '--bind', '127.0.0.1:0', '--json'])
    const { ticket } = await listener.json('stderr', 'listening')
    const dialer = cli(['connect', ticket, '--no-relay', '--bind', '127.0.0.1:0', '--json'])
    dialer.child.stdin.write('partial\n')
    await listener.line('stdout', (l) => l === 'partial')
    listener.child.kill('SIGINT')
    const [l, d] = await Promise.all([listener.exited, dialer.exited])
    expect(l.code).toBe(0)
    expect(l.stderr).toMatch(/"event":"interrupted"/)
    expect(d.code).toBe(1)
    expect(JSON.parse(d.stderr.trim().split('\n').at(-1))).toMatchObject({ event: 'error', code: 'ERR_IROH_CONNECTION_CLOSED' })
  })

  it('ping prints each round trip with its time and path, and a summary', async () => {
    const listener = cli(['listen', ...relayArgs, '--json'])
    const { ticket } = await listener.json('stderr', 'listening')
    const pinger = cli(['ping', ticket, ...relayArgs, '--relay-only', '--count', '3', '--interval', '100'])
    const { code, stdout, stderr } = await pinger.exited
    expect({ code, stderr }).toMatchObject({ code: 0 })
    const lines = stdout.toString().trim().split('\n')
    expect(lines.filter((l) => /^seq=\d+ time=\d+\.\d\d ms path=relay \(quic rtt \d+\.\d\d ms\)$/.test(l))).toHaveLength(3)
    expect(lines.at(-1)).toMatch(/^3 sent, 3 received; time min\/avg\/max = [\d.]+\/[\d.]+\/[\d.]+ ms; paths: relay 3$/)
    listener.child.kill('SIGINT')
    expect((await listener.exited).code).toBe(0)
  })

  it('ping --json: one object per line; SIGINT prints the summary and exits 0', async () => {
    const listener = cli(['listen', '--no-relay', '--bind', '127.0.0.1:0', '--json'])
    const { ticket } = await listener.json('stderr', 'listening')
    const pinger = cli(['ping', ticket, '--no-relay', '--bind', '127.0.0.1:0', '--interval', '50', '--json'])
    const pong = await pinger.json('stdout', 'pong')
    expect(pong).toMatchObject({ seq: 1, path: 'direct' })
    expect(pong.timeMs).toBeGreaterThan(0)
    expect(pong.rttMs).toBeGreaterThan(0)
    pinger.child.kill('SIGINT')
    const { code, stdout } = await pinger.exited
    expect(code).toBe(0)
    const records = stdout.toString().trim().split('\n').map((l) => JSON.parse(l))
    const summary = records.at(-1)
    expect(summary.event).toBe('summary')
    expect(summary.received).toBeGreaterThanOrEqual(1)
    expect(summary.paths.direct).toBe(summary.received)
    listener.child.kill('SIGTERM')
    expect((await listener.exited).code).toBe(0)
  })

  it('ticket keeps its node id across runs and creates the key file with mode 0600', async () => {
    const key = join(dir, 'keys', 'node.key')
    const first = await run(['ticket', '--key', key, '--no-relay', '--bind', '127.0.0.1:0', '--json'])
    expect(first.code).toBe(0)
    expect(statSync(key).mode & 0o777).toBe(0o600)
    const a = JSON.parse(first.stdout.toString())
    expect(a.nodeId).toMatch(/^[0-9a-f]{64}$/)
    expect(a.ticket).toMatch(/^endpoint[a-z0-9]+$/)
    const second = await run(['ticket', '--key', key, ...relayArgs])
    expect(second.code).toBe(0)
    expect(second.stdout.toString()).toMatch(new RegExp(`^node id: ${a.nodeId}\nticket: endpoint[a-z0-9]+\n$`))
    const other = JSON.parse((await run(['ticket', '--key', join(dir, 'other.key'), '--no-relay', '--json'])).stdout.toString())
    expect(other.nodeId).not.toBe(a.nodeId)
  })

  it('an invalid ticket exits 1 with its ERR_IROH_ code', async () => {
    const { code, stderr } = await run(['connect', 'endpointnotavalidticket', '--no-relay'], { input: '' })
    expect(code).toBe(1)
    expect(stderr).toMatch(/error ERR_IROH_INVALID_TICKET: /)
    const json = await run(['ping', 'endpointnotavalidticket', '--no-relay', '--json'])
    expect(json.code).toBe(1)
    expect(JSON.parse(json.stderr.trim().split('\n').at(-1))).toMatchObject({ event: 'error', code: 'ERR_IROH_INVALID_TICKET' })
  })

  it('bad usage exits 2 and prints the usage', async () => {
    for (const args of [
      [],
      ['frobnicate'],
      ['ticket', '--bogus'],
      ['connect', '--no-relay'],
      ['listen', '--no-relay', '--relay', 'https://127.0.0.1:1/'],
      ['relay', '--cert', 'x.pem'],
      ['ping', 'x', '--no-relay', '--count', 'many'],
      ['listen', '--relay', 'not a url'],
      // no --relay and no --no-relay: n0's relays, refused under ALKDEV_IROH_CLI_NO_N0=1
      ['ticket', '--key', join(dir, 'n0.key')],
    ]) {
      const { code, stderr } = await run(args)
      expect({ args, code }).toEqual({ args, code: 2 })
      expect(stderr).toMatch(/Usage: iroh /)
    }
    const help = await run(['connect', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout.toString()).toMatch(/^Usage: iroh connect TICKET/)
  })

  it('the relay prints its CA when self-signed, and SIGINT closes it with exit 0', async () => {
    const own = cli(['relay', '--bind', '127.0.0.1:0', '--self-signed'])
    await own.line('stdout', (l) => l.startsWith('dial it with: --relay https://127.0.0.1:'))
    expect(own.text.stdout).toMatch(/relay running: https:\/\/127\.0\.0\.1:\d+\//)
    expect(own.text.stdout).toMatch(/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/)
    own.child.kill('SIGINT')
    const { code, signal, stdout } = await own.exited
    expect({ code, signal }).toEqual({ code: 0, signal: null })
    expect(stdout.toString()).toMatch(/relay closed \(SIGINT\)\n$/)
    // the shared one, with SIGTERM
    relay.child.kill('SIGTERM')
    const shared = await relay.exited
    expect(shared.code).toBe(0)
    expect(JSON.parse(shared.stdout.toString().trim().split('\n').at(-1))).toEqual({ event: 'closed', signal: 'SIGTERM' })
  })
})

// A relay with a certificate of its own: a CA and a leaf for localhost made by openssl.
const openssl = spawnSync('openssl', ['version']).status === 0
if (!openssl) console.warn('relay --cert test skipped: no openssl binary')

describe.skipIf(!openssl)('iroh relay --cert', () => {
  it('serves the given certificate: a client that trusts its CA gets the relay into its ticket', async () => {
    const o = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    o('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'own-ca.key', '-out', 'own-ca.pem', '-days', '1', '-subj', '/CN=test CA')
    o('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=localhost')
    writeFileSync(join(dir, 'leaf.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n')
    o('x509', '-req', '-in', 'leaf.csr', '-CA', 'own-ca.pem', '-CAkey', 'own-ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '1', '-extfile', 'leaf.ext')
    const server = cli(['relay', '--cert', join(dir, 'leaf.pem'), '--key', join(dir, 'leaf.key'), '--hostname', 'localhost', '--json'])
    const started = await server.json('stdout', 'relay')
    expect(started.url).toMatch(/^https:\/\/localhost:\d+\/$/)
    expect(started.caCertificatePem).toBeUndefined()
    const { code, stdout, stderr } = await run(['ticket', '--key', join(dir, 'cert.key'), '--relay', started.relayArgument, '--relay-ca', join(dir, 'own-ca.pem'), '--json'])
    expect({ code, stderr }).toMatchObject({ code: 0 })
    expect(stderr).not.toMatch(/warning/)
    expect(JSON.parse(stdout.toString()).addr.relayUrl).toBe(started.url)
    server.child.kill('SIGTERM')
    expect((await server.exited).code).toBe(0)
  })
})

// dumbpipe insists on n0's services, so it runs only inside a network namespace of its own
// (`unshare -rn`: no route anywhere, loopback only), with this CLI beside it.
const dumbpipe = spawnSync('sh', ['-c', 'command -v dumbpipe'], { encoding: 'utf8' }).stdout.trim()
const unshare = dumbpipe && spawnSync('unshare', ['-rn', 'true']).status === 0
const why = !dumbpipe ? 'no dumbpipe binary on PATH' : !unshare ? 'unshare -rn is not allowed here' : null
if (why) console.warn(`dumbpipe interop skipped: ${why}`)

describe.skipIf(why)('interop with dumbpipe', () => {
  it('dumbpipe listen with iroh connect, and iroh listen with dumbpipe connect, bytes both ways', async () => {
    const child = spawn('unshare', ['-rn', process.execPath, DUMBPIPE_FIXTURE, CLI, dumbpipe], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(child)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const code = await within(new Promise((resolve) => child.on('close', resolve)), 90_000, 'the dumbpipe fixture')
    expect({ code, stderr }).toMatchObject({ code: 0 })
    const report = JSON.parse(stdout)
    expect(report).toEqual({
      'dumbpipe listen, iroh connect': { listener: 0, dialer: 0, toListener: true, toDialer: true },
      'iroh listen, dumbpipe connect': { listener: 0, dialer: 0, toListener: true, toDialer: true },
    })
  }, 120_000)
})
