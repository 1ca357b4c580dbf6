import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, statSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateSecretKey, nodeIdFromSecretKey } from '../lib/index.mjs'
import { ALPN, closeAll, endpoint, pair, within } from './helpers.mjs'

afterEach(closeAll)

describe('Endpoint', () => {
  it('has a stable, non-empty node id matching its address and ticket', async () => {
    const key = generateSecretKey()
    const ep = await endpoint({ secretKey: key })
    expect(ep.nodeId()).toMatch(/^[0-9a-f]{64}$/)
    expect(ep.nodeId()).toBe(nodeIdFromSecretKey(key))
    const addr = ep.addr()
    expect(addr.nodeId).toBe(ep.nodeId())
    expect(addr.relayUrl).toBeUndefined()
    expect(addr.directAddresses.length).toBeGreaterThan(0)
    for (const a of addr.directAddresses) expect(a).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(ep.ticket()).toMatch(/^endpoint[a-z0-9]+$/)
    expect(ep.isClosed()).toBe(false)
    await ep.close()
    expect(ep.isClosed()).toBe(true)
  })

  it('accepts an upper-case hex secret key as the same key', async () => {
    const key = generateSecretKey()
    const ep = await endpoint({ secretKey: key.toUpperCase() })
    expect(ep.nodeId()).toBe(nodeIdFromSecretKey(key))
  })

  it('connects by address object and exchanges data on a bi stream', async () => {
    const { client, server, clientConn, serverConn } = await pair()
    expect(clientConn.remoteNodeId()).toBe(server.nodeId())
    expect(serverConn.remoteNodeId()).toBe(client.nodeId())
    expect(clientConn.alpn()).toBe(ALPN)
    expect(serverConn.alpn()).toBe(ALPN)

    // Echo server: read everything, write it back reversed.
    const echo = (async () => {
      const { send, recv } = await serverConn.acceptBi()
      const data = await recv.readToEnd(1 << 20)
      await send.writeAll(Buffer.from(data).reverse())
      await send.finish()
    })()
    const { send, recv } = await clientConn.openBi()
    const payload = Buffer.alloc(200_000, 0)
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251
    await within(send.writeAll(payload), 10_000, 'writeAll of 200 kB')
    await send.finish()
    const back = await within(recv.readToEnd(1 << 20), 10_000, 'echo')
    expect(Buffer.isBuffer(back)).toBe(true)
    expect(Buffer.compare(back, Buffer.from(payload).reverse())).toBe(0)
    await within(echo, 10_000, 'the echo side')
  })

  it('connects by ticket and by node id string plus known address', async () => {
    const server = await endpoint({ alpns: [ALPN] })
    const client = await endpoint()
    const accepted = server.accept()
    const conn = await client.connect(server.ticket(), ALPN, { timeoutMs: 10_000 })
    expect(conn.remoteNodeId()).toBe(server.nodeId())
    const incoming = await within(accepted, 10_000, 'accept() of a ticket dial')
    expect(incoming.remoteNodeId()).toBe(client.nodeId())
  })

  it('reads with read() in pieces, readExact, and sees null at the end', async () => {
    const { clientConn, serverConn } = await pair()
    const { send } = await clientConn.openBi()
    await send.writeAll(Buffer.from('0123456789'))
    await send.finish()
    const { recv } = await within(serverConn.acceptBi(), 10_000, 'acceptBi()')
    const head = await within(recv.readExact(4), 10_000, 'readExact(4)')
    expect(head.toString()).toBe('0123')
    let rest = ''
    for (;;) {
      const chunk = await within(recv.read(3), 10_000, 'read(3)')
      if (chunk === null) break
      expect(chunk.length).toBeLessThanOrEqual(3)
      rest += chunk.toString()
    }
    expect(rest).toBe('456789')
  })

  it('carries uni streams', async () => {
    const { clientConn, serverConn } = await pair()
    const send = await clientConn.openUni()
    await send.writeAll(Buffer.from('one way'))
    await send.finish()
    const recv = await within(serverConn.acceptUni(), 10_000, 'acceptUni()')
    expect((await within(recv.readToEnd(100), 10_000, 'readToEnd of the uni stream')).toString()).toBe('one way')
  })

  it('carries datagrams', async () => {
    const { clientConn, serverConn } = await pair()
    const max = clientConn.maxDatagramSize()
    expect(max).toBeGreaterThan(1000)
    const got = serverConn.readDatagram()
    // Datagrams are unreliable: resend until one arrives (on loopback the first does).
    const timer = setInterval(() => clientConn.sendDatagram(Buffer.from('ping')), 50)
    clientConn.sendDatagram(Buffer.from('ping'))
    try {
      expect((await within(got, 10_000, 'datagram')).toString()).toBe('ping')
    } finally {
      clearInterval(timer)
    }
    expect(() => clientConn.sendDatagram(Buffer.alloc(100_000))).toThrow(expect.objectContaining({ code: 'ERR_IROH_DATAGRAM' }))
  })

  it('delivers the close code and reason to the peer', async () => {
    const { clientConn, serverConn } = await pair()
    expect(clientConn.closeReason()).toBeNull()
    const remoteSide = serverConn.closed()
    clientConn.close(42, 'going away')
    expect(await within(remoteSide, 10_000, 'closed()')).toEqual({ code: 42, reason: 'going away', kind: 'remote' })
    expect(await within(clientConn.closed(), 10_000, 'closed() of the closing side')).toEqual({ code: 42, reason: 'going away', kind: 'local' })
    expect(clientConn.closeReason()).toEqual({ code: 42, reason: 'going away', kind: 'local' })
    // A stream call on the closed connection fails with its code.
    await expect(clientConn.openBi()).rejects.toMatchObject({ code: 'ERR_IROH_CONNECTION_CLOSED' })
    await expect(serverConn.acceptBi()).rejects.toMatchObject({ code: 'ERR_IROH_CONNECTION_CLOSED' })
  })

  it('reports rtt and stats after traffic', async () => {
    const { clientConn, serverConn } = await pair()
    const { send } = await clientConn.openBi()
    await send.writeAll(Buffer.alloc(10_000, 1))
    await send.finish()
    const { recv } = await within(serverConn.acceptBi(), 10_000, 'acceptBi()')
    await within(recv.readToEnd(20_000), 10_000, 'readToEnd of 10 kB')
    const stats = clientConn.stats()
    expect(stats.udpTx.bytes).toBeGreaterThan(10_000)
    expect(stats.udpRx.datagrams).toBeGreaterThan(0)
    expect(stats.sentPackets).toBeGreaterThan(0)
    // Measured from the traffic: a positive, finite round trip.
    expect(Number.isFinite(clientConn.rtt())).toBe(true)
    expect(clientConn.rtt()).toBeGreaterThan(0)
  })

  it('keeps the node id across restarts from the same key file, which has mode 0600', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alkdev-iroh-'))
    try {
      const path = join(dir, 'keys', 'node.key')
      const first = await endpoint({ secretKeyPath: path })
      const id = first.nodeId()
      await first.close()
      if (process.platform !== 'win32') expect(statSync(path).mode & 0o777).toBe(0o600)
      expect(nodeIdFromSecretKey(readFileSync(path, 'utf8'))).toBe(id)
      const second = await endpoint({ secretKeyPath: path })
      expect(second.nodeId()).toBe(id)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('accept() resolves null once the endpoint is closed', async () => {
    const ep = await endpoint({ alpns: [ALPN] })
    const pendingAccept = ep.accept()
    await ep.close()
    expect(await within(pendingAccept, 10_000, 'accept after close')).toBeNull()
    expect(await ep.accept()).toBeNull()
  })
})
