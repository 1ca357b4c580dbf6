'use strict'

// The TypedEventTarget over the native pump: Rust frames and batches, JS parses and
// dispatches. Lifecycle signals (close, error, drain) live on `target.lifecycle`, a
// separate EventTarget, so they never collide with the event types users send.

const binding = require('./native.js')
const { openWith } = require('./mailbox.js')
const { NATIVE: CONNECTION } = require('./connection.js')
const { irohError, invalidArgument, normalizeError } = require('./errors.js')
const { Listeners, listenable } = require('./listeners.js')
const { Lifecycle } = require('./lifecycle.js')
const { refable } = require('./keep-alive.js')
const { Outlet, Staging, bufferFull, frameTooLarge } = require('./staging.js')
const { detailOf, eventText, isEvent, stringifierOf } = require('./wire-event.js')
const { native, nativeSync } = require('./pending.js')
const { AckedLink, isControl } = require('./delivery.js')
const { TRACE, STAMPS, TargetTrace } = require('./trace.js')

// Package-internal hooks for the hub and the reconnecting spoke.
/** `target[SEND_ENCODED](bytes)`: sends one event already serialized as UTF-8 JSON. */
const SEND_ENCODED = Symbol('sendEncoded')
/** `target[FORWARD] = (type, detail) => {}`: receives every event instead of the listeners. */
const FORWARD = Symbol('forward')
/**
 * `target[SEND_TEXT](text, bytes?)`: sends one event already serialized, as dispatchEvent
 * would; `bytes`, its UTF-8 size, when the caller measured it already.
 */
const SEND_TEXT = Symbol('sendText')
/** Option: a delivery `Session` to run acknowledged delivery with (the peer must speak it). */
const DELIVERY = Symbol('delivery')
/** Option: wait for `target[START](greeting)` before sending the hello of acknowledged delivery. */
const DEFER_START = Symbol('deferStart')
const START = Symbol('start')
/** `target[LINK]`: the acknowledged-delivery link, or null. */
const LINK = Symbol('link')
/**
 * `target[TAKE_BROADCAST](text, bytes)`: for `hub.broadcast`; returns the outlet to send the
 * frame through now (`broadcastFrames`), or null when acknowledged delivery sends it later.
 * Throws as dispatchEvent would. `target[BROADCAST_REFUSED]()`: the pump refused it (-1:
 * buffer full, -2: closed); returns the error to report, or null.
 */
const TAKE_BROADCAST = Symbol('takeBroadcast')
const BROADCAST_REFUSED = Symbol('broadcastRefused')
/** `target[NUDGE]()`: an empty frame the peer's QUIC acknowledges and its JS never sees. */
const NUDGE = Symbol('nudge')
// Frames of the custom serializer that are control frames of acknowledged delivery.
const CONTROL_PREFIX = '{"type":"\\u0000'

// Dispatch at most this many events synchronously, then yield a macrotask: a
// `createPubSub` subscriber (a Repeater without buffer) overflows past 1,024 pushes in
// one synchronous burst.
const DISPATCH_CHUNK = 256
// The pump's message kinds (PumpMessage in binding.d.ts, generated from src/pump/message.rs).
const MSG_JSON = 'json'
const MSG_FRAMES = 'frames'
const MSG_DRAIN = 'drain'
const MSG_CLOSED = 'closed'

const yieldMacrotask = () => new Promise((resolve) => setImmediate(resolve))

// Small events are encoded by JS straight into this buffer in wire format (4-byte
// length, UTF-8 JSON) and handed to the native pump once per tick, when it fills, or
// when another target sends: one native call per burst instead of one per event. A hub's
// broadcasts are staged here too, so that they keep their order with each target's events.
const staging = new Staging({ broadcastFrames })

/**
 * Hands `frames` to the pumps of `outlets` in one native call. Per outlet, the bytes its
 * pump buffers now, or -1 (its buffer was full) or -2 (closed).
 */
function broadcastFrames(outlets, frames) {
  return nativeSync(() => binding.broadcastFrames(Uint32Array.from(outlets, (o) => o.broadcastId), frames))
}

/**
 * `hub.broadcast`: stages one encoded frame for the outlets TAKE_BROADCAST returned; false
 * if one of them might be full (see Staging#stageBroadcast).
 */
const stageBroadcast = (outlets, frame) => staging.stageBroadcast(outlets, frame)

