// A relay server started from Node, on loopback: endpoints trust it only when told to,
// carry events through it, and show which path their data takes.
import { afterEach, describe, expect, it } from 'vitest'
import { generateKeyPairSync } from 'node:crypto'
import { connect as tlsConnect } from 'node:tls'
import { Endpoint, createHubIrohEventTarget, createSpokeIrohEventTarget, startRelayServer } from '../lib/index.mjs'
import { ALPN, closeAll, endpoint, rejectsWithCode, within } from './helpers.mjs'

const relays = []
afterEach(async () => {
  await closeAll()
  await Promise.all(relays.splice(0).map((r) => r.close()))
})

async function relay(options) {
  const server = await startRelayServer(options)
  relays.push(server)
  return server
}

/** Endpoint options that use `server` and trust its generated CA. */
const through = (server, extra = {}) => ({
  relayMode: { relays: [server.relay] },
  relayCaCertificates: [server.caCertificatePem],
  addressLookup: 'none',
  ...extra,
})

/**
 * Connects `spokeEp` to `hubEp` knowing only its node id and relay URL; event targets on
 * both. `pathState(predicate)` looks through every `pathchange` of the spoke since its
 * creation (the first, the paths at creation, may come before a listener added later).
 */
async function targets(hubEp, spokeEp, relayUrl) {
  const accepted = hubEp.accept()
  const conn = await spokeEp.connect({ nodeId: hubEp.nodeId(), relayUrl }, ALPN, { timeoutMs: 10_000 })
  const spoke = await createSpokeIrohEventTarget(conn)
  const pathStates = []
  const waiters = []
  spoke.lifecycle.addEventListener('pathchange', (e) => {
    pathStates.push(e.detail)
    for (const wake of waiters.splice(0)) wake()
  })
  const pathState = async (predicate) => {
    for (;;) {
      const found = pathStates.find(predicate)
      if (found) return found
      await new Promise((resolve) => waiters.push(resolve))
    }
  }
  const hub = await createHubIrohEventTarget(await within(accepted, 10_000, 'accept'))
  return { conn, spoke, hub, pathState }
}

/** Sends `n` numbered events from `from` and resolves once `to` has them all, in order. */
async function exchange(from, to, type, n) {
  const got = []
  const all = new Promise((resolve) =>
    to.addEventListener(type, (e) => {
      got.push(e.detail)
      if (got.length === n) resolve()
    }),
  )
  for (let i = 0; i < n; i++) from.dispatchEvent(new CustomEvent(type, { detail: i }))
  await within(all, 20_000, `${n} ${type} events`)
  expect(got).toEqual(Array.from({ length: n }, (_, i) => i))
}

