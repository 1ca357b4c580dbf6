import { afterEach, describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Connection, Endpoint, RelayServer, SendStream, RecvStream, nodeIdFromSecretKey, parseNodeId, setLogLevel, initLogging, generateSecretKey } from '../lib/index.mjs'
import { ALPN, LOOPBACK, closeAll, endpoint, pair, rejectsWithCode, within } from './helpers.mjs'

afterEach(closeAll)

const someNodeId = () => nodeIdFromSecretKey(generateSecretKey())

describe('invalid input gets a coded error', () => {
  it('node ids', async () => {
    const ep = await endpoint()
    for (const bad of ['', 'abc', 'z'.repeat(64), someNodeId().slice(1)]) {
      await rejectsWithCode(ep.connect(bad, ALPN), 'ERR_IROH_INVALID_NODE_ID')
    }
    await rejectsWithCode(ep.connect({ nodeId: 'nope', directAddresses: [] }, ALPN), 'ERR_IROH_INVALID_NODE_ID')
    expect(() => parseNodeId('nope')).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_NODE_ID' }))
    expect(parseNodeId(someNodeId().toUpperCase())).toMatch(/^[0-9a-f]{64}$/)
  })

  it('tickets', async () => {
    const server = await endpoint({ alpns: [ALPN] })
    const ep = await endpoint()
    const ticket = server.ticket()
    await rejectsWithCode(ep.connect('endpointnotaticket', ALPN), 'ERR_IROH_INVALID_TICKET')
    await rejectsWithCode(ep.connect(ticket.slice(0, -4), ALPN), 'ERR_IROH_INVALID_TICKET')
    await rejectsWithCode(ep.connect(`${ticket}x`, ALPN), 'ERR_IROH_INVALID_TICKET')
  })

  it('secret keys', async () => {
    await rejectsWithCode(Endpoint.create({ ...LOOPBACK, secretKey: 'short' }), 'ERR_IROH_INVALID_SECRET_KEY')
    await rejectsWithCode(Endpoint.create({ ...LOOPBACK, secretKey: 'g'.repeat(64) }), 'ERR_IROH_INVALID_SECRET_KEY')
    await rejectsWithCode(Endpoint.create({ ...LOOPBACK, secretKey: 42 }), 'ERR_IROH_INVALID_ARGUMENT')
    expect(() => nodeIdFromSecretKey('xyz')).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_SECRET_KEY' }))
    expect(() => nodeIdFromSecretKey(null)).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_SECRET_KEY' }))
  })

  it('ALPNs', async () => {
    await rejectsWithCode(Endpoint.create({ ...LOOPBACK, alpns: [''] }), 'ERR_IROH_INVALID_ALPN')
    await rejectsWithCode(Endpoint.create({ ...LOOPBACK, alpns: ['x'.repeat(256)] }), 'ERR_IROH_INVALID_ALPN')
    await rejectsWithCode(Endpoint.create({ ...LOOPBACK, alpns: [7] }), 'ERR_IROH_INVALID_ALPN')
    const ep = await endpoint()
    await rejectsWithCode(ep.connect(someNodeId(), ''), 'ERR_IROH_INVALID_ALPN')
    await rejectsWithCode(ep.connect(someNodeId(), undefined), 'ERR_IROH_INVALID_ALPN')
  })

  it('options', async () => {
    await rejectsWithCode(Endpoint.create({ ...LOOPBACK, relaymode: 'disabled' }), 'ERR_IROH_INVALID_ARGUMENT')
    await rejectsWithCode(Endpoint.create({ ...LOOPBACK, relayMode: 'sometimes' }), 'ERR_IROH_INVALID_ARGUMENT')
    await rejectsWithCode(Endpoint.create({ ...LOOPBACK, relayMode: { relays: ['not a url'] } }), 'ERR_IROH_INVALID_RELAY_URL')
    await rejectsWithCode(Endpoint.create({ ...LOOPBACK, bindAddr: 'localhost' }), 'ERR_IROH_INVALID_ADDR')
    await rejectsWithCode(Endpoint.create({ ...LOOPBACK, addressLookup: 'dht' }), 'ERR_IROH_INVALID_ARGUMENT')
    await rejectsWithCode(Endpoint.create({ ...LOOPBACK, secretKey: generateSecretKey(), secretKeyPath: '/tmp/x' }), 'ERR_IROH_INVALID_ARGUMENT')
    await rejectsWithCode(Endpoint.create({ ...LOOPBACK, secretKeyPath: '/proc/definitely/not/writable.key' }), 'ERR_IROH_KEY_FILE')
    const ep = await endpoint()
    await rejectsWithCode(ep.connect(someNodeId(), ALPN, { timeoutMs: -1 }), 'ERR_IROH_INVALID_ARGUMENT')
    await rejectsWithCode(ep.connect(12345, ALPN), 'ERR_IROH_INVALID_ARGUMENT')
    await rejectsWithCode(ep.connect({ nodeId: someNodeId(), directAddresses: ['nowhere'] }, ALPN), 'ERR_IROH_INVALID_ADDR')
  })

  it('a node id with no known address fails to connect with a coded error', async () => {
    const ep = await endpoint()
    const err = await rejectsWithCode(within(ep.connect(someNodeId(), ALPN, { timeoutMs: 5_000 }), 20_000, 'connect'), 'ERR_IROH_CONNECT')
    expect(err.message).toMatch(/cannot connect/)
  })

  it('a peer that does not answer times out with ERR_IROH_CONNECT_TIMEOUT', async () => {
    // A UDP port that nothing reads from: the handshake never completes.
    const { createSocket } = await import('node:dgram')
    const sink = createSocket('udp4')
    await new Promise((resolve) => sink.bind(0, '127.0.0.1', resolve))
    try {
      const ep = await endpoint()
      const target = { nodeId: someNodeId(), directAddresses: [`127.0.0.1:${sink.address().port}`] }
      await rejectsWithCode(within(ep.connect(target, ALPN, { timeoutMs: 300 }), 20_000, 'connect'), 'ERR_IROH_CONNECT_TIMEOUT')
    } finally {
      sink.close()
    }
  })

  it('a wrong ALPN is refused', async () => {
    const server = await endpoint({ alpns: [ALPN] })
    const client = await endpoint()
    await rejectsWithCode(within(client.connect(server.addr(), 'other/1', { timeoutMs: 10_000 }), 20_000, 'connect'), 'ERR_IROH_CONNECT')
  })

  it('calls on a closed endpoint fail with ERR_IROH_ENDPOINT_CLOSED', async () => {
    const server = await endpoint({ alpns: [ALPN] })
    const ep = await endpoint()
    await ep.close()
    await rejectsWithCode(ep.connect(server.addr(), ALPN), 'ERR_IROH_ENDPOINT_CLOSED')
    await rejectsWithCode(ep.online(), 'ERR_IROH_ENDPOINT_CLOSED')
  })

  it('online() without relays says so instead of waiting forever', async () => {
    const ep = await endpoint()
    await rejectsWithCode(ep.online(), 'ERR_IROH_NO_RELAY')
  })

  it('online() with an unreachable relay times out with ERR_IROH_TIMEOUT', async () => {
    const ep = await endpoint({ relayMode: { relays: ['http://127.0.0.1:9'] } })
    await rejectsWithCode(within(ep.online({ timeoutMs: 200 }), 20_000, 'online'), 'ERR_IROH_TIMEOUT')
  })

  it('an AbortSignal cancels pending calls without losing what comes later', async () => {
    const server = await endpoint({ alpns: [ALPN] })
    const controller = new AbortController()
    const pendingAccept = server.accept({ signal: controller.signal })
    controller.abort()
    await rejectsWithCode(pendingAccept, 'ERR_IROH_ABORTED')
    await rejectsWithCode(server.accept({ signal: AbortSignal.abort() }), 'ERR_IROH_ABORTED')
    // The aborted accept took nothing: the next accept gets the next connection.
    const client = await endpoint()
    const next = server.accept()
    await client.connect(server.addr(), ALPN, { timeoutMs: 10_000 })
    expect((await within(next, 10_000, 'accept')).remoteNodeId()).toBe(client.nodeId())

    const { clientConn, serverConn } = await pair()
    const readAbort = new AbortController()
    const { send } = await clientConn.openBi()
    await within(send.write(Buffer.from('x')), 10_000, 'write')
    const { recv } = await within(serverConn.acceptBi(), 10_000, 'acceptBi()')
    expect((await within(recv.read(10), 10_000, 'read of the first byte')).toString()).toBe('x')
    const pendingRead = recv.read(10, { signal: readAbort.signal })
    readAbort.abort()
    await rejectsWithCode(within(pendingRead, 10_000, 'the aborted read'), 'ERR_IROH_ABORTED')
    await within(send.writeAll(Buffer.from('after')), 10_000, 'writeAll')
    await within(send.finish(), 10_000, 'finish()')
    expect((await within(recv.readToEnd(100), 10_000, 'readToEnd after the abort')).toString()).toBe('after')
    await rejectsWithCode(server.accept({ signal: 'nope' }), 'ERR_IROH_INVALID_ARGUMENT')
  })

  it('stream errors are coded', async () => {
    const { clientConn, serverConn } = await pair()
    const { send } = await clientConn.openBi()
    await within(send.writeAll(Buffer.from('abc')), 10_000, 'writeAll')
    await within(send.finish(), 10_000, 'finish()')
    const { recv } = await within(serverConn.acceptBi(), 10_000, 'acceptBi()')
    await rejectsWithCode(within(recv.readExact(10), 10_000, 'readExact past the end'), 'ERR_IROH_UNEXPECTED_END')

    const two = await clientConn.openBi()
    await within(two.send.writeAll(Buffer.alloc(100)), 10_000, 'writeAll')
    await within(two.send.finish(), 10_000, 'finish()')
    const twoIn = await within(serverConn.acceptBi(), 10_000, 'acceptBi()')
    await rejectsWithCode(within(twoIn.recv.readToEnd(10), 10_000, 'readToEnd over its limit'), 'ERR_IROH_TOO_LARGE')

    const three = await clientConn.openBi()
    await within(three.send.write(Buffer.from('x')), 10_000, 'write')
    const threeIn = await within(serverConn.acceptBi(), 10_000, 'acceptBi()')
    expect((await within(threeIn.recv.read(1), 10_000, 'read of the first byte')).toString()).toBe('x')
    await within(three.send.reset(9), 10_000, 'reset(9)')
    const err = await rejectsWithCode(within(threeIn.recv.read(10), 10_000, 'read of a reset stream'), 'ERR_IROH_STREAM_RESET')
    expect(err.message).toMatch(/9/)
    await rejectsWithCode(within(three.send.write(Buffer.from('y')), 10_000, 'write after reset'), 'ERR_IROH_STREAM_CLOSED')
    await rejectsWithCode(three.send.write('not bytes'), 'ERR_IROH_INVALID_ARGUMENT')
  })

  it('setLogLevel may be called repeatedly and rejects nonsense', () => {
    setLogLevel('warn')
    setLogLevel('error')
    initLogging('off')
    setLogLevel('iroh=warn,off')
    expect(() => setLogLevel('')).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_ARGUMENT' }))
    expect(() => setLogLevel('iroh=shouty')).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_ARGUMENT' }))
    setLogLevel('off')
  })
})

