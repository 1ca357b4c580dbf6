// Relay trouble says what it is: each cause gets its own code from online() long before its
// timeout, names the relay's URL, and shows in relayStatus()/watchRelays(), also while running.
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Endpoint, generateSecretKey, nodeIdFromSecretKey, startRelayServer } from '../lib/index.mjs'
import { runNode, within } from './helpers.mjs'

// Far above what each cause takes (a few hundred ms here): an error that arrives with a
// relay's own code, not ERR_IROH_TIMEOUT, came before it.
const ONLINE_LIMIT_MS = 10_000
const FIXTURE = new URL('./fixtures/relay-online.mjs', import.meta.url).pathname

let dir
/** A CA and a certificate it signed for 127.0.0.1, made with openssl: a relay that keeps its identity across restarts. */
const pki = {}
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'relay-errors-'))
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=relay-errors test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign')
  openssl('req', ...ec, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=127.0.0.1')
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
  openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem',
    '-days', '2', '-extfile', 'ext.cnf')
  for (const name of ['ca.pem', 'leaf.pem', 'leaf.key']) pki[name] = readFileSync(join(dir, name), 'utf8')
})

const closers = []
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

async function relayServer(options) {
  const server = await startRelayServer({ bindAddr: '127.0.0.1:0', ...options })
  closers.push(() => server.close())
  return server
}

async function listening(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(() => new Promise((resolve) => server.close(resolve)))
  return server.address().port
}

async function relayEndpoint(relays, extra = {}) {
  const ep = await Endpoint.create({ relayMode: { relays }, addressLookup: 'none', ...extra })
  closers.push(() => ep.close())
  return ep
}

/** online()'s rejection: its code and message, and relayStatus() right after. */
async function onlineFails(ep) {
  const err = await within(ep.online({ timeoutMs: ONLINE_LIMIT_MS }), ONLINE_LIMIT_MS + 5_000, 'online()').then(
    () => {
      throw new Error('online() resolved')
    },
    (e) => e,
  )
  expect(err).toBeInstanceOf(Error)
  return { code: err.code, message: err.message, status: ep.relayStatus() }
}

/** Resolves with the first list `watchRelays` gives that `predicate` accepts. */
function relaysBecome(ep, predicate, what) {
  let stop
  const seen = new Promise((resolve) => {
    stop = ep.watchRelays((list) => {
      if (predicate(list)) resolve(list)
    })
  })
  return within(seen, 20_000, what).finally(() => stop())
}

