'use strict'

// A message channel: length-framed binary messages over a connection's one bidirectional
// stream, the event targets' wire framing without the JSON. It runs on the same native
// pump in binary mode: Rust cuts frames and hands JS whole batches as Buffers over the
// bytes it received them into; JS slices each message out and acknowledges a batch once
// every message of it was taken by `receive()`, so a consumer that stops taking pushes
// back through QUIC flow control.

const { Message, Pump, answeredByPump, nativeSource } = require('./pump.js')
const { checkOptions, MESSAGE_CHANNEL } = require('./options.js')
const { irohError, normalizeError, requireBytes } = require('./errors.js')
const { refable } = require('./keep-alive.js')
const { HEADER_BYTES } = require('./staging.js')

// Small messages are copied (their one copy) into the shared staging buffer in wire format
// and handed to the native pump once per tick, as the buffer itself (lib/pump.js). Larger
// messages skip staging: the native send copies them once into its outbox.
const STAGE_MAX = 16 * 1024

/** One end of a connection's stream of length-framed binary messages. */
class MessageChannel {
  // unref() lets the process exit while the channel is open (it unrefs its connection).
  static {
    refable(this, (channel) => channel.#pump.connection)
    answeredByPump(this, (channel) => channel.#pump)
  }
  #pump
  // Messages received and not yet taken, from #head on.
  #queue = []
  #head = 0
  // How many messages of each unacknowledged batch are still in #queue, oldest first.
  #batchLeft = []
  #waiters = []

  /** `close` (detail `{ code, reason, kind, error? }`), `error` (detail: the Error), `drain`. */
  lifecycle

  /** Over a pump source (lib/pump.js): `nativeSource(connection, accept)`, or a stand-in. */
  constructor(source, options) {
    const checked = checkOptions(MESSAGE_CHANNEL, options)
    this.#pump = new Pump(source, { ...checked, mode: 'binary' }, 'message channel', (message) => this.#onMessage(message))
    this.lifecycle = this.#pump.life.events
  }

  /**
   * Queues one message; never waits. Throws `ERR_IROH_FRAME_TOO_LARGE` past
   * `maxFrameBytes` and `ERR_IROH_BUFFER_FULL` past `maxBufferedBytes` (then wait for
   * `flush()` or `drain`). The bytes are copied once: change them afterwards at will.
   */
  send(message) {
    requireBytes(message, 'message')
    this.#pump.checkOpen()
    const len = message.byteLength
    const max = this.#pump.outlet.maxFrame
    if (len > max) throw irohError('ERR_IROH_FRAME_TOO_LARGE', `the message is ${len} bytes, more than maxFrameBytes (${max})`)
    if (len > STAGE_MAX) this.#pump.send(message)
    else this.#pump.stageBytes(message)
  }

  /** Resolves once everything sent so far has been handed to QUIC. */
  flush() {
    return this.#pump.flush()
  }

  /**
   * The next message, `null` once the channel has closed and every message received was
   * taken. Rejects with the error when the channel closed because of one (say
   * `ERR_IROH_FRAME_TOO_LARGE`), after the messages that arrived before it.
   */
  receive() {
    if (this.#head < this.#queue.length) return Promise.resolve(this.#take())
    if (this.#pump.isClosed) return this.#end()
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
  close(code = 0, reason = '') {
    return this.#pump.close(code, reason)
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
      this.#pump.ack()
    }
    return message
  }

  #end() {
    const error = this.#pump.life.info.error
    return error ? Promise.reject(error) : Promise.resolve(null)
  }

  #onMessage(message) {
    try {
      switch (message.kind) {
        case Message.BINARY:
          this.#receiveBatch(message.data)
          break
        case Message.DRAIN:
          this.#pump.drained()
          break
        case Message.CLOSED:
          this.#finish(message.closed)
          break
      }
    } catch (err) {
      this.#pump.life.reportError(normalizeError(err))
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
    if (!this.#pump.finish(closed)) return
    // Waiters exist only while nothing is queued: they get the end.
    for (const waiter of this.#waiters.splice(0)) this.#end().then(waiter.resolve, waiter.reject)
  }
}

/**
 * A message channel on `connection`'s one bidirectional stream: `role: 'open'` on the
 * dialing side (it opens the stream and announces it at once), `'accept'` on the other.
 */
function createMessageChannel(connection, options) {
  const checked = checkOptions(MESSAGE_CHANNEL, options)
  return new MessageChannel(nativeSource(connection, checked.role === 'accept'), checked)
}

module.exports = { MessageChannel, createMessageChannel }
