// Types of @alkdev/iroh. Hand-written over the napi-generated binding, documenting what
// users call; `binding.d.ts` (generated) describes the raw native layer underneath. The
// plain data types it generates from the Rust doc comments are re-exported from it as they
// are, not restated here.

/// <reference types="node" />

import type {
  CloseInfo,
  ConnectionStats,
  EndpointAddrInfo,
  EndpointOptions,
  PathInfo,
  PathState,
  RelayInfo,
  RelayProblem,
  RelayServerOptions,
  RelayStatus as NativeRelayStatus,
  UdpCounters,
} from './binding.js'

export type {
  CloseInfo,
  ConnectionStats,
  EndpointOptions,
  PathInfo,
  PathState,
  RelayInfo,
  RelayProblem,
  RelayServerOptions,
  UdpCounters,
}

/** A configured relay as last seen (`endpoint.relayStatus()`): `error` is `null` while it is fine or untried. */
export type RelayStatus = Omit<NativeRelayStatus, 'error'> & { error: RelayProblem | null }

/** Every error thrown or rejected by this package has one of these codes. */
export type IrohErrorCode =
  | 'ERR_IROH_INVALID_NODE_ID'
  | 'ERR_IROH_INVALID_TICKET'
  | 'ERR_IROH_INVALID_SECRET_KEY'
  | 'ERR_IROH_INVALID_ADDR'
  | 'ERR_IROH_INVALID_RELAY_URL'
  | 'ERR_IROH_INVALID_CERTIFICATE'
  | 'ERR_IROH_INVALID_ALPN'
  | 'ERR_IROH_INVALID_ARGUMENT'
  | 'ERR_IROH_KEY_FILE'
  | 'ERR_IROH_BIND'
  | 'ERR_IROH_CONNECT'
  | 'ERR_IROH_CONNECT_TIMEOUT'
  | 'ERR_IROH_TIMEOUT'
  | 'ERR_IROH_ABORTED'
  | 'ERR_IROH_NO_RELAY'
  | 'ERR_IROH_CONNECTION_CLOSED'
  | 'ERR_IROH_ENDPOINT_CLOSED'
  | 'ERR_IROH_STREAM_CLOSED'
  | 'ERR_IROH_STREAM_RESET'
  | 'ERR_IROH_STREAM_STOPPED'
  | 'ERR_IROH_UNEXPECTED_END'
  | 'ERR_IROH_TOO_LARGE'
  | 'ERR_IROH_DATAGRAM'
  | 'ERR_IROH_FRAME_TOO_LARGE'
  | 'ERR_IROH_PROTOCOL'
  | 'ERR_IROH_BUFFER_FULL'
  | 'ERR_IROH_RELAY_UNTRUSTED'
  | 'ERR_IROH_RELAY_REFUSED'
  | 'ERR_IROH_RELAY_UNRESOLVED'
  | 'ERR_IROH_NOT_A_RELAY'
  | 'ERR_IROH_RELAY_DENIED'
  | 'ERR_IROH_RELAY_UNREACHABLE'
  | 'ERR_IROH_REFUSED'
  | 'ERR_IROH_NATIVE_BINDING'
  | 'ERR_IROH_UNSUPPORTED'
  | 'ERR_IROH_INTERNAL'

/** The shape of every error from this package. */
export interface IrohError extends Error {
  code: IrohErrorCode
}

/** A node id: the 64-character lowercase hex form of an endpoint's public key. */
export type NodeId = string

/** Where a peer can be reached, as returned by `Endpoint.addr()`: `directAddresses` are `ip:port`. */
export type EndpointAddr = EndpointAddrInfo

/**
 * Where an object of this package is in its life, the one member every class has (as ws's
 * `readyState`). `closing`: `close()` was called and has not finished.
 */
export type OpenState = 'open' | 'closing' | 'closed'

/** Options of every call that can wait. */
export interface PendingOptions {
  /** Aborting rejects the call with `ERR_IROH_ABORTED` and takes nothing from the stream or queue. */
  signal?: AbortSignal
}

export interface ConnectOptions extends PendingOptions {
  /** Reject with `ERR_IROH_CONNECT_TIMEOUT` if the handshake takes longer (ms). */
  timeoutMs?: number
}

export interface OnlineOptions extends PendingOptions {
  /** Reject with `ERR_IROH_TIMEOUT` if no relay is connected within this many ms. Default 15,000. */
  timeoutMs?: number
}

/** Where a connection's data goes: over a `direct` path, a `relay`, `mixed` (a relay while a direct path is open too), or `none` once closed. */
export type PathType = PathState['pathType']

export interface WatchPathsOptions {
  /** Aborting stops the watch. */
  signal?: AbortSignal
}

/**
 * A QUIC endpoint identified by its node id. Like a listening `net.Server`, an endpoint
 * with `alpns` keeps the process alive until `close()` (or `unref()`); a dial-only one does
 * not, its connections and dials in progress do.
 */
