'use strict'

// What `connection.watchPaths` and `endpoint.watchRelays` share: a native watch posting to
// a mailbox address, a user's listener called for each report, and a `stop` that the
// caller, an AbortSignal or the watch's own end mark calls.

const { nativeSync } = require('./pending.js')
const { invalidArgument } = require('./errors.js')
const { address, forget } = require('./mailbox.js')

/** Calls a user's listener from a native callback: what it throws is thrown as from any other callback, not into the addon. */
function callListener(listener, value) {
  try {
    listener(value)
  } catch (err) {
    process.nextTick(() => {
      throw err
    })
  }
}

/**
 * Checks `listener` and `options.signal`, opens the watch with `open(address)` and returns
 * its `stop`. Each report goes to `onMail(mail, stop)`, which calls the listener (through
 * `callListener`) or, at the watch's end mark, `stop()`.
 */
function watch(name, listener, options, onMail, open) {
  if (typeof listener !== 'function') throw invalidArgument(`${name} expects a listener function`)
  const signal = options?.signal
  if (signal !== undefined && (signal === null || typeof signal.addEventListener !== 'function')) {
    throw invalidArgument('options.signal must be an AbortSignal')
  }
  if (signal?.aborted) return () => {}
  const to = address((mail) => onMail(mail, stop))
  let watcher
  try {
    watcher = nativeSync(() => open(to))
  } catch (err) {
    forget(to)
    throw err
  }
  const stop = () => {
    signal?.removeEventListener('abort', stop)
    forget(to)
    watcher.stop()
  }
  signal?.addEventListener('abort', stop, { once: true })
  return stop
}

module.exports = { callListener, watch }
