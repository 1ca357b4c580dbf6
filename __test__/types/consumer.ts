// A TypeScript consumer of the published types (checked by types.test.mjs with
// tsc --strict). The @ts-expect-error lines prove the types are precise: were a type
// `any`, the expected error would not happen and tsc would fail on the unused directive.
import { createPubSub } from '@graphql-yoga/subscription'
import {
  Endpoint,
  HubCloseCode,
  connectSpoke,
  createHub,
  createHubIrohEventTarget,
  createMessageChannel,
  createSpokeIrohEventTarget,
  joinTopic,
  startRelayServer,
  type TopicEvent,
  type TopicGap,
  type CloseInfo,
  type Connection,
  type ConnectionStats,
  type EndpointAddr,
  type EndpointOptions,
  type IrohError,
  type RelayStatus,
  type IrohEventTarget,
  type PathInfo,
  type PathState,
  type PathType,
  type RelayInfo,
  type RelayServerOptions,
  type HubStats,
  type SpokeStats,
  type StatusServer,
} from '@alkdev/iroh'

type Events = {
  'call.requested': [{ id: string; op: string }]
  'call.responded': [{ id: string; result: number }]
}

export async function spoke(ticket: string): Promise<void> {
  const endpoint = await Endpoint.create({ secretKeyPath: './spoke.key', relayMode: 'disabled', addressLookup: 'none' })
  const conn = await endpoint.connect(ticket, 'alkhub/1', { timeoutMs: 5_000 })
  const target = await createSpokeIrohEventTarget(conn)
  const pubsub = createPubSub<Events>({ eventTarget: target })
  for await (const call of pubsub.subscribe('call.requested')) {
    const id: string = call.id
    pubsub.publish('call.responded', { id, result: 42 })
  }
  // @ts-expect-error: the payload must match the event map
  pubsub.publish('call.responded', { id: 1 })
  const path: PathType = target.pathType()
  target.lifecycle.addEventListener('pathchange', (e) => {
    const state = (e as CustomEvent<PathState>).detail
    console.log(path, state.paths.map((p) => `${p.kind} ${p.remoteAddr} ${p.rttMs}`))
  })
  // @ts-expect-error: there is no such path type
  const wrong: PathType = 'wifi'
  console.log(wrong)
  await target.close(0, 'bye')
  await endpoint.close()
}

export async function hub(): Promise<void> {
  const relay = await startRelayServer({ bindAddr: '127.0.0.1:0' })
  const endpoint = await Endpoint.create({
    alpns: ['alkhub/1'],
    relayMode: { relays: [relay.relay, relay.url] },
    relayCaCertificates: relay.caCertificatePem === null ? [] : [relay.caCertificatePem],
    addressLookup: 'none',
  })
  const hub = createHub(endpoint, { alpn: 'alkhub/1', allow: new Set<string>(), acks: true, maxPendingBytes: 1 << 20 })
  hub.addEventListener('refused', (e) => console.log((e as CustomEvent<{ nodeId: string }>).detail.nodeId))
  for await (const { nodeId, target } of hub) {
    const t: IrohEventTarget = target
    t.addEventListener('call.responded', (e) => console.log(nodeId, e.detail))
    hub.broadcast('config.changed', { version: 7 })
  }
  const conn = await endpoint.accept()
  if (conn !== null) {
    const target = await createHubIrohEventTarget(conn, { maxFrameBytes: 1 << 20 })
    conn.close(HubCloseCode.REFUSED, 'unknown spoke')
    const info = await target.closed
    const code: number = info.code
    console.log(code, info.kind, info.error?.code)
  }
  try {
    await endpoint.online({ timeoutMs: 100 })
  } catch (err) {
    const code: IrohError['code'] = (err as IrohError).code
    console.log(code === 'ERR_IROH_TIMEOUT' || code === 'ERR_IROH_RELAY_UNTRUSTED')
  }
  const relays: RelayStatus[] = endpoint.relayStatus()
  const stopRelays = endpoint.watchRelays((list) => {
    for (const r of list) {
      const problem: 'ERR_IROH_RELAY_REFUSED' | string | undefined = r.error?.code
      console.log(r.url, r.connected, problem, r.error?.message)
    }
  })
  stopRelays()
  // @ts-expect-error: error is null when there is none, never undefined
  const noError: undefined = relays[0].error
  console.log(noError)
  // @ts-expect-error: relayOnly is a boolean
  await Endpoint.create({ relayOnly: 'yes' })
  const spoke = connectSpoke(endpoint, endpoint.nodeId(), {
    alpn: 'alkhub/1',
    onConnect: (s) => {
      s.dispatchEvent(new CustomEvent('hub.register', { detail: { ops: ['echo'] } }))
    },
  })
  await spoke.flush({ acked: true })
  const unrefed: typeof spoke = spoke.unref().ref()
  const stillOpen: boolean = !endpoint.unref().ref().isClosed()
  console.log(unrefed.state, stillOpen, hub.unref() === hub)
  // @ts-expect-error onConnect takes a function
  connectSpoke(endpoint, endpoint.nodeId(), { alpn: 'alkhub/1', onConnect: 'register' })
  // A spoke the hub may dial too; the hub says who dialed each connection.
  const both = connectSpoke(endpoint, endpoint.ticket(), { alpn: 'alkhub/1', listen: true })
  // @ts-expect-error: listen is a boolean
  connectSpoke(endpoint, endpoint.ticket(), { alpn: 'alkhub/1', listen: 'yes' })
  for await (const { target, dialed } of hub) {
    const byHub: boolean = dialed
    console.log(byHub, target.isClosed, both.state, HubCloseCode.BOTH_DIALED === 4105)
    break
  }
  spoke.lifecycle.addEventListener('statechange', () => console.log(spoke.state, spoke.pathType()))
  // Figures per spoke on the hub, and the spoke's own.
  const hubStats: HubStats = hub.stats()
  for (const [id, s] of Object.entries(hubStats.spokes)) console.log(id, s.state, s.pathType, s.rttMs?.toFixed(1), s.eventsIn, s.unackedBytes, s.dialed)
  const mine: SpokeStats = spoke.stats()
  const status: StatusServer = await hub.serveStatus({ port: 9464 })
  console.log(status.url, status.port.toFixed(0), hub.metrics().length)
  await status.close()
  // @ts-expect-error: the port is a number
  await hub.serveStatus({ port: '9464' })
  const seen: number | null = mine.lastSeen
  console.log(mine.hubNodeId, mine.state === 'connected', mine.eventsOutPerSecond, seen)
  // @ts-expect-error: a hub's spoke has no spoke state
  console.log(((s: 'connected') => s)(hubStats.spokes.x.state))
  // Listeners typed by the event's type, on the redialing spoke as on a target.
  type Config = CustomEvent<{ version: number }> & { type: 'config.changed' }
  const typed = connectSpoke<Config>(endpoint, endpoint.nodeId(), { alpn: 'alkhub/1' })
  const onConfig = (e: Config) => console.log(e.detail.version.toFixed(0))
  typed.addEventListener('config.changed', onConfig, { once: true })
  typed.removeEventListener('config.changed', onConfig)
  // @ts-expect-error: not an event type this spoke carries
  typed.addEventListener('config.removed', onConfig)
  await hub.close()
  await relay.close()
}