export declare class Endpoint {
  private constructor()
  /** Binds a new endpoint. */
  static create(options?: EndpointOptions): Promise<Endpoint>
  /** Same as `create`; the name used by the older community binding. */
  static createWithOptions(options: EndpointOptions): Promise<Endpoint>
  /** This endpoint's node id. Never empty. */
  nodeId(): NodeId
  /** The addresses peers can dial right now. */
  addr(): EndpointAddr
  /** An iroh endpoint ticket (`endpoint…`) with the node id and current addresses. */
  ticket(): string
  /**
   * Resolves once a home relay is connected. Rejects as soon as every relay has failed in a
   * way that waiting will not mend, with the first relay's code and every relay's reason:
   * `ERR_IROH_RELAY_UNTRUSTED` (its certificate's CA belongs in `relayCaCertificates`),
   * `ERR_IROH_RELAY_REFUSED`, `ERR_IROH_RELAY_UNRESOLVED`, `ERR_IROH_NOT_A_RELAY`,
   * `ERR_IROH_RELAY_DENIED`. Rejects with `ERR_IROH_TIMEOUT` when no relay answers within
   * `timeoutMs` (default 15 s), `ERR_IROH_NO_RELAY` when relays are disabled,
   * `ERR_IROH_ENDPOINT_CLOSED` on close.
   */
  online(options?: OnlineOptions): Promise<void>
  /** Each configured relay as last seen, in the order configured; empty when relays are disabled or once closed. */
  relayStatus(): RelayStatus[]
  /**
   * Calls `listener` with `relayStatus()` now and whenever a relay connects, drops or fails
   * anew, until the endpoint closes, `signal` aborts or the returned function is called. It
   * does not keep the process alive.
   */
  watchRelays(listener: (relays: RelayStatus[]) => void, options?: WatchPathsOptions): () => void
  /** Dials a peer by node id, ticket or address, speaking `alpn`. */
  connect(target: NodeId | string | EndpointAddr, alpn: string, options?: ConnectOptions): Promise<Connection>
  /** The next incoming connection; `null` once the endpoint is closed. */
  accept(options?: PendingOptions): Promise<Connection | null>
  /** Closes all connections and the socket; every pending call settles. */
  close(): Promise<void>
  /** Whether the endpoint has closed (a method, as in the community binding). */
  isClosed(): boolean
  readonly state: 'open' | 'closed'
  /** Lets the process exit while this endpoint accepts. */
  unref(): this
  /** Undoes `unref()`. */
  ref(): this
}

/** Both halves of a bidirectional stream. */
// Not binding.d.ts's BiStream: that one holds the native stream classes, this one the JS ones users get.
export interface BiStream {
  send: SendStream
  recv: RecvStream
}

/**
 * A QUIC connection to one peer. Like a `net.Socket`, it keeps the process alive while it
 * is open (until either side closes it, or the idle timeout); `unref()` opts out.
 */
export declare class Connection {
  private constructor()
  /** Whether the connection has closed, whoever closed it (a method, as in the community binding). */
  isClosed(): boolean
  readonly state: 'open' | 'closed'
  /** Lets the process exit while this connection is open. */
  unref(): this
  /** Undoes `unref()`. */
  ref(): this
  /** The peer's node id (verified by the TLS handshake). */
  remoteNodeId(): NodeId
  /** The ALPN this connection speaks. */
  alpn(): string
  /** Opens a bidirectional stream. The peer sees it once the first byte is written. */
  openBi(): Promise<BiStream>
  /** Waits for the peer to open a bidirectional stream. */
  acceptBi(options?: PendingOptions): Promise<BiStream>
  /** Opens a send-only stream. */
  openUni(): Promise<SendStream>
  /** Waits for the peer to open a send-only stream. */
  acceptUni(options?: PendingOptions): Promise<RecvStream>
  /** Sends an unreliable datagram of at most `maxDatagramSize()` bytes. */
  sendDatagram(data: Uint8Array): void
  /** The next datagram from the peer. */
  readDatagram(options?: PendingOptions): Promise<Buffer>
  /** The largest datagram that fits now; `null` if the peer takes no datagrams. */
  maxDatagramSize(): number | null
  /** Round trip time of the selected path, in milliseconds. */
  rtt(): number
  stats(): ConnectionStats
  /** The open network paths. */
  paths(): PathInfo[]
  /** Where application data goes now. */
  pathType(): PathType
  /**
   * Calls `listener` with the current paths, then each time a path opens or closes or the
   * selected path changes (for example relay -> direct after hole punching), until the
   * connection closes, `signal` aborts or the returned function is called. It does not keep
   * the process alive.
   */
  watchPaths(listener: (state: PathState) => void, options?: WatchPathsOptions): () => void
  /**
   * Calls `listener` once when the connection closes, whoever closes it (soon after, if it
   * has closed already). Nothing waits on it, so unlike `closed()` it never keeps the
   * process alive. Returns a function that cancels the call. A listener that throws is
   * reported as an uncaught exception, as from any other callback.
   */
  onClose(listener: (info: CloseInfo) => void): () => void
  /** Closes the connection; the peer's `closed()` reports `code` and `reason`. */
  close(code?: number, reason?: string): void
  /** Resolves when the connection closes, for any reason. */
  closed(): Promise<CloseInfo>
  /** Why the connection closed, or `null` while it is open. */
  closeReason(): CloseInfo | null
}

/** The sending half of a stream. */
export declare class SendStream {
  private constructor()
  /**
   * The QUIC stream id, the same on both sides: 0, 4, 8... for bidirectional streams the
   * dialing side opens, 1, 5... for the accepting side's, 2, 6... and 3, 7... for
   * unidirectional ones. Still answers after the stream or connection closed.
   */
  id(): number
  /** Writes some of `data`; resolves with the number of bytes taken. */
  write(data: Uint8Array): Promise<number>
  /** Writes all of `data`, waiting for flow control as needed. */
  writeAll(data: Uint8Array): Promise<void>
  /** Ends the stream after what was written; the peer reads to its end. */
  finish(): Promise<void>
  /** Abandons the stream; the peer's reads fail with `ERR_IROH_STREAM_RESET`. */
  reset(code?: number): Promise<void>
}

