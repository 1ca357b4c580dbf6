'use strict'

// A message channel: length-framed binary messages over a connection's one bidirectional
// stream, the event targets' wire framing without the JSON. It runs on the same native
// pump in binary mode: Rust cuts frames and hands JS whole batches as Buffers over the
// bytes it received them into; JS slices each message out and acknowledges a batch once
// every message of it was taken by `receive()`, so a consumer that stops taking pushes
// back through QUIC flow control.

const binding = require('./native.js')
const { openWith } = require('./mailbox.js')
const { NATIVE: CONNECTION } = require('./connection.js')
const { checkOptions, closeInfoOf, signalDrain } = require('./event-target.js')
const { irohError, invalidArgument, normalizeError, requireBytes } = require('./errors.js')
const { native, nativeSync } = require('./pending.js')
const { Lifecycle } = require('./lifecycle.js')
const { refable } = require('./keep-alive.js')
const { Outlet, Staging } = require('./staging.js')

// The pump's message kinds (PumpMessage in binding.d.ts, generated from src/pump/message.rs).
const MSG_DRAIN = 'drain'
const MSG_CLOSED = 'closed'
const MSG_BINARY = 'binary'
const HEADER_BYTES = 4

// Small messages are copied (their one copy) into a shared staging buffer in wire format,
// and the staged run is handed to the native pump once per tick, as the buffer itself:
// Rust writes it to QUIC without copying it again. JS never writes into a run it handed
// over; a full staging buffer is left to Rust and the GC, and a new one started.
const staging = new Staging({ handOver: true })
// Larger messages skip staging: the native send copies them once into its outbox.
const STAGE_MAX = 16 * 1024

const ROLES = new Set(['open', 'accept'])

function checkChannelOptions(options) {
  if (options === null || typeof options !== 'object') {
    throw invalidArgument("createMessageChannel expects options with role 'open' or 'accept'")
  }
  if (!ROLES.has(options.role)) throw invalidArgument("options.role must be 'open' (the dialing side) or 'accept'")
  if (options.serializer !== undefined) throw invalidArgument('a message channel carries bytes: it takes no serializer')
  return checkOptions(options)
}

/** One end of a connection's stream of length-framed binary messages. */
class MessageChannel {
  // unref() lets the process exit while the channel is open (it unrefs its connection).
  static {
    refable(this, (channel) => channel.#connection)
  }
  #life = new Lifecycle()
  #pump
  #connection
  /** The pump as staging sees it: its limits and what it buffers. */
  #outlet
  #closing = false
  // Messages received and not yet taken, from #head on.
  #queue = []
  #head = 0
  // How many messages of each unacknowledged batch are still in #queue, oldest first.
  #batchLeft = []
  #waiters = []

  /** `close` (detail `{ code, reason, kind, error? }`), `error` (detail: the Error), `drain`. */
  lifecycle = this.#life.events

  constructor(connection, options) {
    const checked = checkChannelOptions(options)
    if (!connection || !connection[CONNECTION]) {
      throw invalidArgument('expected a Connection from endpoint.connect() or endpoint.accept()')
    }
    this.#connection = connection
    // A pump's last message is `closed`.
    this.#pump = openWith((message) => this.#onMessage(message), (message) => message.kind === MSG_CLOSED, (to) =>
      nativeSync(() =>
        binding.createEventPump(
          connection[CONNECTION],
          checked.role === 'accept',
          {
            maxFrameBytes: checked.maxFrameBytes,
            maxBufferedBytes: checked.maxBufferedBytes,
            frameTimeoutMs: checked.frameTimeoutMs,
            binary: true,
          },
          to,
        ),
      ),
    )
    this.#outlet = new Outlet(this.#pump, nativeSync(() => this.#pump.limits()), (err) => this.#life.reportError(err))
  }

  /** The connection this channel runs on. */
  get connection() {
    return this.#connection
  }

  /** Whether the channel (its connection) has closed. */
  get isClosed() {
    return this.#life.isClosed
  }

  /** Resolves with `{ code, reason, kind, error? }` once the channel closes. */
  get closed() {
    return this.#life.closed
  }