describe('a native failure without an ERR_IROH_* code (a Rust panic) is recoded', () => {
  // napi reports a panic caught by catch_unwind as `GenericFailure`; every call the
  // package makes into the addon must turn that into ERR_IROH_INTERNAL.
  const panicked = () => Object.assign(new Error('panicked at src/example.rs'), { code: 'GenericFailure' })
  // A native handle whose every method panics, or whose every property read does.
  const panickingMethods = (proto = Object.prototype) =>
    new Proxy(Object.create(proto), {
      get: (_, prop) => (prop === 'then' ? undefined : () => { throw panicked() }),
    })
  const panickingProperties = () => new Proxy({}, { get: () => { throw panicked() } })

  async function codeOf(call) {
    try {
      await call()
    } catch (err) {
      return err.code
    }
    return 'no error'
  }

  async function expectEveryMethodRecoded(instance, args = {}) {
    // ref() and unref() only touch a JS timer.
    const jsOnly = new Set(['constructor', 'ref', 'unref'])
    const names = Object.getOwnPropertyNames(Object.getPrototypeOf(instance)).filter((n) => !jsOnly.has(n))
    expect(names.length).toBeGreaterThan(0)
    for (const name of names) {
      const code = await codeOf(() => instance[name](...(args[name] ?? [])))
      expect({ name, code }).toEqual({ name, code: 'ERR_IROH_INTERNAL' })
    }
  }

  it('on every method of Connection, its streams and Endpoint', async () => {
    await expectEveryMethodRecoded(new Connection(panickingMethods()), {
      sendDatagram: [Buffer.from('x')],
      watchPaths: [() => {}],
      onClose: [() => {}],
    })
    await expectEveryMethodRecoded(new SendStream(panickingMethods()), { write: [Buffer.from('x')], writeAll: [Buffer.from('x')] })
    await expectEveryMethodRecoded(new RecvStream(panickingMethods()), { readExact: [1], readToEnd: [1] })
    const binding = createRequire(import.meta.url)('../lib/native.js')
    await expectEveryMethodRecoded(new Endpoint(panickingMethods(binding.Endpoint.prototype)), {
      connect: [someNodeId(), ALPN],
      watchRelays: [() => {}],
    })
  })

  it('on the properties of RelayServer and its close', async () => {
    const server = new RelayServer(panickingProperties())
    for (const name of ['url', 'quicPort', 'relay', 'caCertificatePem']) {
      expect({ name, code: await codeOf(() => server[name]) }).toEqual({ name, code: 'ERR_IROH_INTERNAL' })
    }
    expect(await codeOf(() => server.close())).toBe('ERR_IROH_INTERNAL')
  })
})