/** The receiving half of a stream. */
export declare class RecvStream {
  private constructor()
  /** The QUIC stream id, the same on both sides (see `SendStream.id`). */
  id(): number
  /** Up to `max` bytes (default 64 KiB) as they arrive; `null` at the end of the stream. */
  read(max?: number, options?: PendingOptions): Promise<Buffer | null>
  /** Exactly `n` bytes; `ERR_IROH_UNEXPECTED_END` if the stream ends first. */
  readExact(n: number, options?: PendingOptions): Promise<Buffer>
  /** Everything until the peer finishes; `ERR_IROH_TOO_LARGE` past `max` bytes. */
  readToEnd(max: number, options?: PendingOptions): Promise<Buffer>
  /** Asks the peer to stop sending; its writes fail with `ERR_IROH_STREAM_STOPPED`. */
  stop(code?: number): Promise<void>
}

/** What travels in one frame: `{ type, detail }` as JSON (by default). */
export interface WireEvent {
  type: string
  detail?: unknown
}

/** Options of the event targets. */
export interface IrohEventTargetOptions {
  /** Largest frame accepted or sent, in bytes (default 16 MiB). A bigger one is a protocol error. */
  maxFrameBytes?: number
  /** Bytes `dispatchEvent` may queue before it throws `ERR_IROH_BUFFER_FULL` (default 8 MiB). */
  maxBufferedBytes?: number
  /**
   * How long a frame may stay half-received with no new bytes before the connection is
   * closed with code 4003 and `ERR_IROH_PROTOCOL` (default 30,000 ms).
   */
  frameTimeoutMs?: number
  /** Replaces JSON on both ends; `parse` must return an object with a string `type`. */
  serializer?: {
    stringify(event: { type: string; detail: unknown }): string
    parse(text: string): WireEvent
  }
}

/** How an event target closed; `error` is set when a protocol violation or failure closed it. */
export interface EventTargetCloseInfo extends CloseInfo {
  error?: IrohError
}

/** A listener: a function or an object with `handleEvent`, as for any EventTarget. */
export type IrohEventListener<TEvent extends Event> = ((event: TEvent) => void) | { handleEvent(event: TEvent): void }

/** Listeners for the events the peer sends, typed by the event's `type`. */
export interface TypedListeners<TEvent extends Event> {
  addEventListener<TCurrent extends TEvent>(
    type: TCurrent['type'],
    listener: IrohEventListener<TCurrent> | null,
    options?: boolean | AddEventListenerOptions,
  ): void
  removeEventListener<TCurrent extends TEvent>(
    type: TCurrent['type'],
    listener: IrohEventListener<TCurrent> | null,
    options?: boolean | EventListenerOptions,
  ): void
}

// Merged into the classes below (a declared class cannot inherit an interface's members).
export interface IrohEventTarget<TEvent extends Event = CustomEvent> extends TypedListeners<TEvent> {}
export interface ReconnectingSpoke<TEvent extends Event = CustomEvent> extends TypedListeners<TEvent> {}
export interface Topic<TEvent extends Event = CustomEvent> extends TypedListeners<TEvent> {}

/**
 * One end of a connection's framed event stream, in the shape of
 * `@graphql-yoga/typed-event-target`: `dispatchEvent` sends to the peer (it does not deliver
 * locally); frames from the peer arrive as `CustomEvent`s for `addEventListener`.
 */
export declare class IrohEventTarget<TEvent extends Event = CustomEvent> {
  private constructor()
  /**
   * Lifecycle signals, apart from user event types: `close` and `error` (CustomEvents);
   * `drain`: the send buffer is empty again after it passed half of `maxBufferedBytes` or
   * refused an event with `ERR_IROH_BUFFER_FULL`; `pathchange` (detail: `PathState`): the
   * paths when the target was created, then each change.
   */
  readonly lifecycle: EventTarget
  /** The connection this target runs on. */
  readonly connection: Connection
  /** Where this target's data goes now. */
  pathType(): PathType
  /** The connection's open paths. */
  paths(): PathInfo[]
  /** Bytes dispatched and not yet handed to QUIC. */
  readonly bufferedAmount: number
  readonly state: OpenState
  readonly isClosed: boolean
  /** Resolves when the target closes. */
  readonly closed: Promise<EventTargetCloseInfo>
  /** Lets the process exit while this target is open (an open target keeps it alive, as its connection does). */
  unref(): this
  /** Undoes `unref()`. */
  ref(): this
  /**
   * Sends `{ type: event.type, detail: event.detail }` as one frame. Never waits. Throws
   * `ERR_IROH_BUFFER_FULL` past `maxBufferedBytes`, `ERR_IROH_FRAME_TOO_LARGE` past
   * `maxFrameBytes`, `ERR_IROH_CONNECTION_CLOSED` once closed.
   */
  dispatchEvent(event: TEvent): boolean
  /**
   * Resolves once everything dispatched so far has been handed to QUIC; with `{ acked: true }`,
   * once the peer has acknowledged delivering it to its listeners (acknowledged delivery
   * only, as between a hub and a spoke of this package; elsewhere it rejects with
   * `ERR_IROH_PROTOCOL`).
   */
  flush(options?: FlushOptions): Promise<void>
  /**
   * Sends what is queued, waits until the peer has it, then closes the connection. A hub
   * target whose spoke never opened its stream closes at once; what it queued is dropped.
   */
  close(code?: number, reason?: string): Promise<EventTargetCloseInfo>
}