describe('online() says why a relay cannot be used', () => {
  it('an untrusted certificate: its own code, the CA that signed it and the option that fixes it', async () => {
    const relay = await relayServer()
    const ep = await relayEndpoint([relay.relay])
    const { code, message, status } = await onlineFails(ep)
    expect(code).toBe('ERR_IROH_RELAY_UNTRUSTED')
    expect(message).toContain(relay.url)
    expect(message).toContain('relayCaCertificates')
    expect(message).toMatch(/signed by "CN=@alkdev\/iroh test relay CA [0-9a-f]{8}"/)
    expect(status).toEqual([{ url: relay.url, connected: false, error: { code, message } }])
  })

  it('trusting the CA of another throwaway relay is still untrusted, and names the CA that is needed', async () => {
    const relay = await relayServer()
    const other = await relayServer()
    const ep = await relayEndpoint([relay.relay], { relayCaCertificates: [other.caCertificatePem] })
    const { code, message } = await onlineFails(ep)
    expect(code).toBe('ERR_IROH_RELAY_UNTRUSTED')
    const [ours] = message.match(/CA [0-9a-f]{8}/)
    // The endpoint trusts `other`'s CA, whose tag differs: the message names the relay's own.
    const ep2 = await relayEndpoint([other.relay])
    const theirs = (await onlineFails(ep2)).message.match(/CA [0-9a-f]{8}/)[0]
    expect(ours).not.toBe(theirs)
  })

  it('a closed port: refused, naming the URL', async () => {
    const port = await listening(net.createServer())
    await closers.pop()()
    const url = `https://127.0.0.1:${port}/`
    const { code, message } = await onlineFails(await relayEndpoint([url]))
    expect(code).toBe('ERR_IROH_RELAY_REFUSED')
    expect(message).toContain(url)
  })

  it('a server that is not a relay: plain HTTP on an https URL, HTTP on an http URL, and an HTTPS server we trust', async () => {
    const port = await listening(http.createServer((_, res) => res.end('hello')))
    for (const url of [`https://127.0.0.1:${port}/`, `http://127.0.0.1:${port}/`]) {
      const { code, message } = await onlineFails(await relayEndpoint([url]))
      expect([url, code]).toEqual([url, 'ERR_IROH_NOT_A_RELAY'])
      expect(message).toContain(url)
    }
    const tlsPort = await listening(
      https.createServer({ cert: pki['leaf.pem'], key: pki['leaf.key'] }, (_, res) => res.writeHead(404).end()),
    )
    const url = `https://127.0.0.1:${tlsPort}/`
    const { code, message } = await onlineFails(await relayEndpoint([url], { relayCaCertificates: [pki['ca.pem']] }))
    expect(code).toBe('ERR_IROH_NOT_A_RELAY')
    expect(message).toContain(url)
    expect(message).toMatch(/101|404/)
  })

  it('a relay that does not answer stays a plain timeout, saying what was seen', async () => {
    const sockets = []
    const port = await listening(net.createServer((s) => sockets.push(s)))
    closers.push(() => {
      for (const s of sockets) s.destroy()
    })
    const url = `https://127.0.0.1:${port}/`
    const ep = await relayEndpoint([url])
    const err = await within(ep.online({ timeoutMs: 1_500 }), 10_000, 'online()').catch((e) => e)
    expect(err.code).toBe('ERR_IROH_TIMEOUT')
    expect(err.message).toMatch(/^no relay was reachable within 1500 ms/)
  })

  it('with two relays, the first one configured gives the code and the message names both', async () => {
    const port = await listening(net.createServer())
    await closers.pop()()
    const refused = `https://127.0.0.1:${port}/`
    const relay = await relayServer()
    const { code, message, status } = await onlineFails(await relayEndpoint([refused, relay.relay]))
    expect(code).toBe('ERR_IROH_RELAY_REFUSED')
    expect(message).toContain(refused)
    expect(message).toContain(relay.url)
    expect(status.map((s) => [s.url, s.error?.code])).toEqual([
      [refused, 'ERR_IROH_RELAY_REFUSED'],
      [relay.url, 'ERR_IROH_RELAY_UNTRUSTED'],
    ])
  })
})

describe('the programs a user writes', () => {
  it('a plain script that forgot relayCaCertificates prints the code that says so, and exits on its own', async () => {
    const relay = await relayServer()
    const run = await runNode([FIXTURE, relay.url], 30_000)
    expect(run.signal).toBeNull()
    expect(run.code).toBe(0)
    const out = JSON.parse(run.stdout.trim())
    expect(out.code).toBe('ERR_IROH_RELAY_UNTRUSTED')
    expect(out.message).toContain(relay.url)
    // The same script with the CA goes online.
    const caFile = join(dir, 'relay-ca.pem')
    writeFileSync(caFile, relay.caCertificatePem)
    const trusted = await runNode([FIXTURE, relay.url, caFile], 30_000)
    expect(JSON.parse(trusted.stdout.trim())).toEqual({ online: true })
  })

  it('a relay name that does not resolve (in a network namespace with no DNS): its own code', async () => {
    // unshare -rn: a namespace with nothing but a loopback that is down, so no DNS query leaves.
    const url = 'https://relay.alkdev-test.invalid/'
    const run = await runCommand('unshare', ['-rn', process.execPath, FIXTURE, url], 30_000)
    expect(run.signal).toBeNull()
    const out = JSON.parse(run.stdout.trim())
    expect(out.code).toBe('ERR_IROH_RELAY_UNRESOLVED')
    expect(out.message).toContain(url)
  })
})

/** Runs `command`; resolves with its exit and output, or kills it after `limitMs`. */
function runCommand(command, args, limitMs) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    child.stdout.on('data', (d) => (stdout += d))
    const killer = setTimeout(() => child.kill('SIGKILL'), limitMs)
    child.on('exit', (code, signal) => {
      clearTimeout(killer)
      resolve({ code, signal, stdout })
    })
  })
}

