'use strict'

// The TypedEventTarget over a pump (lib/pump.js): Rust frames and batches, JS parses and
// dispatches. Lifecycle signals (close, error, drain) live on `target.lifecycle`, a
// separate EventTarget, so they never collide with the event types users send.

const { Message, Pump, answeredByPump, nativeSource } = require('./pump.js')
const { irohError, invalidArgument, normalizeError } = require('./errors.js')
const { checkOptions, EVENT_TARGET } = require('./options.js')
const { Listeners, listenable } = require('./listeners.js')
const { refable } = require('./keep-alive.js')
const { bufferFull, frameTooLarge } = require('./staging.js')
const { detailOf, eventText, isEvent, stringifierOf } = require('./wire-event.js')
const { AckedLink } = require('./delivery/link.js')
const { CONTROL_PREFIX, isControl } = require('./delivery/protocol.js')
const { TRACE, STAMPS, TargetTrace } = require('./trace.js')

// Package-internal hooks for the hub and the reconnecting spoke.
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
/**
 * `target[COUNTS]()`: `{ eventsIn, eventsOut, bytesIn, bytesOut, lastHeard }` of this
 * connection, for stats (lib/stats.js). Events are those delivered to the listeners and
 * those dispatched; bytes are frame payloads on the stream both ways (headers not counted,
 * acknowledged delivery's control frames and resends counted); `lastHeard`: Date.now() of
 * the last batch received (0 before the first).
 */
const COUNTS = Symbol('counts')

// Dispatch at most this many events synchronously, then yield a macrotask: a
// `createPubSub` subscriber (a Repeater without buffer) overflows past 1,024 pushes in
// one synchronous burst.
const DISPATCH_CHUNK = 256
const yieldMacrotask = () => new Promise((resolve) => setImmediate(resolve))

/** A hub or spoke end of the framed event stream of one connection. */
class IrohEventTarget {
  // An open target keeps the process alive as its connection does (this is the
  // connection's handle): unref() lets it exit, ref() undoes that. Listeners are
  // added to and removed from #listeners.
  static {
    refable(this, (target) => target.#pump.connection)
    listenable(this, (target) => target.#listeners)
    answeredByPump(this, (target) => target.#pump)
  }
  #pump
  #stringify
  #parse
  #listeners = new Listeners((err) => this.#pump.life.reportError(err))
  #forward = null
  #inbox = Promise.resolve()
  #stopWatchingPaths = null
  /** Acknowledged delivery, when both ends speak it. */
  #link = null
  /** The round-trip breakdown's stamps (lib/trace.js), when the process traces. */
  #trace = TRACE ? new TargetTrace() : null
  #eventsIn = 0
  #eventsOut = 0
  #bytesIn = 0
  #lastHeard = 0

  /**
   * Lifecycle signals: `close` (detail: close info), `error` (detail: the Error), `drain`,
   * and `pathchange` (detail `{ pathType, paths }`: first the paths at creation, then each
   * change, such as the upgrade from a relay to a direct path).
   */
  lifecycle

  /** Over a pump source (lib/pump.js): `nativeSource(connection, accept)`, or a stand-in. */
  constructor(source, options) {
    const checked = checkOptions(EVENT_TARGET, options)
    this.#stringify = stringifierOf(checked)
    this.#parse = checked.serializer ? checked.serializer.parse : null
    const mode = checked.serializer ? 'frames' : 'json'
    this.#pump = new Pump(source, { ...checked, mode }, 'event target', (message) => this.#receive(message))
    this.lifecycle = this.#pump.life.events
    const connection = this.#pump.connection
    // A path change (say relay -> direct after hole punching) becomes a `pathchange`.
    this.#stopWatchingPaths = connection?.watchPaths((state) => {
      // A closed connection has no paths; the `close` event says so.
      if (state.pathType === 'none') return
      this.#pump.life.emit('pathchange', state)
    })
    if (TRACE) this.#pump.outlet.trace = this.#trace
    if (checked[DELIVERY]) {
      this.#link = new AckedLink(checked[DELIVERY], {
        send: (text) => this.#pump.stageText(text),
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
    this.#pump.nudge()
  }

  [COUNTS]() {
    return {
      eventsIn: this.#eventsIn,
      eventsOut: this.#eventsOut,
      bytesIn: this.#bytesIn,
      bytesOut: this.#pump.outlet.bytesOut,
      lastHeard: this.#lastHeard,
    }
  }

  /** Where this target's data goes: `direct`, `relay`, `mixed`, or `none` once closed. */
  pathType() {
    return this.#pump.connection?.pathType() ?? 'none'
  }

  /** The connection's open paths: `{ kind, remoteAddr, rttMs, selected }` each. */
  paths() {
    return this.#pump.connection?.paths() ?? []
  }

  set [FORWARD](fn) {
    this.#forward = fn
  }

  [SEND_TEXT](text, bytes) {
    if (TRACE) this.#trace.dispatch()
    this.#pump.checkOpen()
    if (this.#link !== null) this.#keep(text, bytes)
    else this.#pump.stageText(text)
    this.#eventsOut++
  }

  [TAKE_BROADCAST](text, bytes) {
    this.#pump.checkOpen()
    const outlet = this.#pump.outlet
    if (bytes > outlet.maxFrame) throw frameTooLarge(bytes, outlet.maxFrame)
    // What this target staged goes first; broadcasts staged before this one stay staged.
    this.#pump.commitRun()
    this.#eventsOut++
    if (this.#link === null || this.#link.keepShared(text, bytes)) return outlet
    return null
  }

  [BROADCAST_REFUSED](why, bytes) {
    if (this.#link !== null) {
      // Kept: the link sends it again once the buffer drains.
      if (why === -1) this.#link.unsend()
      return null
    }
    this.#eventsOut--
    if (why === -2) return irohError('ERR_IROH_CONNECTION_CLOSED', 'the event target is closed')
    const outlet = this.#pump.outlet
    return bufferFull(outlet.buffered, bytes, outlet.maxBuffered)
  }

  /** Sends `{ type, detail }` to the peer as one frame. Never waits; returns true. */
  dispatchEvent(event) {
    if (TRACE) this.#trace.dispatch()
    const text = eventText(this.#stringify, event)
    this.#pump.checkOpen()
    if (this.#link === null) {
      this.#pump.stageText(text)
      this.#eventsOut++
      return true
    }
    if (isControl(event.type)) throw invalidArgument('event types that start with U+0000 are reserved for acknowledged delivery')
    this.#keep(text)
    this.#eventsOut++
    return true
  }

  /** Acknowledged delivery: the session keeps the event until the peer acknowledges it. */
  #keep(text, bytes = Buffer.byteLength(text)) {
    const max = this.#pump.outlet.maxFrame
    if (bytes > max) throw frameTooLarge(bytes, max)
    this.#link.dispatch(text, bytes)
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
    await this.#pump.flush()
    if (acked) await this.#link.session.out.acked()
  }

  /** Acknowledged delivery: waits until every kept event is handed to this connection. */
  #caughtUp() {
    return Promise.race([
      this.#link.caughtUp(),
      this.#pump.life.closed.then(() => {
        throw irohError('ERR_IROH_CONNECTION_CLOSED', 'the event target closed before all was sent')
      }),
    ])
  }

  /** Sends what is queued, then closes the connection with `code` and `reason`. */
  async close(code = 0, reason = '') {
    if (this.#link !== null && !this.#pump.isClosed) {
      await this.#caughtUp().catch(() => {})
      // What was delivered is acknowledged before the close, not lost with the ack timer.
      this.#link.settle()
    }
    return this.#pump.close(code, reason)
  }

  #receive(message) {
    if (TRACE && (message.kind === Message.JSON || message.kind === Message.FRAMES)) this.#trace.arrive()
    // Messages are handled one after another: a close never overtakes the events before it.
    this.#inbox = this.#inbox.then(() => this.#handle(message)).catch((err) => this.#pump.life.reportError(normalizeError(err)))
  }