/** The dialing side: opens the connection's one bidirectional stream. */
export declare function createSpokeIrohEventTarget<TEvent extends Event = CustomEvent>(
  connection: Connection,
  options?: IrohEventTargetOptions,
): Promise<IrohEventTarget<TEvent>>

/**
 * The accepting side: takes the stream the spoke opens (the spoke announces it at once, even
 * if it never sends an event). Resolves at once; events dispatched before the stream arrives
 * are queued and sent when it does.
 */
export declare function createHubIrohEventTarget<TEvent extends Event = CustomEvent>(
  connection: Connection,
  options?: IrohEventTargetOptions,
): Promise<IrohEventTarget<TEvent>>

/** Options of `createMessageChannel`. */
export interface MessageChannelOptions {
  /**
   * `'open'` on the side that dialed (it opens the connection's one bidirectional stream
   * and announces it at once), `'accept'` on the side that accepted the connection.
   */
  role: 'open' | 'accept'
  /**
   * Largest message accepted or sent, in bytes (default 16 MiB). `send` throws
   * `ERR_IROH_FRAME_TOO_LARGE` past it; from the peer it closes the connection with code
   * 4001 and the same error.
   */
  maxFrameBytes?: number
  /** Bytes `send` may queue before it throws `ERR_IROH_BUFFER_FULL` (default 8 MiB). */
  maxBufferedBytes?: number
  /**
   * How long a message may stay half-received with no new bytes before the connection is
   * closed with code 4003 and `ERR_IROH_PROTOCOL` (default 30,000 ms).
   */
  frameTimeoutMs?: number
}

/**
 * One end of a connection's stream of binary messages, each framed on the wire as a 4-byte
 * big-endian length and the bytes (the event targets' framing, without the JSON). Messages
 * arrive in order as `Buffer`s through `receive()` or `for await`. Like its connection, an
 * open channel keeps the process alive until it closes.
 */
export declare class MessageChannel implements AsyncIterable<Buffer> {
  private constructor()
  /** `close` and `error` (CustomEvents, as on the event targets) and `drain`. */
  readonly lifecycle: EventTarget
  /** The connection this channel runs on. */
  readonly connection: Connection
  /** Bytes sent and not yet handed to QUIC. */
  readonly bufferedAmount: number
  readonly state: OpenState
  readonly isClosed: boolean
  /** Resolves when the channel (its connection) closes. */
  readonly closed: Promise<EventTargetCloseInfo>
  /** Lets the process exit while the channel is open (unrefs its connection). */
  unref(): this
  /** Undoes `unref()`. */
  ref(): this
  /**
   * Queues one message; never waits. The bytes are copied once, so the array may be
   * reused at once. Throws `ERR_IROH_BUFFER_FULL` past `maxBufferedBytes` (wait for
   * `flush()` or `drain`, then send again), `ERR_IROH_FRAME_TOO_LARGE` past `maxFrameBytes`,
   * `ERR_IROH_CONNECTION_CLOSED` once closed.
   */
  send(message: Uint8Array): void
  /** Resolves once everything sent so far has been handed to QUIC. */
  flush(): Promise<void>
  /**
   * The next message; `null` once the channel has closed and every message was taken.
   * Rejects with the error (say `ERR_IROH_FRAME_TOO_LARGE`) when one closed the channel,
   * after the messages that arrived before it. A message may share memory with the
   * others of its batch: copy it if you keep a small one for long.
   */
  receive(): Promise<Buffer | null>
  /** Yields every message until the channel closes; leaving the loop leaves it open. */
  [Symbol.asyncIterator](): AsyncIterator<Buffer>
  /** Sends what is queued, waits until the peer has it, then closes the connection. */
  close(code?: number, reason?: string): Promise<EventTargetCloseInfo>
}

/**
 * A message channel on `connection`'s one bidirectional stream (one per connection, as for
 * the event targets): `role: 'open'` on the dialing side, `'accept'` on the other. Messages
 * sent before the stream exists wait and are then sent.
 */
export declare function createMessageChannel(connection: Connection, options: MessageChannelOptions): MessageChannel

/** Close codes a hub puts on the connections it ends. */
export declare const HubCloseCode: {
  /** The node id is not allowed, or is denied. */
  readonly REFUSED: 4100
  /** The node id was revoked while connected. */
  readonly REVOKED: 4101
  /** The same node id connected again; the older connection is closed. */
  readonly REPLACED: 4102
  /** The connection asked for another ALPN than the hub's. */
  readonly WRONG_ALPN: 4103
  /** The hub is closing. */
  readonly CLOSING: 4104
  /** Hub and spoke dialed each other at once: the hub's connection closes, the spoke's stays. */
  readonly BOTH_DIALED: 4105
}

/** Options of `flush`. */
export interface FlushOptions {
  /** Wait for the peer's acknowledgement of delivery, not only for QUIC to take the bytes. */
  acked?: boolean
}