describe('while running', () => {
  it('a relay closed under a connected endpoint shows as refused, and as connected again once it is back', async () => {
    const identity = { certificatePem: pki['leaf.pem'], privateKeyPem: pki['leaf.key'] }
    let relay = await startRelayServer({ bindAddr: '127.0.0.1:0', ...identity })
    const { port } = new URL(relay.url)
    const quicPort = relay.quicPort
    closers.push(() => relay.close())
    const ep = await relayEndpoint([relay.relay], { relayCaCertificates: [pki['ca.pem']] })
    await within(ep.online({ timeoutMs: ONLINE_LIMIT_MS }), ONLINE_LIMIT_MS + 5_000, 'online()')
    expect(ep.relayStatus()).toEqual([{ url: relay.url, connected: true, error: null }])

    const down = relaysBecome(ep, (l) => l[0].error?.code === 'ERR_IROH_RELAY_REFUSED', 'refused after the relay closed')
    await relay.close()
    const [gone] = await down
    expect(gone.connected).toBe(false)
    expect(gone.error.message).toContain(gone.url)

    relay = await startRelayServer({ bindAddr: `127.0.0.1:${port}`, quicPort, ...identity })
    const [back] = await relaysBecome(ep, (l) => l[0].connected, 'connected once the relay is back')
    expect(back).toEqual({ url: gone.url, connected: true, error: null })
  })

  it('relayStatus() is empty with relays disabled and once closed; watchRelays ends at close', async () => {
    const off = await Endpoint.create({ relayMode: 'disabled', addressLookup: 'none', bindAddr: '127.0.0.1:0' })
    closers.push(() => off.close())
    expect(off.relayStatus()).toEqual([])
    const relay = await relayServer()
    const ep = await relayEndpoint([relay.relay], { relayCaCertificates: [relay.caCertificatePem] })
    const { liveAddresses } = createRequire(import.meta.url)('../lib/mailbox.js')
    const addressesBefore = liveAddresses()
    const calls = []
    let ended
    const over = new Promise((resolve) => (ended = resolve))
    ep.watchRelays((l) => {
      calls.push(l)
      if (l[0].connected) ended()
    })
    expect(liveAddresses()).toBe(addressesBefore + 1)
    await within(over, ONLINE_LIMIT_MS, 'watchRelays to see the relay connected')
    await ep.close()
    expect(ep.relayStatus()).toEqual([])
    expect(calls.every((l) => l.length === 1 && l[0].url === relay.url)).toBe(true)
    // The native side posts an end mark at close, after which the address is let go.
    await within(
      (async () => {
        while (liveAddresses() > addressesBefore) await new Promise((r) => setImmediate(r))
      })(),
      5_000,
      'the watch to end after close',
    )
    expect(() => ep.watchRelays(42)).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_ARGUMENT' }))
  })
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('a relay that serves only some node ids', () => {
  it('denies the others with ERR_IROH_RELAY_DENIED and its reason, and serves those on its list', async () => {
    const secretKey = generateSecretKey()
    const relay = await relayServer({ allow: [nodeIdFromSecretKey(secretKey)] })
    const trust = { relayCaCertificates: [relay.caCertificatePem] }
    const stranger = await relayEndpoint([relay.relay], trust)
    const { code, message, status } = await onlineFails(stranger)
    expect(code).toBe('ERR_IROH_RELAY_DENIED')
    expect(message).toContain(relay.url)
    expect(message).toContain('serves only the node ids it was started with')
    expect(status[0].error.code).toBe('ERR_IROH_RELAY_DENIED')
    const member = await relayEndpoint([relay.relay], { ...trust, secretKey })
    await within(member.online({ timeoutMs: ONLINE_LIMIT_MS }), ONLINE_LIMIT_MS + 5_000, 'online() of an allowed node')
    expect(member.relayStatus()).toEqual([{ url: relay.url, connected: true, error: null }])
  })

  it('refuses an allow list with something that is not a node id', async () => {
    await expect(startRelayServer({ bindAddr: '127.0.0.1:0', allow: ['nope'] })).rejects.toMatchObject({
      code: 'ERR_IROH_INVALID_NODE_ID',
    })
  })
})