export async function channel(ticket: string): Promise<number> {
  const endpoint = await Endpoint.create({ relayMode: 'disabled', addressLookup: 'none' })
  const conn = await endpoint.connect(ticket, 'sync/1')
  const stop: () => void = conn.onClose((info) => console.log(info.code, info.reason, info.kind))
  const messages = createMessageChannel(conn, { role: 'open', maxBufferedBytes: 1 << 20 })
  messages.send(new Uint8Array([1, 2, 3]))
  // @ts-expect-error: a channel carries bytes, not strings
  messages.send('text')
  // @ts-expect-error: the role is 'open' or 'accept'
  createMessageChannel(conn, { role: 'dial' })
  const first: Buffer | null = await messages.receive()
  let total = first?.length ?? 0
  for await (const message of messages) total += message.length
  const info = await messages.closed
  stop()
  return total + info.code + (messages.isClosed ? 1 : 0)
}

// The data types index.d.ts re-exports from the generated binding.d.ts: still there under
// their names, and still precise.
export function data(conn: Connection, addr: EndpointAddr): number {
  const stats: ConnectionStats = conn.stats()
  const closed: CloseInfo | null = conn.closeReason()
  const direct: PathInfo[] = conn.paths().filter((p) => p.kind === 'direct' && p.selected)
  const relays: RelayInfo[] = [{ url: 'https://relay.example/', quicPort: 7842 }]
  const options: EndpointOptions = { relayMode: { relays }, addressLookup: 'none', idleTimeoutMs: 5_000 }
  const relay: RelayServerOptions = { bindAddr: '127.0.0.1:0', quicPort: 0 }
  // @ts-expect-error: not a kind of close
  const kind: CloseInfo['kind'] = 'crashed'
  // @ts-expect-error: addressLookup is 'n0' or 'none'
  const lookup: EndpointOptions = { addressLookup: 'dht' }
  // @ts-expect-error: a relay needs its QUIC port
  const partial: RelayInfo = { url: 'https://relay.example/' }
  console.log(closed?.kind, options, relay, kind, lookup, partial, addr.directAddresses.join(','))
  return stats.udpTx.bytes + stats.rttMs + direct.length
}

// A topic member: createPubSub over it, and the author of each event.
export async function member(bootstrap: string): Promise<void> {
  const endpoint = await Endpoint.create({ relayMode: 'disabled', addressLookup: 'none' })
  const topic = await joinTopic(endpoint, 'jobs', { bootstrap: [bootstrap], allow: new Set([bootstrap]) })
  const pubsub = createPubSub<Events>({ eventTarget: topic })
  pubsub.publish('call.requested', { id: 'a', op: 'sum' })
  topic.addEventListener('call.responded', (e: TopicEvent) => console.log(e.author.length, e.detail))
  // @ts-expect-error: a plain CustomEvent names no author
  topic.addEventListener('call.responded', (e) => console.log(e.author))
  topic.lifecycle.addEventListener('gap', (e) => {
    const gap = (e as CustomEvent<TopicGap>).detail
    console.log(gap.author, gap.to - gap.from)
  })
  // @ts-expect-error: retention takes bytes and an age, nothing else
  await joinTopic(endpoint, 'other', { retention: { forever: true } })
  await topic.close()
}