/** Options of `createHub`. */
export interface HubOptions {
  /** The ALPN the hub serves; connections for another ALPN are closed (`WRONG_ALPN`). */
  alpn: string
  /**
   * Who may connect: node ids (a `Set` is consulted live, so it may change), or a function
   * that may be async. Without it every node id not denied is admitted.
   */
  allow?: Iterable<NodeId> | ((nodeId: NodeId) => boolean | Promise<boolean>)
  /** Node ids refused whatever `allow` says; change it with `revoke` and `restore`. */
  deny?: Iterable<NodeId>
  /** Options of each spoke's event target; its `serializer` also encodes `broadcast`. */
  eventTarget?: IrohEventTargetOptions
  /**
   * Acknowledged delivery with spokes that offer it (default true): events that a
   * connection loses are sent again on the spoke's next connection, none twice.
   */
  acks?: boolean
  /** Bytes of events kept per spoke until it acknowledges them (default 8 MiB). */
  maxPendingBytes?: number
  /**
   * How long a disconnected spoke's delivery session (what it has not acknowledged, what it
   * has delivered) is kept for its return, in ms (default 5 minutes). Events still
   * unacknowledged then are reported as `error` with `undelivered`.
   */
  sessionTtlMs?: number
}

/**
 * One peer's figures, as `hub.stats()` gives them per spoke and `spoke.stats()` for its hub.
 * Counts are summed over the peer's connections: a hub keeps a spoke's for `sessionTtlMs`
 * after it leaves, for its return; a spoke keeps its own for its life.
 */
export interface PeerStats {
  /** The spoke's node id (on both ends). */
  nodeId: NodeId
  /** Where data goes on the live connection; `none` between connections. */
  pathType: PathType
  /** Round trip time of the selected path in ms; null between connections. */
  rttMs: number | null
  /** Whether the live connection runs acknowledged delivery. */
  acked: boolean
  /** Events delivered to this side's listeners. */
  eventsIn: number
  /** Events dispatched or broadcast to the peer (each once, however often it was resent). */
  eventsOut: number
  /**
   * Payload bytes of the frames received (frame headers not counted; acknowledged
   * delivery's control frames counted). On a plain connection, the UTF-8 size of the events.
   */
  bytesIn: number
  /** Payload bytes of the frames handed to the transport, as `bytesIn` counts them (resends too). */
  bytesOut: number
  /**
   * Events per second over the last `rateWindowMs`: 10 s once sampling has run that long.
   * Sampling (once a second, unref'd) starts with the first `stats()` call; before that the
   * window reaches back to when the peer was first seen.
   */
  eventsInPerSecond: number
  eventsOutPerSecond: number
  rateWindowMs: number
  /**
   * Events (and their bytes) kept until the peer acknowledges them: sent or waiting for a
   * connection. On a plain connection, a spoke's events waiting for a connection; 0 on a hub.
   */
  unackedEvents: number
  unackedBytes: number
  /** Bytes handed over and not yet taken by QUIC (`bufferedAmount` of the live connection). */
  bufferedBytes: number
  /** Connections after the first. */
  reconnects: number
  /** `Date.now()` when the live connection came; null between connections. */
  connectedAt: number | null
  /** `Date.now()` when the peer was last heard: a frame, or a packet (read once a second while sampling). */
  lastSeen: number | null
}

/** A connected spoke's figures at the hub. */
export interface HubSpokeStats extends PeerStats {
  /** The spoke's event target's state. */
  state: OpenState
  /** Whether the hub dialed this connection (`hub.connect`). */
  dialed: boolean
}

/** `hub.stats()`. */
export interface HubStats {
  /** The hub's own node id. */
  nodeId: NodeId
  state: OpenState
  /** The spokes connected now, by node id; one that disconnects leaves it. */
  spokes: Record<NodeId, HubSpokeStats>
}

/** What `hub.serveStatus()` resolves with. */
export interface StatusServer {
  /** The address it listens on, and the port (the one chosen when 0 was asked). */
  readonly host: string
  readonly port: number
  /** The status page's URL, such as `http://127.0.0.1:9464/`. */
  readonly url: string
  /** Stops listening and closes open requests; resolves once closed. */
  close(): Promise<void>
}

/** `spoke.stats()`: `nodeId` is the spoke's own. */
export interface SpokeStats extends PeerStats {
  state: SpokeState
  /** The hub's node id: of the live connection, or the one it dials; null while a listening spoke waits. */
  hubNodeId: NodeId | null
}

/** A spoke the hub admitted. */
export interface HubSpoke<TEvent extends Event = CustomEvent> {
  nodeId: NodeId
  target: IrohEventTarget<TEvent>
  /** Whether the hub dialed this connection (`hub.connect`); false when the spoke dialed in. */
  dialed: boolean
}

/**
 * Runs an endpoint's accept loop for one ALPN, admits spokes by node id and keeps one event
 * target per connected spoke. Events: `spoke` (detail `HubSpoke`), `disconnect` (detail
 * `{ nodeId }` and the target's close info, reason and error included), `refused` (detail
 * `{ nodeId, code, reason }`), `error` (detail `{ nodeId?, error, undelivered? }`). Iterate it with
 * `for await` to take spokes as they arrive.
 */