describe('relay server', () => {
  it('serves a URL with a generated CA that endpoints must be told to trust', async () => {
    const server = await relay()
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/)
    expect(server.relay).toEqual({ url: server.url, quicPort: server.quicPort })
    expect(server.quicPort).toBeGreaterThan(0)
    expect(server.caCertificatePem).toMatch(/^-----BEGIN CERTIFICATE-----/)

    const trusting = await endpoint(through(server))
    await within(trusting.online({ timeoutMs: 10_000 }), 20_000, 'online')
    expect(trusting.addr().relayUrl).toBe(server.url)
    // Without the CA the certificate is not trusted, and online() says so (relay-errors.test.mjs has the rest).
    const { relayCaCertificates, ...untrusted } = through(server)
    expect(relayCaCertificates).toHaveLength(1)
    const doubting = await endpoint(untrusted)
    await rejectsWithCode(within(doubting.online({ timeoutMs: 10_000 }), 20_000, 'online'), 'ERR_IROH_RELAY_UNTRUSTED')
  })

  it('relays events between relay-only endpoints, whose path type says relay', async () => {
    const server = await relay()
    const hubEp = await endpoint(through(server, { alpns: [ALPN], relayOnly: true, bindAddr: undefined }))
    const spokeEp = await endpoint(through(server, { relayOnly: true, bindAddr: undefined }))
    expect(hubEp.addr().directAddresses).toEqual([])
    await within(Promise.all([hubEp.online(), spokeEp.online()]), 20_000, 'online')
    const { conn, spoke, hub, pathState } = await targets(hubEp, spokeEp, server.url)

    const first = await within(pathState(() => true), 10_000, 'first pathchange')
    expect(first.pathType).toBe('relay')
    expect(first.paths).toEqual([expect.objectContaining({ kind: 'relay', remoteAddr: server.url, selected: true })])
    await exchange(spoke, hub, 'up', 1_000)
    await exchange(hub, spoke, 'down', 1_000)
    expect(conn.pathType()).toBe('relay')
    expect(spoke.pathType()).toBe('relay')
    expect(hub.pathType()).toBe('relay')
    expect(conn.paths().map((p) => p.kind)).toEqual(['relay'])
    expect(conn.paths()[0].rttMs).toBeGreaterThan(0)
  })

  it('a connection dialed through the relay moves to a direct path when one exists', async () => {
    const server = await relay()
    const hubEp = await endpoint(through(server, { alpns: [ALPN] }))
    const spokeEp = await endpoint(through(server))
    await within(Promise.all([hubEp.online(), spokeEp.online()]), 20_000, 'online')
    const { conn, spoke, hub, pathState } = await targets(hubEp, spokeEp, server.url)
    const direct = pathState((state) => state.pathType === 'direct')
    await exchange(spoke, hub, 'up', 100)
    const state = await within(direct, 20_000, 'direct path')
    const selected = state.paths.find((p) => p.selected)
    expect(selected.kind).toBe('direct')
    expect(hubEp.addr().directAddresses).toContain(selected.remoteAddr)
    await exchange(hub, spoke, 'down', 100)
    expect(conn.pathType()).toBe('direct')

    // watchPaths on the connection replays the current state and can be stopped.
    const seen = []
    const stop = conn.watchPaths((s) => seen.push(s.pathType))
    await within(
      (async () => {
        while (seen.length === 0) await new Promise((resolve) => setImmediate(resolve))
      })(),
      10_000,
      'watchPaths replay',
    )
    stop()
    expect(seen[0]).toBe('direct')
  })

  it('startRelayServer({ hostname }) names it in the URL; its generated certificate covers the name, the bound IP and localhost', async () => {
    const server = await relay({ bindAddr: '127.0.0.1:0', hostname: 'relay.test' })
    const { port } = new URL(server.url)
    expect(server.url).toBe(`https://relay.test:${port}/`)
    expect(server.relay).toEqual({ url: server.url, quicPort: server.quicPort })
    // What a TLS client trusting the generated CA makes of the certificate, asked for `name`.
    const verdict = (name) =>
      within(
        new Promise((resolve) => {
          const ip = /^[\d.]+$/.test(name)
          const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), ca: server.caCertificatePem, servername: ip ? undefined : name })
          socket.once('secureConnect', () => {
            resolve('trusted')
            socket.destroy()
          })
          socket.once('error', (err) => resolve(err.code))
        }),
        10_000,
        `TLS handshake for ${name}`,
      )
    expect(await verdict('relay.test')).toBe('trusted')
    expect(await verdict('localhost')).toBe('trusted')
    expect(await verdict('127.0.0.1')).toBe('trusted')
    expect(await verdict('other.test')).toBe('ERR_TLS_CERT_ALTNAME_INVALID')
    // Dialed by its IP (no name lookup), the relay serves an endpoint that trusts the CA.
    const ep = await endpoint({
      relayMode: { relays: [{ url: `https://127.0.0.1:${port}/`, quicPort: server.quicPort }] },
      relayCaCertificates: [server.caCertificatePem],
    })
    await within(ep.online({ timeoutMs: 10_000 }), 20_000, 'online through the relay by its IP')
    expect(ep.addr().relayUrl).toBe(`https://127.0.0.1:${port}/`)
    await rejectsWithCode(startRelayServer({ hostname: 'relay.test:443' }), 'ERR_IROH_INVALID_ARGUMENT')
    await rejectsWithCode(startRelayServer({ hostname: '' }), 'ERR_IROH_INVALID_ARGUMENT')
  })

  it('rejects bad certificates, relays and option mixes with coded errors', async () => {
    const server = await relay()
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' })
    // A certificate (the CA's) with a key that is not its own.
    await rejectsWithCode(startRelayServer({ certificatePem: server.caCertificatePem, privateKeyPem: keyPem }), 'ERR_IROH_INVALID_CERTIFICATE')
    await rejectsWithCode(startRelayServer({ certificatePem: 'not pem', privateKeyPem: keyPem }), 'ERR_IROH_INVALID_CERTIFICATE')
    await rejectsWithCode(startRelayServer({ certificatePem: server.caCertificatePem }), 'ERR_IROH_INVALID_ARGUMENT')
    await rejectsWithCode(startRelayServer({ quicPort: 70_000 }), 'ERR_IROH_INVALID_ARGUMENT')
    await rejectsWithCode(startRelayServer({ bindAddr: 'nowhere' }), 'ERR_IROH_INVALID_ADDR')
    await rejectsWithCode(startRelayServer({ port: 1 }), 'ERR_IROH_INVALID_ARGUMENT')
    await rejectsWithCode(startRelayServer({ bindAddr: `127.0.0.1:${new URL(server.url).port}` }), 'ERR_IROH_BIND')

    const base = { addressLookup: 'none', bindAddr: '127.0.0.1:0' }
    await rejectsWithCode(Endpoint.create({ ...base, relayMode: { relays: [server.relay] }, relayCaCertificates: ['garbage'] }), 'ERR_IROH_INVALID_CERTIFICATE')
    await rejectsWithCode(Endpoint.create({ ...base, relayMode: { relays: [{ url: server.url }] } }), 'ERR_IROH_INVALID_ARGUMENT')
    await rejectsWithCode(Endpoint.create({ ...base, relayMode: { relays: [{ url: 'nope', quicPort: 1 }] } }), 'ERR_IROH_INVALID_RELAY_URL')
    await rejectsWithCode(Endpoint.create({ ...base, relayMode: { relays: [{ url: server.url, quicPort: 65_536 }] } }), 'ERR_IROH_INVALID_ARGUMENT')
    await rejectsWithCode(Endpoint.create({ addressLookup: 'none', relayMode: 'disabled', relayOnly: true }), 'ERR_IROH_INVALID_ARGUMENT')
    await rejectsWithCode(Endpoint.create({ ...base, relayMode: { relays: [server.url] }, relayOnly: true }), 'ERR_IROH_INVALID_ARGUMENT')
  })
})
