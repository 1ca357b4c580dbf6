'use strict'

const { pending, native, nativeSync } = require('./pending.js')
const { requireBytes, requireU32, invalidArgument } = require('./errors.js')
const { KeepAlive, refable } = require('./keep-alive.js')
const { openWith } = require('./mailbox.js')
const { callListener, watch } = require('./watch.js')

/** A close report is the only message of its address. */
const once = () => true

const NATIVE = Symbol('native')
/** Package-internal: lets go of the process at once, when the endpoint closes. */
const RELEASE = Symbol('release')
const DEFAULT_READ_MAX = 64 * 1024

/** The sending half of a QUIC stream. */
class SendStream {
  constructor(handle) {
    this[NATIVE] = handle
  }
  id() {
    return nativeSync(() => this[NATIVE].id())
  }
  write(data) {
    return native(() => this[NATIVE].write(requireBytes(data, 'data')))
  }
  writeAll(data) {
    return native(() => this[NATIVE].writeAll(requireBytes(data, 'data')))
  }
  finish() {
    return native(() => this[NATIVE].finish())
  }
  reset(code = 0) {
    return native(() => this[NATIVE].reset(requireU32(code, 'code')))
  }
}

/** The receiving half of a QUIC stream. */
class RecvStream {
  constructor(handle) {
    this[NATIVE] = handle
  }
  id() {
    return nativeSync(() => this[NATIVE].id())
  }
  read(max = DEFAULT_READ_MAX, options) {
    return pending(options?.signal, (t) => this[NATIVE].read(requireU32(max, 'max'), t))
  }
  readExact(n, options) {
    return pending(options?.signal, (t) => this[NATIVE].readExact(requireU32(n, 'n'), t))
  }
  readToEnd(max, options) {
    return pending(options?.signal, (t) => this[NATIVE].readToEnd(requireU32(max, 'max'), t))
  }
  stop(code = 0) {
    return native(() => this[NATIVE].stop(requireU32(code, 'code')))
  }
}


function wrapBi(bi) {
  return { send: new SendStream(bi.send), recv: new RecvStream(bi.recv) }
}

/**
 * A QUIC connection to one peer. Like a `net.Socket`, an open connection keeps the process
 * alive until it closes (either side, or an idle timeout); `unref()` opts out.
 */
class Connection {
  #keepAlive = new KeepAlive()
  // unref() lets the process exit while this connection is open; ref() undoes it.
  static {
    refable(this, (connection) => connection.#keepAlive)
  }
  #onRelease

  /** Made by `endpoint.connect()` and `endpoint.accept()`. */
  constructor(handle, onRelease) {
    this[NATIVE] = handle
    this.#onRelease = onRelease
    this.#keepAlive.hold()
    try {
      openWith(() => this[RELEASE](), once, (to) => handle.onClose(to))
    } catch {
      // Without word of the close, holding the process could hang it for good.
      this.#keepAlive.release()
    }
  }

  /** Whether the connection has closed, whoever closed it (a method, as in the community binding). */
  isClosed() {
    return nativeSync(() => this[NATIVE].isClosed())
  }

  /** `open` or `closed`: the state every class of this package has. */
  get state() {
    return this.isClosed() ? 'closed' : 'open'
  }

  [RELEASE]() {
    this.#keepAlive.release()
    this.#onRelease?.(this)
    this.#onRelease = undefined
  }

  remoteNodeId() {
    return nativeSync(() => this[NATIVE].remoteNodeId())
  }
  alpn() {
    return nativeSync(() => this[NATIVE].alpn())
  }
  async openBi() {
    return wrapBi(await native(() => this[NATIVE].openBi()))
  }
  async acceptBi(options) {
    return wrapBi(await pending(options?.signal, (t) => this[NATIVE].acceptBi(t)))
  }
  async openUni() {
    return new SendStream(await native(() => this[NATIVE].openUni()))
  }
  async acceptUni(options) {
    return new RecvStream(await pending(options?.signal, (t) => this[NATIVE].acceptUni(t)))
  }
  sendDatagram(data) {
    nativeSync(() => this[NATIVE].sendDatagram(requireBytes(data, 'data')))
  }
  readDatagram(options) {
    return pending(options?.signal, (t) => this[NATIVE].readDatagram(t))
  }
  maxDatagramSize() {
    return nativeSync(() => this[NATIVE].maxDatagramSize())
  }
  rtt() {
    return nativeSync(() => this[NATIVE].rtt())
  }
  stats() {
    return nativeSync(() => this[NATIVE].stats())
  }
  paths() {
    return nativeSync(() => this[NATIVE].paths())
  }
  pathType() {
    return nativeSync(() => this[NATIVE].pathType())
  }
  /**
   * Calls `listener({ pathType, paths })` now and whenever the paths change, until the
   * connection closes, `signal` aborts, or the returned function is called.
   */
  watchPaths(listener, options) {
    let previous = null
    const report = (state, stop) => {
      // Native code says `none` once more when the connection has closed: the watch is over.
      const over = state.pathType === 'none' && this[NATIVE].isClosed()
      if (over) stop()
      if (!(over && previous === 'none')) callListener(listener, state)
      previous = state.pathType
    }
    return watch('watchPaths', listener, options, report, (to) => this[NATIVE].watchPaths(to))
  }
  /**
   * Calls `listener({ code, reason, kind })` once when the connection closes, whoever
   * closes it (at once if it has closed). Unlike `closed()` nothing waits on it, so it
   * never keeps the process alive. Returns a function that cancels the call.
   */
  onClose(listener) {
    if (typeof listener !== 'function') throw invalidArgument('onClose expects a listener function')
    let wanted = true
    const heard = (info) => {
      if (!wanted) return
      wanted = false
      callListener(listener, info)
    }
    openWith(heard, once, (to) => nativeSync(() => this[NATIVE].onClose(to)))
    return () => {
      wanted = false
    }
  }
  close(code = 0, reason = '') {
    if (typeof reason !== 'string') throw invalidArgument('reason must be a string')
    nativeSync(() => this[NATIVE].close(requireU32(code, 'code'), reason))
    this[RELEASE]()
  }
  closed() {
    return native(() => this[NATIVE].closed())
  }
  closeReason() {
    return nativeSync(() => this[NATIVE].closeReason())
  }
}

module.exports = { Connection, SendStream, RecvStream, NATIVE, RELEASE }