  async #handle(message) {
    switch (message.kind) {
      case Message.JSON: {
        const events = JSON.parse(message.json)
        // The batch is its frames, joined by commas, in brackets.
        this.#bytesIn += Buffer.byteLength(message.json) - 1 - events.length
        this.#lastHeard = Date.now()
        if (TRACE) this.#trace.parsed(events.length)
        await this.#deliver(events, null)
        this.#pump.ack()
        break
      }
      case Message.FRAMES:
        for (const frame of message.frames) this.#bytesIn += typeof frame === 'string' ? Buffer.byteLength(frame) : frame.byteLength
        this.#lastHeard = Date.now()
        if (TRACE) this.#trace.parsed(message.frames.length)
        await this.#deliver(message.frames, this.#parse)
        this.#pump.ack()
        break
      case Message.DRAIN:
        this.#link?.pump()
        this.#pump.drained()
        break
      case Message.CLOSED:
        this.#pump.finish(message.closed, () => {
          this.#link?.stop()
          this.#stopWatchingPaths?.()
        })
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
      this.#eventsIn++
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
}

/** The dialing side: opens the connection's one bidirectional stream. */
async function createSpokeIrohEventTarget(connection, options) {
  return new IrohEventTarget(nativeSource(connection, false), options)
}

/**
 * The accepting side: takes the stream the spoke opens. Resolves at once; events you
 * dispatch before the spoke's first event arrives are queued and then sent.
 */
async function createHubIrohEventTarget(connection, options) {
  return new IrohEventTarget(nativeSource(connection, true), options)
}

module.exports = {
  IrohEventTarget,
  createSpokeIrohEventTarget,
  createHubIrohEventTarget,
  SEND_TEXT,
  FORWARD,
  DELIVERY,
  DEFER_START,
  START,
  LINK,
  NUDGE,
  COUNTS,
  TAKE_BROADCAST,
  BROADCAST_REFUSED,
}
