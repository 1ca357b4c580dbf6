'use strict'

// The TypedEventTarget over the native pump: Rust frames and batches, JS parses and
// dispatches. Lifecycle signals (close, error, drain) live on `target.lifecycle`, a
// separate EventTarget, so they never collide with the event types users send.

const binding = require('./native.js')
const { NATIVE: CONNECTION } = require('./connection.js')
const { irohError, invalidArgument, normalizeError } = require('./errors.js')

// Dispatch at most this many events synchronously, then yield a macrotask: a
// `createPubSub` subscriber (a Repeater without buffer) overflows past 1,024 pushes in
// one synchronous burst.
const DISPATCH_CHUNK = 256
const MSG_JSON = 0
const MSG_FRAMES = 1
const MSG_DRAIN = 2
const MSG_CLOSED = 3

const yieldMacrotask = () => new Promise((resolve) => setImmediate(resolve))

function checkOptions(options) {
  if (options === undefined || options === null) return {}
  if (typeof options !== 'object') throw invalidArgument('options must be an object')
  for (const name of ['maxFrameBytes', 'maxBufferedBytes']) {
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

function isEvent(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && typeof value.type === 'string'
}

/** A hub or spoke end of the framed event stream of one connection. */
class IrohEventTarget {
  #pump
  #connection
  #stringify
  #parse
  #listeners = new Map()
  #inbox = Promise.resolve()
  #closeInfo = null
  #closedPromise
  #resolveClosed
  #keepAlive = null

  /** Lifecycle signals: `close` (detail: close info), `error` (detail: the Error), `drain`. */
  lifecycle = new EventTarget()

  constructor(connection, accept, options) {
    const checked = checkOptions(options)
    if (!connection || !connection[CONNECTION]) {
      throw invalidArgument('expected a Connection from endpoint.connect() or endpoint.accept()')
    }
    this.#connection = connection
    this.#stringify = checked.serializer ? checked.serializer.stringify : JSON.stringify
    this.#parse = checked.serializer ? checked.serializer.parse : null
    this.#closedPromise = new Promise((resolve) => (this.#resolveClosed = resolve))
    this.#pump = binding.createEventPump(
      connection[CONNECTION],
      accept,
      {
        maxFrameBytes: checked.maxFrameBytes,
        maxBufferedBytes: checked.maxBufferedBytes,
        rawFrames: Boolean(checked.serializer),
      },
      (message) => this.#receive(message),
    )
  }

  /** The connection this target runs on. */
  get connection() {
    return this.#connection
  }

  /** Bytes dispatched but not yet handed to QUIC. */
  get bufferedAmount() {
    return this.#pump.bufferedAmount()
  }

  /** Whether the target has closed. */
  get isClosed() {
    return this.#closeInfo !== null
  }

  /**
   * Resolves with `{ code, reason, kind, error? }` once the target (its connection) closes.
   * While someone waits on it, it keeps the process alive; an unobserved target does not.
   */
  get closed() {
    if (this.#keepAlive === null && this.#closeInfo === null) {
      // A pending native promise holds the event loop open until the pump stops.
      this.#keepAlive = this.#pump.whenStopped()
    }
    return this.#closedPromise
  }

  addEventListener(type, listener, options) {
    if (listener === null || listener === undefined) return
    if (typeof listener !== 'function' && typeof listener?.handleEvent !== 'function') {
      throw invalidArgument('listener must be a function or an object with handleEvent')
    }
    const once = typeof options === 'object' && options !== null && Boolean(options.once)
    const signal = typeof options === 'object' && options !== null ? options.signal : undefined
    if (signal?.aborted) return
    const list = this.#listeners.get(type) ?? []
    if (list.some((entry) => entry.listener === listener)) return
    const entry = { listener, once }
    // Copy on write: a dispatch in progress keeps iterating the list it started with.
    this.#listeners.set(type, [...list, entry])
    signal?.addEventListener('abort', () => this.removeEventListener(type, listener), { once: true })
  }

  removeEventListener(type, listener) {
    const list = this.#listeners.get(type)
    if (!list) return
    const next = list.filter((entry) => entry.listener !== listener)
    if (next.length === 0) this.#listeners.delete(type)
    else if (next.length !== list.length) this.#listeners.set(type, next)
  }

  /** Sends `{ type, detail }` to the peer as one frame. Never waits; returns true. */
  dispatchEvent(event) {
    if (!event || typeof event.type !== 'string') {
      throw invalidArgument('dispatchEvent expects an Event, e.g. new CustomEvent(type, { detail })')
    }
    const detail = event.detail === undefined ? null : event.detail
    const text = this.#stringify({ type: event.type, detail })
    if (typeof text !== 'string') throw invalidArgument('serializer.stringify must return a string')
    this.#pump.send(text)
    return true
  }

  /** Resolves once everything dispatched so far has been handed to QUIC. */
  async flush() {
    try {
      await this.#pump.flush()
    } catch (err) {
      throw normalizeError(err)
    }
  }

  /** Sends what is queued, then closes the connection with `code` and `reason`. */
  async close(code = 0, reason = '') {
    if (this.#closeInfo === null) await this.#pump.close(code, reason)
    return this.#closedPromise
  }

  #receive(message) {
    // Messages are handled one after another: a close never overtakes the events before it.
    this.#inbox = this.#inbox.then(() => this.#handle(message)).catch((err) => this.#reportError(normalizeError(err)))
  }

  async #handle(message) {
    switch (message.kind) {
      case MSG_JSON:
        await this.#deliver(JSON.parse(message.json), null)
        this.#pump.ack()
        break
      case MSG_FRAMES:
        await this.#deliver(message.frames, this.#parse)
        this.#pump.ack()
        break
      case MSG_DRAIN:
        // The writer saw an empty buffer, but this thread may have queued more since:
        // a drain that is no longer true waits for the next empty buffer.
        if (this.#pump.bufferedAmount() === 0) this.lifecycle.dispatchEvent(new Event('drain'))
        else this.#pump.wantDrain()
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
      this.#emit(event.type, event.detail === undefined ? null : event.detail)
    }
  }

  #parseFrame(frame, parse) {
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
    const list = this.#listeners.get(type)
    if (list === undefined) return
    const event = new CustomEvent(type, { detail })
    for (const entry of list) {
      if (entry.once) this.removeEventListener(type, entry.listener)
      try {
        if (typeof entry.listener === 'function') entry.listener.call(this, event)
        else entry.listener.handleEvent(event)
      } catch (err) {
        this.#reportError(err)
      }
    }
  }

  #reportError(error) {
    this.lifecycle.dispatchEvent(new CustomEvent('error', { detail: error }))
  }

  #finish(closed) {
    const info = { code: closed.code, reason: closed.reason, kind: closed.kind }
    if (closed.errorCode) info.error = irohError(closed.errorCode, closed.errorMessage ?? closed.reason)
    this.#closeInfo = info
    if (info.error) this.#reportError(info.error)
    this.lifecycle.dispatchEvent(new CustomEvent('close', { detail: info }))
    this.#resolveClosed(info)
  }
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

module.exports = { IrohEventTarget, createSpokeIrohEventTarget, createHubIrohEventTarget }
