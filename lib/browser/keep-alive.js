'use strict'

// The browser bundle's lib/keep-alive.js: a page has no process to keep alive, so holding
// is bookkeeping only; `ref()` / `unref()` are there so that code written for Node runs.

class KeepAlive {
  #refed = true
  hold() {
    return this
  }
  release() {}
  ref() {
    this.#refed = true
  }
  unref() {
    this.#refed = false
  }
  get refed() {
    return this.#refed
  }
}

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
