// One open state per class, read the same way on every one: `state` (open, closing,
// closed) and `isClosed`, a getter everywhere except on Endpoint and Connection, which keep
// the community binding's `isClosed()` method.
import { afterEach, describe, expect, it } from 'vitest'
import { connectSpoke, createHub, createHubIrohEventTarget, createMessageChannel, createSpokeIrohEventTarget, startRelayServer } from '../lib/index.mjs'
import { ALPN, closeAll, endpoint, pair, stateIs, within } from './helpers.mjs'

afterEach(closeAll)

describe('state', () => {
  it('endpoint and connection: open, then closed', async () => {
    const { server, client, clientConn, serverConn } = await pair()
    expect([server.state, clientConn.state, serverConn.state]).toEqual(['open', 'open', 'open'])
    clientConn.close(0, 'done')
    expect([clientConn.state, clientConn.isClosed()]).toEqual(['closed', true])
    await within(serverConn.closed(), 10_000, 'remote close')
    expect(serverConn.state).toBe('closed')
    await client.close()
    expect([client.state, client.isClosed()]).toEqual(['closed', true])
  })

  it('event target and message channel: open, closing, closed', async () => {
    const { clientConn, serverConn } = await pair()
    const spoke = await createSpokeIrohEventTarget(clientConn)
    const hub = await createHubIrohEventTarget(serverConn)
    expect([spoke.state, spoke.isClosed]).toEqual(['open', false])
    const closing = spoke.close()
    expect(spoke.state).toBe('closing')
    expect(() => spoke.dispatchEvent(new CustomEvent('late'))).toThrow(expect.objectContaining({ code: 'ERR_IROH_CONNECTION_CLOSED' }))
    await within(closing, 10_000, 'close')
    expect([spoke.state, spoke.isClosed]).toEqual(['closed', true])
    await within(hub.closed, 10_000, 'remote close')
    expect(hub.state).toBe('closed')

    const second = await pair()
    const channel = createMessageChannel(second.clientConn, { role: 'open' })
    expect(channel.state).toBe('open')
    const channelClosing = channel.close()
    expect(channel.state).toBe('closing')
    await within(channelClosing, 10_000, 'close')
    expect([channel.state, channel.isClosed]).toEqual(['closed', true])
  })

  it('hub, reconnecting spoke and relay server', async () => {
    const hubEp = await endpoint({ alpns: [ALPN] })
    const hub = createHub(hubEp, { alpn: ALPN })
    const spoke = connectSpoke(await endpoint(), hubEp.addr(), { alpn: ALPN })
    await within(stateIs(spoke, 'connected'), 10_000, 'connected')
    expect([hub.state, hub.isClosed, spoke.isClosed]).toEqual(['open', false, false])
    await spoke.close()
    expect([spoke.state, spoke.isClosed]).toEqual(['closed', true])
    const closing = hub.close()
    expect([hub.state, hub.isClosed]).toEqual(['closing', false])
    await closing
    expect([hub.state, hub.isClosed]).toEqual(['closed', true])

    const relay = await startRelayServer({ bindAddr: '127.0.0.1:0' })
    expect([relay.state, relay.isClosed]).toEqual(['open', false])
    const relayClosing = relay.close()
    expect(relay.state).toBe('closing')
    await relayClosing
    expect([relay.state, relay.isClosed]).toEqual(['closed', true])
  })
})
