'use strict'

// What the event targets, the reconnecting spoke and the message channel share about their
// life: the `lifecycle` EventTarget users listen on (apart from the event types they send),
// the `closed` promise, how an error is reported, and the one way to finish (once).

class Lifecycle {
  /** The EventTarget users see as `.lifecycle`. */
  events = new EventTarget()
  /** The close info once finished, else null. */
  info = null
  /** Resolves with the close info. */
  closed
  #resolve

  constructor() {
    this.closed = new Promise((resolve) => (this.#resolve = resolve))
  }

  get isClosed() {
    return this.info !== null
  }

  /** Dispatches a CustomEvent of `type` with `detail` on `events`. */
  emit(type, detail) {
    this.events.dispatchEvent(new CustomEvent(type, { detail }))
  }

  /** An `error` event, detail the Error. */
  reportError(error) {
    this.emit('error', error)
  }

  /**
   * Records `info`, runs `cleanup`, reports `info.error` if any, then `close` and `closed`.
   * Only the first call counts; it returns whether this one did.
   */
  finish(info, cleanup) {
    if (this.info !== null) return false
    this.info = info
    cleanup?.()
    if (info.error) this.reportError(info.error)
    this.emit('close', info)
    this.#resolve(info)
    return true
  }
}

module.exports = { Lifecycle }
