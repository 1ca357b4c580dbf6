'use strict'

// Acknowledged delivery, the negotiated extension of the wire protocol (README, "Wire
// protocol"). Both ends must offer it: the dialer offers `ackAlpn(alpn)` next to `alpn`, and
// a hub lists it first, so a peer that knows only the plain protocol never sees it.
//
// In it, events are numbered per sending session (a random id that outlives connections),
// the receiver acknowledges what it has delivered to its listeners, and the sender keeps
// what is unacknowledged and sends it again first on the next connection, where the
// receiver drops what it has already delivered. Control frames are ordinary frames whose
// type starts with U+0000, which no event of this extension may use.

const { randomBytes } = require('node:crypto')
const { irohError } = require('./errors.js')

const SUFFIX = '/alkdev-acks/1'
/** The ALPN that offers acknowledged delivery on top of `alpn`. */
const ackAlpn = (alpn) => `${alpn}${SUFFIX}`
const isAckAlpn = (alpn, base) => alpn === ackAlpn(base)

const CONTROL = '\u0000'
const HELLO = `${CONTROL}hello`
const ACK = `${CONTROL}ack`
const PING = `${CONTROL}ping`
const isControl = (type) => type.charCodeAt(0) === 0

/** Acknowledge after this many delivered events, or ACK_DELAY_MS after the first unacknowledged one. */
const ACK_EVERY = 1024
const ACK_DELAY_MS = 20

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

  /** Keeps `text` (of `bytes` UTF-8 bytes) for resending; throws ERR_IROH_BUFFER_FULL past the bound. */
  push(text, bytes) {
    if (this.#bytes > 0 && this.#bytes + bytes > this.maxBytes) {
      throw irohError(
        'ERR_IROH_BUFFER_FULL',
        `${this.#bytes} bytes of events wait for the peer's acknowledgement and ${bytes} more would pass maxPendingBytes (${this.maxBytes}): wait for flush({ acked: true })`,
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
      this.#bytes -= this.#sizes[this.#head]
      this.#texts[this.#head++] = undefined
      this.#first++
    }
    // Compact now and then rather than shift on every ack.
    if (this.#head > 1024 && this.#head * 2 > this.#texts.length) {
      this.#texts = this.#texts.slice(this.#head)
      this.#sizes = this.#sizes.slice(this.#head)
      this.#head = 0
    }
    const acked = this.#first - 1
    this.#waiters = this.#waiters.filter((w) => (w.seq <= acked ? (w.resolve(), false) : true))
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

const controlText = (type, detail) => JSON.stringify({ type, detail })
const isCount = (n) => Number.isSafeInteger(n) && n >= 0

/**
 * Acknowledged delivery on one connection: numbers what the target sends, resends what the
 * session kept, drops what was delivered before, and acknowledges what it delivers. The
 * target gives it `send(text)` (stages one frame; throws ERR_IROH_BUFFER_FULL when the send
 * buffer is full, and the target calls `pump()` again on drain) and `malformed(reason)`.
 */
class AckedLink {
  #session
  #send
  #malformed
  #started = false
  /** The number of the next kept event to hand to this connection. */
  #cursor = 1
  #helloReceived = false
  /** The number of the last event received on this connection. */
  #inSeq = 0
  /** Events after the peer's hello that belong to this connection alone (its greeting). */
  #greetingLeft = 0
  #ackedUpTo = 0
  #ackOwed = false
  #ackTimer = null
  #caughtUp = []
  /** When a frame last came from the peer (ms since the epoch). */
  lastHeard = Date.now()

  constructor(session, { send, malformed }) {
    this.#session = session
    this.#send = send
    this.#malformed = malformed
  }

  get session() {
    return this.#session
  }

  /**
   * Sends the hello, then `greeting` (texts that belong to this connection alone and are
   * not kept), then what the session kept, then whatever is dispatched from now on.
   */
  start(greeting = []) {
    const { out, in: incoming } = this.#session
    this.#started = true
    this.#send(
      controlText(HELLO, {
        session: out.id,
        from: out.from,
        greeting: greeting.length,
        ack: { session: incoming.peer, seq: incoming.delivered },
      }),
    )
    this.#ackedUpTo = incoming.delivered
    for (const text of greeting) this.#send(text)
    this.#cursor = out.from
    this.pump()
  }

  /** Keeps and sends one event. */
  dispatch(text, bytes) {
    this.#session.out.push(text, bytes)
    if (this.#started) this.pump()
  }

  /**
   * For a broadcast: keeps the event, and says whether the caller is to send its frame now
   * (this link had sent everything before it); if not, the link sends it in turn.
   */
  keepShared(text, bytes) {
    const out = this.#session.out
    out.push(text, bytes)
    if (this.#started && !this.#ackOwed && this.#cursor === out.last) {
      this.#cursor++
      return true
    }
    this.pump()
    return false
  }

  /** The frame `keepShared` handed out was refused (buffer full): the link sends it again. */
  unsend() {
    this.#cursor--
  }

  /** Hands kept events to the connection as far as its send buffer allows. */
  pump() {
    if (!this.#started) return
    if (this.#ackOwed) this.#sendAck()
    const out = this.#session.out
    if (this.#cursor < out.from) this.#cursor = out.from
    while (this.#cursor <= out.last) {
      try {
        this.#send(out.textAt(this.#cursor))
      } catch (err) {
        if (err.code === 'ERR_IROH_BUFFER_FULL') return
        throw err
      }
      this.#cursor++
    }
    for (const resolve of this.#caughtUp.splice(0)) resolve()
  }

  /** Resolves once everything kept has been handed to this connection. */
  caughtUp() {
    if (this.#started && this.#cursor > this.#session.out.last) return Promise.resolve()
    return new Promise((resolve) => this.#caughtUp.push(resolve))
  }

  /** Whether to deliver `event` to the listeners; handles control frames. */
  receive(event) {
    if (isControl(event.type)) {
      this.#control(event)
      return false
    }
    if (!this.#helloReceived) {
      this.#malformed('malformed frame: an event came before the hello of acknowledged delivery')
      return false
    }
    if (this.#greetingLeft > 0) {
      this.#greetingLeft--
      return true
    }
    const seq = ++this.#inSeq
    const incoming = this.#session.in
    // Delivered on an earlier connection already.
    if (seq <= incoming.delivered) return false
    incoming.delivered = seq
    return true
  }

  /** After a batch: acknowledge at once past ACK_EVERY events, else soon. */
  delivered() {
    this.lastHeard = Date.now()
    const unacked = this.#session.in.delivered - this.#ackedUpTo
    if (unacked >= ACK_EVERY) this.#sendAck()
    else if (unacked > 0 && this.#ackTimer === null) {
      this.#ackTimer = setTimeout(() => {
        this.#ackTimer = null
        this.#sendAck()
      }, ACK_DELAY_MS)
      this.#ackTimer.unref()
    }
  }

  /** Acknowledges at once what was delivered: the connection is about to close. */
  settle() {
    if (this.#started && this.#session.in.delivered > this.#ackedUpTo) this.#sendAck()
  }

  /** The connection is gone: stop timers; what was kept stays in the session. */
  stop() {
    clearTimeout(this.#ackTimer)
    this.#ackTimer = null
    this.#started = false
  }

  #control({ type, detail }) {
    if (type === HELLO) {
      const ok =
        detail !== null &&
        typeof detail === 'object' &&
        typeof detail.session === 'string' &&
        isCount(detail.from) &&
        detail.from >= 1 &&
        isCount(detail.greeting)
      if (!ok) return this.#malformed('malformed frame: a bad hello of acknowledged delivery')
      this.#session.in.resume(detail.session, detail.from)
      this.#inSeq = detail.from - 1
      this.#greetingLeft = detail.greeting
      this.#helloReceived = true
      const ack = detail.ack
      if (ack && ack.session === this.#session.out.id && isCount(ack.seq)) this.#session.out.ack(ack.seq)
      this.pump()
    } else if (type === ACK) {
      if (isCount(detail)) this.#session.out.ack(detail)
    } else if (type === PING) {
      this.#sendAck()
    }
    // Other control types are ignored: room for later versions of the extension.
  }

  #sendAck() {
    if (!this.#started) {
      this.#ackOwed = true
      return
    }
    clearTimeout(this.#ackTimer)
    this.#ackTimer = null
    const seq = this.#session.in.delivered
    if (this.#sendControl(ACK, seq)) {
      this.#ackedUpTo = seq
      this.#ackOwed = false
    } else this.#ackOwed = true
  }

  /** Sends a control frame; false when the send buffer is full (the next pump retries acks). */
  #sendControl(type, detail) {
    try {
      this.#send(controlText(type, detail))
      return true
    } catch (err) {
      if (err.code === 'ERR_IROH_BUFFER_FULL') return false
      throw err
    }
  }
}

module.exports = {
  ackAlpn,
  isAckAlpn,
  isControl,
  controlText,
  Session,
  AckedLink,
  Outgoing,
  Incoming,
  HELLO,
  ACK,
  PING,
  ACK_EVERY,
  ACK_DELAY_MS,
}