function checkOptions(options) {
  if (options === undefined || options === null) return {}
  if (typeof options !== 'object') throw invalidArgument('options must be an object')
  for (const name of ['maxFrameBytes', 'maxBufferedBytes', 'frameTimeoutMs']) {
    const v = options[name]
    if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > 0xffffffff)) {
      throw invalidArgument(`options.${name} must be a positive integer below 2^32`)
    }
  }
  const s = options.serializer
  if (s !== undefined && (typeof s !== 'object' || typeof s.stringify !== 'function' || typeof s.parse !== 'function')) {
    throw invalidArgument('options.serializer must be an object with stringify and parse functions')
  }
  return options
}

/** A hub or spoke end of the framed event stream of one connection. */
class IrohEventTarget {
  // An open target keeps the process alive as its connection does (this is the
  // connection's handle): unref() lets it exit, ref() undoes that. Listeners are
  // added to and removed from #listeners.
  static {
    refable(this, (target) => target.#connection)
    listenable(this, (target) => target.#listeners)
  }
  #life = new Lifecycle()
  #pump
  #connection
  #stringify
  #parse
  #listeners = new Listeners((err) => this.#life.reportError(err))
  #forward = null
  #inbox = Promise.resolve()
  #closing = false
  /** The pump as staging sees it: its limits and what it buffers. */
  #outlet
  #stopWatchingPaths
  /** Acknowledged delivery, when both ends speak it. */
  #link = null
  /** The round-trip breakdown's stamps (lib/trace.js), when the process traces. */
  #trace = TRACE ? new TargetTrace() : null

  /**
   * Lifecycle signals: `close` (detail: close info), `error` (detail: the Error), `drain`,
   * and `pathchange` (detail `{ pathType, paths }`: first the paths at creation, then each
   * change, such as the upgrade from a relay to a direct path).
   */
  lifecycle = this.#life.events

  constructor(connection, accept, options) {
    const checked = checkOptions(options)
    if (!connection || !connection[CONNECTION]) {
      throw invalidArgument('expected a Connection from endpoint.connect() or endpoint.accept()')
    }
    this.#connection = connection
    this.#stringify = stringifierOf(checked)
    this.#parse = checked.serializer ? checked.serializer.parse : null
    // A pump's last message is `closed`.
    this.#pump = openWith((message) => this.#receive(message), (message) => message.kind === MSG_CLOSED, (to) =>
      nativeSync(() =>
        binding.createEventPump(
          connection[CONNECTION],
          accept,
          {
            maxFrameBytes: checked.maxFrameBytes,
            maxBufferedBytes: checked.maxBufferedBytes,
            frameTimeoutMs: checked.frameTimeoutMs,
            rawFrames: Boolean(checked.serializer),
          },
          to,
        ),
      ),
    )
    // A path change (say relay -> direct after hole punching) becomes a `pathchange`.
    this.#stopWatchingPaths = connection.watchPaths((state) => {
      // A closed connection has no paths; the `close` event says so.
      if (state.pathType === 'none') return
      this.#life.emit('pathchange', state)
    })
    this.#outlet = new Outlet(this.#pump, nativeSync(() => this.#pump.limits()), (err) => this.#life.reportError(err))
    if (TRACE) this.#outlet.trace = this.#trace
    if (checked[DELIVERY]) {
      this.#link = new AckedLink(checked[DELIVERY], {
        send: (text) => this.#stage(text),
        malformed: (reason) => this.#pump.malformedFrame(reason),
      })
      if (!checked[DEFER_START]) this.#link.start()
    }
  }

  /** Starts acknowledged delivery with `greeting`: texts sent first, on this connection only. */
  [START](greeting) {
    this.#link.start(greeting)
  }

  get [LINK]() {
    return this.#link
  }

  /** The round-trip breakdown's stamps so far (lib/trace.js), or null when not tracing. */
  [STAMPS]() {
    return TRACE ? this.#trace.stamps(this.#pump) : null
  }

  [NUDGE]() {
    if (!this.#life.isClosed) nativeSync(() => this.#pump.nudge())
  }

  /** The connection this target runs on. */
  get connection() {
    return this.#connection
  }

  /** Where this target's data goes: `direct`, `relay`, `mixed`, or `none` once closed. */
  pathType() {
    return this.#connection.pathType()
  }

  /** The connection's open paths: `{ kind, remoteAddr, rttMs, selected }` each. */
  paths() {
    return this.#connection.paths()
  }

  /** Bytes dispatched but not yet handed to QUIC. */
  get bufferedAmount() {
    staging.commit()
    return nativeSync(() => this.#pump.bufferedAmount())
  }

  /** Whether the target has closed. */
  get isClosed() {
    return this.#life.isClosed
  }

  /** Resolves with `{ code, reason, kind, error? }` once the target (its connection) closes. */
  get closed() {
    return this.#life.closed
  }

  set [FORWARD](fn) {
    this.#forward = fn
  }

  [SEND_TEXT](text, bytes) {
    if (TRACE) this.#trace.dispatch()
    if (this.#life.isClosed || this.#closing) throw irohError('ERR_IROH_CONNECTION_CLOSED', 'the event target is closed')
    if (this.#link !== null) this.#keep(text, bytes)
    else this.#stage(text)
  }

  [TAKE_BROADCAST](text, bytes) {
    if (this.#life.isClosed || this.#closing) throw irohError('ERR_IROH_CONNECTION_CLOSED', 'the event target is closed')
    if (bytes > this.#outlet.maxFrame) throw frameTooLarge(bytes, this.#outlet.maxFrame)
    // What this target staged goes first; broadcasts staged before this one stay staged.
    staging.commitRun()
    if (this.#link === null || this.#link.keepShared(text, bytes)) return this.#outlet
    return null
  }

  [BROADCAST_REFUSED](why, bytes) {
    if (this.#link !== null) {
      // Kept: the link sends it again once the buffer drains.
      if (why === -1) this.#link.unsend()
      return null
    }
    if (why === -2) return irohError('ERR_IROH_CONNECTION_CLOSED', 'the event target is closed')
    return bufferFull(this.#outlet.buffered, bytes, this.#outlet.maxBuffered)
  }

  [SEND_ENCODED](bytes) {
    if (TRACE) this.#trace.dispatch()
    if (this.#life.isClosed || this.#closing) throw irohError('ERR_IROH_CONNECTION_CLOSED', 'the event target is closed')
    staging.commit()
    this.#outlet.send(bytes)
  }

  /** Sends `{ type, detail }` to the peer as one frame. Never waits; returns true. */
  dispatchEvent(event) {
    if (TRACE) this.#trace.dispatch()
    const text = eventText(this.#stringify, event)
    if (this.#life.isClosed || this.#closing) throw irohError('ERR_IROH_CONNECTION_CLOSED', 'the event target is closed')
    if (this.#link === null) return this.#stage(text)
    if (isControl(event.type)) throw invalidArgument('event types that start with U+0000 are reserved for acknowledged delivery')
    this.#keep(text)
    return true
  }

  /** Acknowledged delivery: the session keeps the event until the peer acknowledges it. */
  #keep(text, bytes = Buffer.byteLength(text)) {
    if (bytes > this.#outlet.maxFrame) throw frameTooLarge(bytes, this.#outlet.maxFrame)
    this.#link.dispatch(text, bytes)
  }

  /** Stages one frame for the pump; throws ERR_IROH_BUFFER_FULL past maxBufferedBytes. */
  #stage(text) {
    staging.stageText(this.#outlet, text)
    return true
  }

  /**
   * Resolves once everything dispatched so far has been handed to QUIC, or with
   * `{ acked: true }` once the peer has acknowledged delivering it (acknowledged delivery only).
   */
  async flush(options) {
    const acked = options?.acked === true
    if (acked && this.#link === null) {
      throw irohError('ERR_IROH_PROTOCOL', 'flush({ acked: true }) needs acknowledged delivery, which this connection does not speak')
    }
    if (this.#link !== null) await this.#caughtUp()
    staging.commit()
    try {
      await this.#pump.flush()
    } catch (err) {
      throw normalizeError(err)
    }
    if (acked) await this.#link.session.out.acked()
  }

  /** Acknowledged delivery: waits until every kept event is handed to this connection. */
  #caughtUp() {
    return Promise.race([this.#link.caughtUp(), this.#life.closed.then(() => {
      throw irohError('ERR_IROH_CONNECTION_CLOSED', 'the event target closed before all was sent')
    })])
  }

  /** Sends what is queued, then closes the connection with `code` and `reason`. */
  async close(code = 0, reason = '') {
    if (this.#link !== null && !this.#life.isClosed) {
      await this.#caughtUp().catch(() => {})
      // What was delivered is acknowledged before the close, not lost with the ack timer.
      this.#link.settle()
    }
    staging.commit()
    this.#closing = true
    if (!this.#life.isClosed) await native(() => this.#pump.close(code, reason))
    return this.#life.closed
  }

  #receive(message) {
    if (TRACE && (message.kind === MSG_JSON || message.kind === MSG_FRAMES)) this.#trace.arrive()
    // Messages are handled one after another: a close never overtakes the events before it.
    this.#inbox = this.#inbox.then(() => this.#handle(message)).catch((err) => this.#life.reportError(normalizeError(err)))
  }

  async #handle(message) {
    switch (message.kind) {
      case MSG_JSON: {
        const events = JSON.parse(message.json)
        if (TRACE) this.#trace.parsed(events.length)
        await this.#deliver(events, null)
        this.#pump.ack()
        break
      }
      case MSG_FRAMES:
        if (TRACE) this.#trace.parsed(message.frames.length)
        await this.#deliver(message.frames, this.#parse)
        this.#pump.ack()
        break
      case MSG_DRAIN:
        this.#link?.pump()
        signalDrain(this.#pump, this.lifecycle)
        break
      case MSG_CLOSED:
        this.#finish(message.closed)
        break
    }
  }

  /** Dispatches a batch: events (already parsed, `parse` null) or frames to `parse`. */
  async #deliver(items, parse) {
    for (let i = 0; i < items.length; i++) {
      if (i > 0 && i % DISPATCH_CHUNK === 0) await yieldMacrotask()
      const event = parse === null ? items[i] : this.#parseFrame(items[i], parse)
      // A frame the custom parser rejects closes the connection: nothing after it counts.
      if (event === null) return
      if (this.#link !== null && !this.#link.receive(event)) continue
      if (TRACE) this.#trace.deliver()
      this.#emit(event.type, detailOf(event))
    }
    this.#link?.delivered()
  }

  #parseFrame(frame, parse) {
    // Control frames of acknowledged delivery are JSON whatever the serializer.
    if (this.#link !== null && frame.startsWith(CONTROL_PREFIX)) parse = JSON.parse
    let event
    try {
      event = parse(frame)
    } catch (err) {
      this.#pump.malformedFrame(`malformed frame: serializer.parse failed: ${err?.message ?? err}`)
      return null
    }
    if (isEvent(event)) return event
    this.#pump.malformedFrame('malformed frame: a frame did not parse to an object with a string type')
    return null
  }

  #emit(type, detail) {
    if (this.#forward !== null) this.#forward(type, detail)
    else this.#listeners.emit(this, type, detail)
  }

  #finish(closed) {
    this.#life.finish(closeInfoOf(closed), () => {
      this.#link?.stop()
      this.#stopWatchingPaths()
    })
  }
}

/**
 * Handles the pump's drain message. The writer saw an empty buffer, but this thread may
 * have queued more since: a drain that is no longer true waits for the next empty buffer.
 */
function signalDrain(pump, lifecycle) {
  if (pump.bufferedAmount() === 0) lifecycle.dispatchEvent(new Event('drain'))
  else pump.wantDrain()
}

/** What `close` and `closed` report, from the pump's close message. */
function closeInfoOf(closed) {
  const info = { code: closed.code, reason: closed.reason, kind: closed.kind }
  if (closed.errorCode) info.error = irohError(closed.errorCode, closed.errorMessage ?? closed.reason)
  return info
}

/** The dialing side: opens the connection's one bidirectional stream. */
async function createSpokeIrohEventTarget(connection, options) {
  return new IrohEventTarget(connection, false, options)
}

/**
 * The accepting side: takes the stream the spoke opens. Resolves at once; events you
 * dispatch before the spoke's first event arrives are queued and then sent.
 */
async function createHubIrohEventTarget(connection, options) {
  return new IrohEventTarget(connection, true, options)
}

module.exports = {
  IrohEventTarget,
  createSpokeIrohEventTarget,
  createHubIrohEventTarget,
  SEND_ENCODED,
  SEND_TEXT,
  FORWARD,
  DELIVERY,
  DEFER_START,
  START,
  LINK,
  NUDGE,
  TAKE_BROADCAST,
  BROADCAST_REFUSED,
  stageBroadcast,
  broadcastFrames,
  checkOptions,
  closeInfoOf,
  signalDrain,
}
