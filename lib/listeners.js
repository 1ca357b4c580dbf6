'use strict'

// The listener bookkeeping the event targets share: functions or `{ handleEvent }`
// objects, `once`, `signal`, copy-on-write lists so that a dispatch in progress keeps
// the list it started with, and a listener that throws never stops the others.

const { invalidArgument } = require('./errors.js')

const customEvent = (type, detail) => new CustomEvent(type, { detail })

class Listeners {
  #byType = new Map()
  #onError

  /** `onError(err)` receives what a listener throws. */
  constructor(onError) {
    this.#onError = onError
  }

  add(type, listener, options) {
    if (listener === null || listener === undefined) return
    if (typeof listener !== 'function' && typeof listener?.handleEvent !== 'function') {
      throw invalidArgument('listener must be a function or an object with handleEvent')
    }
    const once = typeof options === 'object' && options !== null && Boolean(options.once)
    const signal = typeof options === 'object' && options !== null ? options.signal : undefined
    if (signal?.aborted) return
    const list = this.#byType.get(type) ?? []
    if (list.some((entry) => entry.listener === listener)) return
    this.#byType.set(type, [...list, { listener, once }])
    signal?.addEventListener('abort', () => this.remove(type, listener), { once: true })
  }

  remove(type, listener) {
    const list = this.#byType.get(type)
    if (!list) return
    const next = list.filter((entry) => entry.listener !== listener)
    if (next.length === 0) this.#byType.delete(type)
    else if (next.length !== list.length) this.#byType.set(type, next)
  }

  /**
   * Calls the listeners of `type` with `makeEvent(type, detail)` (a CustomEvent unless
   * told otherwise), `self` as this.
   */
  emit(self, type, detail, makeEvent = customEvent) {
    const list = this.#byType.get(type)
    if (list === undefined) return
    const event = makeEvent(type, detail)
    for (const entry of list) {
      if (entry.once) this.remove(type, entry.listener)
      try {
        if (typeof entry.listener === 'function') entry.listener.call(self, event)
        else entry.listener.handleEvent(event)
      } catch (err) {
        this.#onError(err)
      }
    }
  }
}

/**
 * Gives `Class` `addEventListener` and `removeEventListener` over the `Listeners` that
 * `listenersOf(instance)` returns. Call it from the class's static block, where the getter
 * may read a private field.
 */
function listenable(Class, listenersOf) {
  const method = (value) => ({ value, writable: true, configurable: true, enumerable: false })
  Object.defineProperties(Class.prototype, {
    addEventListener: method(function addEventListener(type, listener, options) {
      listenersOf(this).add(type, listener, options)
    }),
    removeEventListener: method(function removeEventListener(type, listener) {
      listenersOf(this).remove(type, listener)
    }),
  })
}

module.exports = { Listeners, listenable }
