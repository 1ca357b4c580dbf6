'use strict'

// Acknowledged delivery on one connection: the receiver acknowledges what it has delivered
// to its listeners, and the sender keeps what is unacknowledged (lib/delivery/session.js)
// and sends it again first on the next connection, where the receiver drops what it has
// already delivered.

const { isControl, controlText, HELLO, ACK, PING } = require('./protocol.js')

/** Acknowledge after this many delivered events, or ACK_DELAY_MS after the first unacknowledged one. */
const ACK_EVERY = 1024
const ACK_DELAY_MS = 20

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
      out.handed(this.#cursor)
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
      out.handed(this.#cursor)
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

module.exports = { AckedLink, ACK_EVERY, ACK_DELAY_MS }