describe('the list of error codes', () => {
  // crates/core/src/error.rs is the one list; the types and the README must say the same, and no
  // code may be raised that is not on it.
  const read = (file) => readFileSync(fileURLToPath(new URL(`../${file}`, import.meta.url)), 'utf8')
  const codesIn = (text) => new Set(text.match(/ERR_IROH_[A-Z_]*[A-Z]/g))

  it('is the same in crates/core/src/error.rs, index.d.ts and the README, and covers every code raised', () => {
    const rust = read('crates/core/src/error.rs')
    const listed = new Set([...rust.matchAll(/=> "(ERR_IROH_[A-Z_]+)"/g)].map((m) => m[1]))
    expect(listed.size).toBeGreaterThan(25)
    const types = read('index.d.ts')
    const union = types.slice(types.indexOf('export type IrohErrorCode'), types.indexOf('\n\n', types.indexOf('export type IrohErrorCode')))
    expect([...codesIn(union)].sort()).toEqual([...listed].sort())
    const readme = read('README.md')
    const section = readme.slice(readme.indexOf('### Error codes'), readme.indexOf('\n## ', readme.indexOf('### Error codes')))
    expect([...codesIn(section)].sort()).toEqual([...listed].sort())
    const sources = readdirSync(fileURLToPath(new URL('../lib/', import.meta.url)), { recursive: true })
      .filter((f) => f.endsWith('.js'))
      .map((f) => read(`lib/${f}`))
    for (const code of codesIn(sources.join('\n') + types + readme)) expect(listed, code).toContain(code)
  })
})
