// An in-memory pump pair: the raw pump interface of lib/pump.d.ts, with no network and no
// native code. Event targets and message channels run over it unchanged, which is the proof
// that lib/pump.js is the one seam; and delivery rules are quick to test over it, with
// `cut()` standing in for a connection that died with frames in flight.

const HEADER_BYTES = 4
const BATCHES_WITH_JS = 2

function closedError() {
  const err = new Error('the connection is closed')
  err.code = 'ERR_IROH_CONNECTION_CLOSED'
  return err
}

/** One end's raw pump. */
class MemoryRawPump {
  peer = null
  #options
  #deliver
  /** Payloads sent and not yet moved to the peer. */
  #outbox = []
  #buffered = 0
  /** Payloads received and not yet handed to JS. */
  #inbox = []
  #withJs = 0
  #wantDrain = false
  #flushed = []
  #scheduled = false
  closed = false

  constructor(options, deliver, limits) {
    this.#options = options
    this.#deliver = deliver
    this.limitsInForce = {
      maxFrameBytes: options.maxFrameBytes ?? limits.maxFrameBytes,
      maxBufferedBytes: options.maxBufferedBytes ?? limits.maxBufferedBytes,
      broadcastId: 0,
    }
  }

  limits() {
    return this.limitsInForce
  }

  send(payload) {
    this.#push(Buffer.from(payload))
    return this.#buffered
  }

  sendFrames(run) {
    for (let at = 0; at < run.length; ) {
      const len = run.readUInt32BE(at)
      this.#push(Buffer.from(run.subarray(at + HEADER_BYTES, at + HEADER_BYTES + len)))
      at += HEADER_BYTES + len
    }
    return this.#buffered
  }

  sendStaged(run) {
    return this.sendFrames(Buffer.from(run.buffer, run.byteOffset, run.byteLength))
  }

  bufferedAmount() {
    return this.#buffered
  }

  wantDrain() {
    this.#wantDrain = true
    this.#schedule()
  }

  nudge() {}

  ack() {
    if (this.#withJs > 0) this.#withJs--
    this.#schedule()
  }

  flush() {
    if (this.closed) return Promise.reject(closedError())
    if (this.#outbox.length === 0) return Promise.resolve()
    return new Promise((resolve, reject) => this.#flushed.push({ resolve, reject }))
  }

  malformedFrame(reason) {
    this.end({ code: 4002, reason, kind: 'local', errorCode: 'ERR_IROH_PROTOCOL', errorMessage: reason }, { code: 4002, reason, kind: 'remote' })
  }

  async close(code = 0, reason = '') {
    if (this.closed) return
    await this.flush().catch(() => {})
    this.end({ code, reason, kind: 'local' }, { code, reason, kind: 'remote' })
  }

  /** Closes both ends: what is in flight is lost, what arrived is handed over first. */
  end(mine, theirs) {
    if (this.closed) return
    this.#finish(mine)
    this.peer?.#finish(theirs)
  }

  #finish(info) {
    if (this.closed) return
    this.closed = true
    this.#outbox = []
    this.#buffered = 0
    for (const f of this.#flushed.splice(0)) f.reject(closedError())
    // What arrived reaches JS before the close, as the native reader hands it over.
    if (this.#inbox.length > 0) this.#handOver(this.#inbox.splice(0))
    this.#deliver({ kind: 'closed', closed: info })
  }

  #push(payload) {
    if (this.closed) throw closedError()
    this.#outbox.push(payload)
    this.#buffered += HEADER_BYTES + payload.length
    this.#schedule()
  }

  /** Takes a payload from the peer. */
  receive(payload) {
    this.#inbox.push(payload)
    this.#schedule()
  }

  #schedule() {
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      this.#move()
    })
  }

  #move() {
    if (this.closed) return
    if (this.peer !== null && this.#outbox.length > 0) {
      for (const payload of this.#outbox.splice(0)) this.peer.receive(payload)
      this.#buffered = 0
      for (const f of this.#flushed.splice(0)) f.resolve()
    }
    if (this.#wantDrain && this.#buffered === 0) {
      this.#wantDrain = false
      this.#deliver({ kind: 'drain' })
    }
    if (this.#inbox.length > 0 && this.#withJs < BATCHES_WITH_JS) {
      this.#withJs++
      this.#handOver(this.#inbox.splice(0))
    }
  }

  #handOver(payloads) {
    if (this.#options.binary) {
      const parts = []
      for (const p of payloads) {
        const header = Buffer.alloc(HEADER_BYTES)
        header.writeUInt32BE(p.length)
        parts.push(header, p)
      }
      this.#deliver({ kind: 'binary', data: Buffer.concat(parts) })
    } else if (this.#options.rawFrames) this.#deliver({ kind: 'frames', frames: payloads.map((p) => p.toString()) })
    else this.#deliver({ kind: 'json', json: `[${payloads.map((p) => p.toString()).join(',')}]` })
  }
}

/**
 * Two pump sources joined to each other, like the two ends of one connection's stream, and
 * `cut()`, which ends both at once as a dead connection would (kind `timeout`): frames in
 * flight are lost.
 */
export function memoryPair({ maxFrameBytes = 16 * 1024 * 1024, maxBufferedBytes = 8 * 1024 * 1024 } = {}) {
  const ends = [null, null]
  const source = (i) => ({
    connection: null,
    open(options, deliver) {
      const raw = new MemoryRawPump(options, deliver, { maxFrameBytes, maxBufferedBytes })
      ends[i] = raw
      const other = ends[1 - i]
      if (other !== null) {
        raw.peer = other
        other.peer = raw
        // Wake the end that was there first: what it sent before now flows.
        other.ack()
      }
      return raw
    },
  })
  const cut = () => {
    const info = { code: 0, reason: 'cut', kind: 'timeout', errorCode: 'ERR_IROH_CONNECTION_CLOSED', errorMessage: 'the connection timed out' }
    ends[0]?.end(info, info)
  }
  return { a: source(0), b: source(1), cut }
}
