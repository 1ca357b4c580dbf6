'use strict'

// The JS half of a pump, and the one seam between the JS face (event targets, message
// channels, acknowledged delivery, hub and spoke) and whatever moves the bytes: the native
// addon here, a WebAssembly build or an in-memory pair elsewhere. Nothing above this file
// calls a raw pump. `lib/pump.d.ts` writes the interface down.
//
// A pump source opens a raw pump: Rust (or its stand-in) cuts frames out of the stream and
// hands whole batches to `deliver`, and takes frames that JS encoded into a staging buffer.
// This file adds what every user of a pump needs: staging, the message kinds, the drain
// rule, close and flush, and the one open state (`open`, `closing`, `closed`).

const binding = require('./native.js')
const { openWith } = require('./mailbox.js')
const { NATIVE: CONNECTION } = require('./connection.js')
const { irohError, invalidArgument } = require('./errors.js')
const { Lifecycle } = require('./lifecycle.js')
const { native, nativeSync } = require('./pending.js')
const { Outlet, Staging } = require('./staging.js')

/** The raw pump's message kinds (PumpMessage in binding.d.ts, from src/pump/message.rs). */
const Message = Object.freeze({ JSON: 'json', FRAMES: 'frames', BINARY: 'binary', DRAIN: 'drain', CLOSED: 'closed' })

/**
 * Hands `frames` to the native pumps of `outlets` in one native call. Per outlet, the bytes
 * its pump buffers now, or -1 (its buffer was full) or -2 (closed).
 */
function broadcastFrames(outlets, frames) {
  return nativeSync(() => binding.broadcastFrames(Uint32Array.from(outlets, (o) => o.broadcastId), frames))
}

// Process-wide staging, one per way of handing frames over (lib/staging.js). Event targets
// stage serialized events here, and so do a hub's broadcasts, so that the two keep their order.
const eventStaging = new Staging({ broadcastFrames })
// Message channels hand the staged bytes themselves to the pump: no second copy.
const messageStaging = new Staging({ handOver: true })

/** What a pump carries: events as one JSON array per batch, events as frames for a custom parser, or bytes. */
const MODES = new Set(['json', 'frames', 'binary'])

/**
 * The source of native pumps: the one bidirectional stream of `connection`, opened by the
 * dialing side (`accept` false) or taken by the accepting side.
 */
function nativeSource(connection, accept) {
  if (!connection?.[CONNECTION]) {
    throw invalidArgument('expected a Connection from endpoint.connect() or endpoint.accept()')
  }
  return {
    connection,
    // A pump's last message is `closed`.
    open: (options, deliver) =>
      openWith(deliver, (message) => message.kind === Message.CLOSED, (to) =>
        nativeSync(() => binding.createEventPump(connection[CONNECTION], accept, options, to)),
      ),
  }
}

/** What `close` and `closed` report, from the pump's close message. */
function closeInfoOf(closed) {
  const info = { code: closed.code, reason: closed.reason, kind: closed.kind }
  if (closed.errorCode) info.error = irohError(closed.errorCode, closed.errorMessage ?? closed.reason)
  return info
}

/**
 * One pump, as the event target or message channel over it sees it. `receive(message)`
 * gets every message in arrival order; its owner calls `drained()` for a drain message and
 * `finish(message.closed)` for the close message once it has handled what came before.
 */
class Pump {
  /** `open`, `closing` (close() was called), or `closed`. */
  state = 'open'
  /** The owner's `lifecycle`, `closed` and error reporting. */
  life = new Lifecycle()
  /** The pump as staging sees it: its limits and what it buffers. */
  outlet
  #raw
  #staging
  #noun
  #source

  /**
   * `options`: `{ mode, maxFrameBytes?, maxBufferedBytes?, frameTimeoutMs? }`; `noun` names
   * the owner in errors ("event target", "message channel").
   */
  constructor(source, options, noun, receive) {
    if (!MODES.has(options.mode)) throw invalidArgument(`unknown pump mode ${options.mode}`)
    this.#source = source
    this.#noun = noun
    this.#staging = options.mode === 'binary' ? messageStaging : eventStaging
    this.#raw = source.open(
      {
        maxFrameBytes: options.maxFrameBytes,
        maxBufferedBytes: options.maxBufferedBytes,
        frameTimeoutMs: options.frameTimeoutMs,
        rawFrames: options.mode === 'frames',
        binary: options.mode === 'binary',
      },
      receive,
    )
    this.outlet = new Outlet(this.#raw, nativeSync(() => this.#raw.limits()), (err) => this.life.reportError(err))
  }

