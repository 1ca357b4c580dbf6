'use strict'

// Node's convention for sockets: what is open or connecting keeps the process alive until
// it closes, and `unref()` opts out. Native callbacks are weak (they never hold the event
// loop), so each open thing holds one of these handles instead and lets go when it closes.

const FAR_AWAY = 2 ** 30

class KeepAlive {
  #timer = null
  #refed = true

  /** Starts holding the process open (unless unref'd). */
  hold() {
    if (this.#timer !== null) return this
    this.#timer = setInterval(noop, FAR_AWAY)
    if (!this.#refed) this.#timer.unref()
    return this
  }

  /** Stops holding it, for good or until the next `hold()`. */
  release() {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  ref() {
    this.#refed = true
    this.#timer?.ref()
  }

  unref() {
    this.#refed = false
    this.#timer?.unref()
  }

  /** Whether the process should stay alive for this thing (true unless `unref()`ed). */
  get refed() {
    return this.#refed
  }
}

function noop() {}

/**
 * Gives `Class` Node's `unref()` / `ref()` pair, each returning the instance: they call the
 * same on whatever each of `handles(instance)` returns (the thing's own KeepAlive, or the
 * connection or endpoint whose handle holds the process for it; null is skipped). Call it
 * from the class's static block, where the getters may read private fields.
 */
function refable(Class, ...handles) {
  const method = (value) => ({ value, writable: true, configurable: true, enumerable: false })
  Object.defineProperties(Class.prototype, {
    unref: method(function unref() {
      for (const handle of handles) handle(this)?.unref()
      return this
    }),
    ref: method(function ref() {
      for (const handle of handles) handle(this)?.ref()
      return this
    }),
  })
}

module.exports = { KeepAlive, refable }
