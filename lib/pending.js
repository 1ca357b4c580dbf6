'use strict'

const { CancelToken } = require('./native.js')
const { irohError, normalizeError, invalidArgument } = require('./errors.js')
const { KeepAlive } = require('./keep-alive.js')

function abortedError(signal) {
  return irohError('ERR_IROH_ABORTED', 'the operation was aborted', { cause: signal.reason })
}

/**
 * Runs a native call that takes a CancelToken, wiring `signal` to it. The native side
 * drops the pending future on cancel, so nothing (a connection, stream bytes) is lost.
 */
async function pending(signal, call) {
  if (signal === undefined || signal === null) {
    try {
      return await call(undefined)
    } catch (err) {
      throw normalizeError(err)
    }
  }
  if (typeof signal !== 'object' || typeof signal.addEventListener !== 'function') {
    throw invalidArgument('options.signal must be an AbortSignal')
  }
  if (signal.aborted) throw abortedError(signal)
  const token = new CancelToken()
  // The cancelled call's answer is on its way to JS: it holds the process until it lands,
  // even where it reports through a weak callback.
  let landing = null
  const onAbort = () => {
    landing = new KeepAlive().hold()
    token.cancel()
  }
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    return await call(token)
  } catch (err) {
    if (err && err.code === 'ERR_IROH_ABORTED') throw abortedError(signal)
    throw normalizeError(err)
  } finally {
    landing?.release()
    signal.removeEventListener('abort', onAbort)
  }
}

/** Runs a native call, giving any error an ERR_IROH_* code. */
async function native(call) {
  try {
    return await call()
  } catch (err) {
    throw normalizeError(err)
  }
}

/**
 * A Promise for a native call that reports through a weak callback with
 * `{ connection, errorCode, errorMessage }`: unlike a native Promise, it does not keep the
 * process alive while it waits (the caller decides that with a KeepAlive, and must hold one
 * once the answer is known to be on its way, say after closing what it waits on).
 */
function viaCallback(start) {
  return new Promise((resolve, reject) => {
    start((settled) => {
      if (settled.errorCode) reject(irohError(settled.errorCode, settled.errorMessage ?? settled.errorCode))
      else resolve(settled.connection ?? null)
    })
  })
}

function nativeSync(call) {
  try {
    return call()
  } catch (err) {
    throw normalizeError(err)
  }
}

module.exports = { pending, native, nativeSync, viaCallback }