  /** The connection the pump runs on, or null (an in-memory pump). */
  get connection() {
    return this.#source.connection ?? null
  }

  get isClosed() {
    return this.state === 'closed'
  }

  /** Throws ERR_IROH_CONNECTION_CLOSED unless the pump is open. */
  checkOpen() {
    if (this.state !== 'open') throw irohError('ERR_IROH_CONNECTION_CLOSED', `the ${this.#noun} is closed`)
  }

  /** Stages one serialized event; throws ERR_IROH_FRAME_TOO_LARGE or ERR_IROH_BUFFER_FULL. */
  stageText(text) {
    this.#staging.stageText(this.outlet, text)
  }

  /** Stages one message (checked against maxFrameBytes already). */
  stageBytes(bytes) {
    this.#staging.stageBytes(this.outlet, bytes)
  }

  /** Hands one payload to the raw pump at once, after what is staged. */
  send(bytes) {
    this.#staging.commit()
    this.outlet.send(bytes)
  }

  /** Hands what is staged to the pumps now. */
  commit() {
    this.#staging.commit()
  }

  /** Hands over what this kind of pump staged, leaving staged broadcasts staged. */
  commitRun() {
    this.#staging.commitRun()
  }

  /** Bytes staged or queued and not yet handed to QUIC. */
  get bufferedAmount() {
    this.#staging.commit()
    return nativeSync(() => this.#raw.bufferedAmount())
  }

  /** Resolves once everything sent so far has been handed to QUIC. */
  async flush() {
    this.#staging.commit()
    await native(() => this.#raw.flush())
  }

  /** Sends what is queued, waits until the peer has it, then closes; resolves with the close info. */
  async close(code, reason) {
    this.#staging.commit()
    if (this.state === 'open') this.state = 'closing'
    if (this.state !== 'closed') await native(() => this.#raw.close(code, reason))
    return this.life.closed
  }

  /** The owner took the last batch: the raw pump may hand over the next. */
  ack() {
    if (this.state !== 'closed') nativeSync(() => this.#raw.ack())
  }

  /** A frame the owner could not parse: closes the connection (code 4002) with `reason`. */
  malformedFrame(reason) {
    nativeSync(() => this.#raw.malformedFrame(reason))
  }

  /** An empty frame the peer's QUIC acknowledges and its JS never sees. */
  nudge() {
    if (this.state !== 'closed') nativeSync(() => this.#raw.nudge())
  }

  /** The raw pump's round-trip stamps (lib/trace.js). */
  traceStamps() {
    return this.#raw.traceStamps?.() ?? null
  }

  /**
   * A drain message: the writer saw an empty buffer, but this thread may have queued more
   * since, so a drain that is no longer true waits for the next empty buffer.
   */
  drained() {
    if (this.#raw.bufferedAmount() === 0) this.life.events.dispatchEvent(new Event('drain'))
    else this.#raw.wantDrain()
  }

  /** The close message, once the owner handled what came before it; `cleanup` runs first. */
  finish(closed, cleanup) {
    this.state = 'closed'
    return this.life.finish(closeInfoOf(closed), cleanup)
  }
}

/**
 * Gives `Class` the members its pump answers, the same on every class over a pump:
 * `connection`, `state` (`open`, `closing`, `closed`), `isClosed`, `closed` (resolves with
 * `{ code, reason, kind, error? }` once closed) and `bufferedAmount` (bytes sent and not yet
 * handed to QUIC). Call it from the class's static block, where `pumpOf` may read a private field.
 */
function answeredByPump(Class, pumpOf) {
  const getter = (get) => ({ get, configurable: true, enumerable: false })
  Object.defineProperties(Class.prototype, {
    connection: getter(function () {
      return pumpOf(this).connection
    }),
    state: getter(function () {
      return pumpOf(this).state
    }),
    isClosed: getter(function () {
      return pumpOf(this).isClosed
    }),
    closed: getter(function () {
      return pumpOf(this).life.closed
    }),
    bufferedAmount: getter(function () {
      return pumpOf(this).bufferedAmount
    }),
  })
}

/**
 * `hub.broadcast`: stages one encoded frame for every outlet; false if one of them might
 * be full (see Staging#stageBroadcast), and then the caller hands it over at once with
 * `broadcastFrames` and hears which pumps took it.
 */
const stageBroadcast = (outlets, frame) => eventStaging.stageBroadcast(outlets, frame)

module.exports = { Message, Pump, answeredByPump, nativeSource, stageBroadcast, broadcastFrames }