export declare class Hub<TEvent extends Event = CustomEvent> extends EventTarget {
  private constructor()
  readonly state: OpenState
  /** Whether `close()` has finished. */
  readonly isClosed: boolean
  /** Node ids of the spokes connected now. */
  readonly spokes: NodeId[]
  /** Node ids on the deny list. */
  readonly denied: NodeId[]
  /** The event target of a connected spoke. */
  spoke(nodeId: NodeId): IrohEventTarget<TEvent> | undefined
  /** Denies `nodeId` from now on and closes its live connection (`REVOKED`). */
  revoke(nodeId: NodeId, reason?: string): void
  /** Takes `nodeId` off the deny list. */
  restore(nodeId: NodeId): void
  /**
   * Dials a spoke that listens (`listenForHub`) and admits it as if it had dialed in:
   * `spoke` event, `spoke(nodeId)`, broadcasts, revoke, and the same acknowledged session
   * per node id. `allow` is not asked (the hub chose to dial); `deny` is. Rejects with
   * `ERR_IROH_REFUSED` for a denied spoke, `ERR_IROH_CONNECTION_CLOSED` once the hub closes.
   * A spoke that dials too (`connectSpoke` with `listen: true`) keeps its own connection:
   * if it is connected on it already, this resolves with its target without dialing; if
   * it connects while this dials, this dial's connection is closed (`BOTH_DIALED`) and the
   * promise resolves with the spoke's target, or, when that arrives after this resolved,
   * the target this resolved with closes with `BOTH_DIALED` (`spoke(nodeId)` is the survivor).
   */
  connect(spoke: NodeId | string | EndpointAddr, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<IrohEventTarget<TEvent>>
  /**
   * Serializes `{ type, detail }` once and queues the same bytes for every connected spoke.
   * Returns how many took it; a full spoke gets an `error` event instead of a silent drop.
   * Broadcasts made in one tick go out together at its end, in order with the hub's other
   * events to each spoke.
   */
  broadcast(type: string, detail?: unknown): number
  /** Figures per connected spoke (see `PeerStats`). */
  stats(): HubStats
  /**
   * `stats()` in Prometheus's text exposition format (0.0.4): `iroh_hub_spokes`, then one
   * family per figure (`iroh_hub_spoke_*`, counters ending in `_total`, RTT in seconds,
   * times in Unix seconds), one sample per spoke labelled `node_id`.
   */
  metrics(): string
  /**
   * Opt-in status server: `GET /metrics` (`metrics()`), `GET /stats.json` (`stats()`) and
   * `GET /` (a page with one row per spoke that refreshes every second). Listens on `host`
   * (default `127.0.0.1`) and `port` (default 0: a free one); resolves once it listens.
   * It closes with the hub and never keeps the process alive (its sockets are unref'd).
   * Node only: the browser build throws `ERR_IROH_UNSUPPORTED`.
   */
  serveStatus(options?: { port?: number; host?: string }): Promise<StatusServer>
  /**
   * Stops admitting, closes every spoke (`CLOSING`), resolves once all are closed. The
   * endpoint stays open and keeps the process alive until you close it too.
   */
  close(reason?: string): Promise<void>
  /** Lets the process exit while the hub accepts (unrefs its endpoint); open spokes still hold it. */
  unref(): this
  /** Undoes `unref()`. */
  ref(): this
  /** Spokes admitted from the first `next()` on; queued only while an iterator runs. */
  [Symbol.asyncIterator](): AsyncIterator<HubSpoke<TEvent>>
}

/** Runs `endpoint`'s accept loop as a hub. The hub owns that loop: do not call `accept()` too. */
export declare function createHub<TEvent extends Event = CustomEvent>(endpoint: Endpoint, options: HubOptions): Hub<TEvent>

/** Options of `connectSpoke`. */
export interface SpokeOptions {
  /** The hub's ALPN. */
  alpn: string
  /** First wait before redialing, in ms (default 250); doubles per failed attempt, with jitter. */
  initialDelayMs?: number
  /** Longest wait between attempts, in ms (default 30,000). */
  maxDelayMs?: number
  /** Attempts in a row before giving up with `ERR_IROH_CONNECT` (default: never give up). */
  maxAttempts?: number
  /** Timeout of each dial, in ms (default 10,000). */
  connectTimeoutMs?: number
  /**
   * Bytes of events held while disconnected, plus those sent but not yet acknowledged by the
   * hub, before `ERR_IROH_BUFFER_FULL` (default 8 MiB).
   */
  maxPendingBytes?: number
  /**
   * Acknowledged delivery when the hub offers it too (default true): what a connection loses
   * is sent again on the next one, none twice. Off, or with a hub that does not offer it,
   * events handed to a connection that dies are lost with it.
   */
  acks?: boolean
  /**
   * With acknowledged delivery: after this long without a word from the hub (ms, default
   * 1,000), send it an empty frame that its QUIC stack acknowledges (its JS never sees it).
   */
  heartbeatMs?: number
  /**
   * With acknowledged delivery: after this long without a packet from the hub (ms, default
   * 2,500), dial again alongside the silent connection and move to the new one once it is
   * up: a restarted hub is noticed in seconds, not at the idle timeout. A hub that is only
   * busy still acknowledges packets, and is not redialed.
   */
  ackTimeoutMs?: number
  /**
   * Let the hub dial this spoke too (`hub.connect`), default false: the endpoint accepts
   * `alpn` (and the acks ALPN) from the hub's node id alone, read from `hub` (a node id, a
   * ticket or an address). One connection is served at a time; when both dial at once the
   * spoke's own connection is kept on both ends and the hub's is closed with `BOTH_DIALED`.
   * A call from the hub while the spoke's own connection is up is taken only if that one no
   * longer answers (a restarted hub is reached at once); a call while the spoke waits to
   * redial is taken at once.
   */
  listen?: boolean
  /** Options of each connection's event target; its `serializer` also encodes held events. */
  eventTarget?: IrohEventTargetOptions
  /**
   * Runs on every new connection, before the events held while disconnected are sent and
   * before `state` becomes `connected`: what it dispatches goes first (register here what
   * the hub must know after each reconnect). It may be async; until it settles every event
   * dispatched goes out at once, ahead of the held ones. What it throws is reported as
   * `error` on `lifecycle`.
   */
  onConnect?: (spoke: ReconnectingSpoke) => void | Promise<void>
}

/**
 * Where a reconnecting spoke is; a listening one (`listenForHub`) is `listening` between
 * connections; one that dials and listens (`listen: true`) goes through the dialing states.
 */
export type SpokeState = 'connecting' | 'connected' | 'disconnected' | 'listening' | 'closed'

/**
 * One event target for a hub that redials on its own. Listeners stay attached across
 * connections; events dispatched while disconnected are held in order and sent after the
 * next connect. A hub refusal (`REFUSED`, `REVOKED`, `WRONG_ALPN`) ends it with
 * `ERR_IROH_REFUSED`. With acknowledged delivery (the default with a hub of this package),
 * events a connection loses are sent again on the next one; without it they are lost with it.
 */
export declare class ReconnectingSpoke<TEvent extends Event = CustomEvent> {
  private constructor()
  readonly state: SpokeState
  /** Whether the spoke has closed (`close()`, or it gave up redialing). */
  readonly isClosed: boolean
  /**
   * `statechange` (detail `{ state, previous }`), `error` (detail: the Error), `close`,
   * `pathchange` (detail: `PathState`) for each connection's paths, and, on a spoke that
   * listens, `refused` (detail `{ nodeId, code, reason }`) for each connection it closed
   * because the node is not let in (`REFUSED`) or asked for another ALPN (`WRONG_ALPN`).
   */
  readonly lifecycle: EventTarget
  /** The live connection, or null between connections. */
  readonly connection: Connection | null
  /** Where data goes on the live connection; `none` between connections. */
  pathType(): PathType
  /** The live connection's open paths; empty between connections. */
  paths(): PathInfo[]
  /** Bytes dispatched and not yet handed to QUIC, held ones included. */
  readonly bufferedAmount: number
  /** This spoke's figures for its hub (see `PeerStats`). */
  stats(): SpokeStats
  /** Resolves once closed or given up. */
  readonly closed: Promise<EventTargetCloseInfo>
  /**
   * Lets the process exit while the spoke is open or redialing (it keeps the process alive
   * from `connectSpoke()` until it is closed or gives up).
   */
  unref(): this
  /** Undoes `unref()`. */
  ref(): this
  /** Sends, or holds until the next connection. Throws `ERR_IROH_BUFFER_FULL` past the bound. */
  dispatchEvent(event: TEvent): boolean
  /**
   * Resolves once everything dispatched has been handed to QUIC on a live connection; with
   * `{ acked: true }`, once the hub has acknowledged delivering it (acknowledged delivery only).
   * With acknowledged delivery a connection that ends meanwhile (replaced, or lost) does not
   * reject it: what it did not take goes out on the next one, and the flush waits for that.
   * Rejects with `ERR_IROH_CONNECTION_CLOSED` once the spoke closes (or a plain connection
   * dies under it).
   */
  flush(options?: FlushOptions): Promise<void>
  /**
   * Stops redialing, sends what the live connection has queued, then closes it; a hub that
   * takes nothing for `ackTimeoutMs` is taken for gone and the connection closed at once.
   */
  close(code?: number, reason?: string): Promise<EventTargetCloseInfo>
}

/**
 * Dials the hub at `hub` (node id, ticket or address) and keeps redialing; with
 * `listen: true` that hub may dial it too (see `SpokeOptions.listen`). Throws
 * `ERR_IROH_INVALID_NODE_ID` with `listen: true` when `hub` names no node id.
 */
export declare function connectSpoke<TEvent extends Event = CustomEvent>(
  endpoint: Endpoint,
  hub: NodeId | string | EndpointAddr,
  options: SpokeOptions,
): ReconnectingSpoke<TEvent>

/** Options of `listenForHub`. */
export interface ListeningSpokeOptions {
  /** The hub's ALPN; the endpoint is made to accept it (and the acks ALPN) until close. */
  alpn: string
  /** Hub node ids let in (a Set is read live), or a function; others are refused with `REFUSED`. */
  allow: Iterable<NodeId> | ((nodeId: NodeId) => boolean | Promise<boolean>)
  /** As in `SpokeOptions`. */
  maxPendingBytes?: number
  /** As in `SpokeOptions`. */
  acks?: boolean
  /** With acknowledged delivery: nudge a hub silent this long (ms, default 1,000), as in `SpokeOptions`. */
  heartbeatMs?: number
  /**
   * With acknowledged delivery: a connection without a packet from the hub this long (ms,
   * default 2,500) is closed and the spoke goes back to `listening` (it cannot redial): what
   * is dispatched is held for the hub's next call. Also how long `close()` waits for the hub.
   */
  ackTimeoutMs?: number
  /** Options of each connection's event target. */
  eventTarget?: IrohEventTargetOptions
  /** Runs first on every connection the hub makes, as in `SpokeOptions`. */
  onConnect?: (spoke: ReconnectingSpoke) => void | Promise<void>
}

/**
 * Waits for the hubs in `allow` to dial this endpoint (`hub.connect`) and gives one target
 * that outlives their connections, as `connectSpoke` does: listeners stay, events are held
 * while no hub is connected, `onConnect` runs first on each connection. It never dials.
 */
export declare function listenForHub<TEvent extends Event = CustomEvent>(
  endpoint: Endpoint,
  options: ListeningSpokeOptions,
): ReconnectingSpoke<TEvent>

/** Options of `joinTopic`. */
export interface TopicOptions {
  /** Members to join through: node ids, tickets or `addr()` objects. Empty: wait to be joined. */
  bootstrap?: Array<NodeId | string | EndpointAddr>
  /**
   * Node ids that may be members, read once at the join; others are refused in the
   * handshake and their events dropped (reported as `dropped`). Anyone when absent.
   */
  allow?: Iterable<NodeId>
  /** The largest event, serialized (default and at most 65,339 bytes: one run). */
  maxEventBytes?: number
  /** Bytes dispatched and not yet handed to the members' push queues past which `dispatchEvent` throws `ERR_IROH_BUFFER_FULL` (default 8 MiB). */
  maxBufferedBytes?: number
  /** Bytes received and waiting for listeners past which further runs wait in the log and are delivered later (default 32 MiB). */
  receiveBufferBytes?: number
  /** What this member keeps to repair others, oldest dropped first (default 64 MiB, 120 s). */
  retention?: { maxBytes?: number; maxAgeMs?: number }
  /** How often this member announces how far it has sent (default 1,000 ms). */
  headsIntervalMs?: number
}

/** An event from another topic member: a CustomEvent that names its author. */
export declare class TopicEvent<TDetail = unknown> extends CustomEvent<TDetail> {
  /** The node id of the member that dispatched it. */
  readonly author: NodeId
}

/** `gap` on a topic's `lifecycle`: events `from` up to (not including) `to` of `author` are gone. */
export interface TopicGap {
  author: NodeId
  from: number
  to: number
}

/**
 * One membership of a topic: `dispatchEvent` sends to every other member (not to this
 * one); listeners get `TopicEvent`s from every other member, exactly once and in each
 * author's order, or a `gap` where a range is gone everywhere. `createPubSub({ eventTarget })`
 * runs over it unchanged; a listener typed `(e: TopicEvent) => ...` reads `e.author`. An
 * open topic keeps the process alive; `unref()` opts out.
 */
export declare class Topic<TEvent extends Event = CustomEvent> {
  private constructor()
  /** The topic's name, as joined. */
  readonly name: string
  readonly state: OpenState
  readonly isClosed: boolean
  /**
   * `close`, `error`, `drain`; `neighborup` / `neighbordown` (detail `{ nodeId }`);
   * `member` (`{ nodeId }`, first word from a member); `gap` (`TopicGap`); `dropped`
   * (`{ author, reason }`: a forged, replayed, malformed or not-allowed message).
   */
  readonly lifecycle: EventTarget
  /** Always null: a topic has no one connection. */
  readonly connection: null
  /** Bytes dispatched and not yet handed to the members' push queues. */
  readonly bufferedAmount: number
  readonly closed: Promise<EventTargetCloseInfo>
  /** Sends to every other member; throws `ERR_IROH_FRAME_TOO_LARGE` past `maxEventBytes`, `ERR_IROH_BUFFER_FULL` past `maxBufferedBytes`. */
  dispatchEvent(event: TEvent): boolean
  /** Resolves once everything dispatched so far has been handed to the members' push queues. */
  flush(): Promise<void>
  /** Writes what is queued to the members (for at most 10 s), then leaves the topic. */
  close(code?: number, reason?: string): Promise<EventTargetCloseInfo>
  /** Node ids of the members heard from so far. */
  members(): NodeId[]
  /** Node ids of the gossip neighbours connected now. */
  neighbors(): NodeId[]
  /** This membership's session number (decimal): new on every join. */
  session(): string
  unref(): this
  ref(): this
}

/** Joins topic `name` on `endpoint` (once per endpoint) through `options.bootstrap`. */
export declare function joinTopic<TEvent extends Event = CustomEvent>(
  endpoint: Endpoint,
  name: string,
  options?: TopicOptions,
): Promise<Topic<TEvent>>

/**
 * An iroh relay server running in this process. Like a listening `net.Server`, it keeps
 * the process alive until `close()` or `unref()`.
 */
export declare class RelayServer {
  private constructor()
  /** The URL endpoints dial, e.g. `https://127.0.0.1:40123/`. */
  readonly url: string
  /** The UDP port of its QUIC address discovery. */
  readonly quicPort: number
  /** `{ url, quicPort }`, ready for `relayMode: { relays: [server.relay] }`. */
  readonly relay: RelayInfo
  /** The generated CA's certificate (PEM), or null when you passed your own certificate. */
  readonly caCertificatePem: string | null
  readonly state: OpenState
  readonly isClosed: boolean
  /** Stops serving and closes every client connection. */
  close(): Promise<void>
  /** Lets the process exit while the server runs. */
  unref(): this
  /** Undoes `unref()`. */
  ref(): this
}

/**
 * Starts an iroh relay server: it relays traffic between endpoints that cannot reach each
 * other directly, and tells endpoints behind NAT their public address (QUIC address
 * discovery) so that they can hole-punch. Rejects with `ERR_IROH_BIND` if the address is taken.
 */
export declare function startRelayServer(options?: RelayServerOptions): Promise<RelayServer>

/** A new random secret key (64 hex characters). Keep it secret. */
export declare function generateSecretKey(): string
/** The node id that belongs to a secret key. */
export declare function nodeIdFromSecretKey(secretKey: string): NodeId
/** Validates a node id and returns its canonical lowercase hex form. */
export declare function parseNodeId(nodeId: string): NodeId
/**
 * Sets the log level: `'off' | 'error' | 'warn' | 'info' | 'debug' | 'trace'` or a directive
 * such as `'iroh=debug,warn'`. Logs go to stderr. May be called any number of times.
 */
export declare function setLogLevel(level: string): void
/** Alias of `setLogLevel`, the name used by the older community binding. */
export declare function initLogging(level?: string): void
