'use strict'

// What acknowledged delivery keeps for one peer across its connections: the events this
// side sent and the peer has not acknowledged (numbered per sending session, a random id
// that outlives connections), and how far this side has delivered the peer's.

const { randomBytes } = require('node:crypto')
const { irohError } = require('../errors.js')

/** What one side sends: numbered events kept until the peer acknowledges them. */
class Outgoing {
  /** Identifies this numbering to the peer; a new one means "start afresh". */
  id = randomBytes(8).toString('hex')
  /** The number of the first retained event; events are numbered from 1. */
  #first = 1
  #texts = []
  /** The UTF-8 size of each of `#texts`. */
  #sizes = []
  #head = 0
  #bytes = 0
  #waiters = []
  /** The number of the last event handed to a connection, and the bytes kept up to it. */
  #handed = 0
  #handedBytes = 0

  constructor(maxBytes) {
    this.maxBytes = maxBytes
  }

  /** Bytes kept (sent or waiting) until acknowledged. */
  get bytes() {
    return this.#bytes
  }

  /** How many events are kept. */
  get size() {
    return this.#texts.length - this.#head
  }

  /** The number of the first event kept, which the next connection starts with. */
  get from() {
    return this.#first
  }

  /** The number the next event gets, less one: everything dispatched so far. */
  get last() {
    return this.#first + this.size - 1
  }

  /** Bytes of kept events that no connection was handed yet (they wait for one). */
  get heldBytes() {
    return this.#bytes - this.#handedBytes
  }

  /** Whether some kept event was never handed to a connection. */
  get holds() {
    return this.#handed < this.last
  }

  /** Kept events up to number `seq` went to a connection (they stay kept until acknowledged). */
  handed(seq) {
    while (this.#handed < seq && this.#handed < this.last) {
      this.#handed++
      this.#handedBytes += this.sizeAt(this.#handed)
    }
  }

  /** Keeps `text` (of `bytes` UTF-8 bytes) for resending; throws ERR_IROH_BUFFER_FULL past the bound. */
  push(text, bytes) {
    if (this.#bytes > 0 && this.#bytes + bytes > this.maxBytes) {
      throw irohError(
        'ERR_IROH_BUFFER_FULL',
        `${this.#bytes} bytes of events wait for a connection or the peer's acknowledgement and ${bytes} more would pass maxPendingBytes (${this.maxBytes})`,
      )
    }
    this.#texts.push(text)
    this.#sizes.push(bytes)
    this.#bytes += bytes
  }

  /** The text of kept event number `seq`. */
  textAt(seq) {
    return this.#texts[this.#head + (seq - this.#first)]
  }

  /** The UTF-8 size of kept event number `seq`. */
  sizeAt(seq) {
    return this.#sizes[this.#head + (seq - this.#first)]
  }

  /** The peer has delivered every event up to number `seq`. */
  ack(seq) {
    while (this.#first <= seq && this.#head < this.#texts.length) {
      const size = this.#sizes[this.#head]
      this.#bytes -= size
      if (this.#first <= this.#handed) this.#handedBytes -= size
      this.#texts[this.#head++] = undefined
      this.#first++
    }
    // Acknowledged without being handed over here (a plain connection took them): handed too.
    if (this.#handed < this.#first - 1) this.#handed = this.#first - 1
    // Compact now and then rather than shift on every ack.
    if (this.#head > 1024 && this.#head * 2 > this.#texts.length) {
      this.#texts = this.#texts.slice(this.#head)
      this.#sizes = this.#sizes.slice(this.#head)
      this.#head = 0
    }
    const acked = this.#first - 1
    this.#waiters = this.#waiters.filter((w) => {
      if (w.seq > acked) return true
      w.resolve()
      return false
    })
  }

  /** Resolves once everything dispatched so far is acknowledged. */
  acked() {
    if (this.size === 0) return Promise.resolve()
    return new Promise((resolve, reject) => this.#waiters.push({ seq: this.last, resolve, reject }))
  }

  /** Rejects the `acked()` waiters: nothing more will be acknowledged. */
  abandon(error) {
    for (const w of this.#waiters.splice(0)) w.reject(error)
  }
}

/** What one side has delivered of the peer's numbered events. */
class Incoming {
  /** The peer's session id, once known. */
  peer = null
  /** The number of the last event delivered to listeners. */
  delivered = 0

  /** A peer's hello: a new session id starts the count afresh at `from`. */
  resume(peer, from) {
    if (peer !== this.peer) {
      this.peer = peer
      this.delivered = from - 1
    }
  }
}

/** Both directions of acknowledged delivery with one peer, kept across its connections. */
class Session {
  constructor({ maxPendingBytes }) {
    this.out = new Outgoing(maxPendingBytes)
    this.in = new Incoming()
  }
}

module.exports = { Outgoing, Incoming, Session }