  /** Bytes sent but not yet handed to QUIC. */
  get bufferedAmount() {
    staging.commit()
    return nativeSync(() => this.#pump.bufferedAmount())
  }

  /**
   * Queues one message; never waits. Throws `ERR_IROH_FRAME_TOO_LARGE` past
   * `maxFrameBytes` and `ERR_IROH_BUFFER_FULL` past `maxBufferedBytes` (then wait for
   * `flush()` or `drain`). The bytes are copied once: change them afterwards at will.
   */
  send(message) {
    requireBytes(message, 'message')
    if (this.#life.isClosed || this.#closing) throw irohError('ERR_IROH_CONNECTION_CLOSED', 'the message channel is closed')
    const len = message.byteLength
    if (len > this.#outlet.maxFrame) {
      throw irohError('ERR_IROH_FRAME_TOO_LARGE', `the message is ${len} bytes, more than maxFrameBytes (${this.#outlet.maxFrame})`)
    }
    if (len > STAGE_MAX) {
      staging.commit()
      this.#outlet.send(message)
    } else staging.stageBytes(this.#outlet, message)
  }

  /** Resolves once everything sent so far has been handed to QUIC. */
  async flush() {
    staging.commit()
    await native(() => this.#pump.flush())
  }

  /**
   * The next message, `null` once the channel has closed and every message received was
   * taken. Rejects with the error when the channel closed because of one (say
   * `ERR_IROH_FRAME_TOO_LARGE`), after the messages that arrived before it.
   */
  receive() {
    if (this.#head < this.#queue.length) return Promise.resolve(this.#take())
    if (this.#life.isClosed) return this.#end()
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }))
  }

  /** `for await (const message of channel)`: ends when the channel closes. */
  [Symbol.asyncIterator]() {
    const next = () => this.receive().then((value) => (value === null ? { value: undefined, done: true } : { value, done: false }))
    // Leaving the loop early leaves the channel open: close it yourself if you are done.
    const done = async () => ({ value: undefined, done: true })
    return { next, return: done, [Symbol.asyncIterator]() { return this } }
  }

  /** Sends what is queued, waits until the peer has it, then closes the connection. */
  async close(code = 0, reason = '') {
    staging.commit()
    this.#closing = true
    if (!this.#life.isClosed) await native(() => this.#pump.close(code, reason))
    return this.#life.closed
  }

  #take() {
    const message = this.#queue[this.#head]
    this.#queue[this.#head++] = undefined
    if (this.#head === this.#queue.length) {
      this.#queue = []
      this.#head = 0
    }
    if (--this.#batchLeft[0] === 0) {
      this.#batchLeft.shift()
      // The pump may hand over the next batch: the consumer keeps up.
      if (!this.#life.isClosed) nativeSync(() => this.#pump.ack())
    }
    return message
  }

  #end() {
    const error = this.#life.info.error
    return error ? Promise.reject(error) : Promise.resolve(null)
  }

  #onMessage(message) {
    try {
      switch (message.kind) {
        case MSG_BINARY:
          this.#receiveBatch(message.data)
          break
        case MSG_DRAIN:
          signalDrain(this.#pump, this.lifecycle)
          break
        case MSG_CLOSED:
          this.#finish(message.closed)
          break
      }
    } catch (err) {
      this.#life.reportError(normalizeError(err))
    }
  }

  /** Slices the frames of one batch (wire format, headers included) into messages. */
  #receiveBatch(data) {
    let count = 0
    for (let at = 0; at < data.length; count++) {
      const len = data.readUInt32BE(at)
      this.#queue.push(data.subarray(at + HEADER_BYTES, at + HEADER_BYTES + len))
      at += HEADER_BYTES + len
    }
    this.#batchLeft.push(count)
    while (this.#waiters.length > 0 && this.#head < this.#queue.length) this.#waiters.shift().resolve(this.#take())
  }

  #finish(closed) {
    if (!this.#life.finish(closeInfoOf(closed))) return
    // Waiters exist only while nothing is queued: they get the end.
    for (const waiter of this.#waiters.splice(0)) this.#end().then(waiter.resolve, waiter.reject)
  }
}

/**
 * A message channel on `connection`'s one bidirectional stream: `role: 'open'` on the
 * dialing side (it opens the stream and announces it at once), `'accept'` on the other.
 */
function createMessageChannel(connection, options) {
  return new MessageChannel(connection, options)
}

module.exports = { MessageChannel, createMessageChannel }
