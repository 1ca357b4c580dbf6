'use strict'

const binding = require('./native.js')
const { pending, native, nativeSync, viaCallback } = require('./pending.js')
const { Connection, RELEASE } = require('./connection.js')
const { invalidArgument, irohError, requireString, optionalU32 } = require('./errors.js')
const { KeepAlive, refable } = require('./keep-alive.js')
const { checkOptions, ENDPOINT } = require('./options.js')
const { callListener, watch } = require('./watch.js')

const NATIVE = Symbol('native')
/** Package-internal connect option: the caller keeps the process alive while it dials. */
const CALLER_HOLDS = Symbol('callerHolds')
/** Package-internal connect option: more ALPNs to offer; the accepting side picks. */
const ALSO_OFFER = Symbol('alsoOffer')
/** Package-internal: `endpoint[PREFER_ALPN](alpn)` accepts `alpn` too, ahead of the others. */
const PREFER_ALPN = Symbol('preferAlpn')

/** napi leaves an absent object field out; the documented shape says `null`. */
function withNullError(status) {
  return { url: status.url, connected: status.connected, error: status.error ?? null }
}

function checkTarget(target) {
  if (typeof target === 'string') return target
  if (target && typeof target === 'object' && typeof target.nodeId === 'string') {
    return {
      nodeId: target.nodeId,
      relayUrl: target.relayUrl ?? undefined,
      directAddresses: target.directAddresses ?? [],
    }
  }
  throw invalidArgument('target must be a node id, a ticket or an { nodeId, relayUrl?, directAddresses? } object')
}

/**
 * A QUIC endpoint identified by its node id. Create one with `Endpoint.create()`. Like a
 * listening `net.Server`, an endpoint that accepts connections (it has `alpns`) keeps the
 * process alive until `close()`; `unref()` opts out. A dial-only endpoint does not: its
 * connections and dials in progress do.
 */
class Endpoint {
  #keepAlive = new KeepAlive()
  // unref() lets the process exit while this endpoint accepts; ref() undoes it.
  static {
    refable(this, (endpoint) => endpoint.#keepAlive)
  }
  #connections = new Set()
  #alpns
  #closed = false
  /** accept() and connect() calls whose weak callback has not answered yet. */
  #waiting = new Set()

  constructor(handle, alpns = []) {
    if (!(handle instanceof binding.Endpoint)) {
      throw new TypeError('use Endpoint.create(options) to make an endpoint')
    }
    this[NATIVE] = handle
    this.#alpns = [...alpns]
    if (this.#alpns.length > 0) this.#keepAlive.hold()
  }

  static async create(options) {
    const checked = checkOptions(ENDPOINT, options)
    return new Endpoint(await native(() => binding.Endpoint.create(checked)), checked.alpns)
  }

  /** Returns a function that undoes it: a listening spoke that closes stops accepting. */
  [PREFER_ALPN](alpn) {
    const before = this.#alpns
    this.#alpns = [alpn, ...this.#alpns.filter((a) => a !== alpn)]
    nativeSync(() => this[NATIVE].setAlpns(this.#alpns))
    // It accepts now, if it did not before.
    this.#keepAlive.hold()
    return () => {
      if (this.#closed) return
      this.#alpns = before
      nativeSync(() => this[NATIVE].setAlpns(before))
      if (before.length === 0) this.#keepAlive.release()
    }
  }

  /** The old binding's name for `create`. */
  static createWithOptions(options) {
    return Endpoint.create(options)
  }

  nodeId() {
    return nativeSync(() => this[NATIVE].nodeId())
  }
  addr() {
    return nativeSync(() => this[NATIVE].addr())
  }
  ticket() {
    return nativeSync(() => this[NATIVE].ticket())
  }
  online(options) {
    return pending(options?.signal, (t) => this[NATIVE].online(optionalU32(options?.timeoutMs, 'timeoutMs'), t))
  }
  /** Each configured relay: `{ url, connected, error: { code, message } | null }`. */
  relayStatus() {
    return nativeSync(() => this[NATIVE].relayStatus()).map(withNullError)
  }
  /**
   * Calls `listener(relayStatus())` now and whenever a relay's state or error changes,
   * until the endpoint closes, `signal` aborts or the returned function is called. It
   * does not keep the process alive.
   */
  watchRelays(listener, options) {
    const report = (list, stop) => {
      // Native code posts an empty list once the endpoint has closed: the watch is over.
      if (list.length === 0 && this[NATIVE].isClosed()) return stop()
      callListener(listener, list.map(withNullError))
    }
    return watch('watchRelays', listener, options, report, (to) => this[NATIVE].watchRelays(to))
  }
  async connect(target, alpn, options) {
    const checkedTarget = checkTarget(target)
    requireString(alpn, 'alpn', 'ERR_IROH_INVALID_ALPN')
    const timeoutMs = optionalU32(options?.timeoutMs, 'timeoutMs')
    // Known at once: no native round trip, which nothing would hold the process for.
    if (this.#closed) throw irohError('ERR_IROH_ENDPOINT_CLOSED', 'the endpoint is closed')
    // Like `net.connect()`: a dial in progress keeps the process alive.
    const dialing = options?.[CALLER_HOLDS] ? null : new KeepAlive().hold()
    try {
      const handle = await pending(options?.signal, (t) => this.#settled((done) => this[NATIVE].connect(checkedTarget, alpn, timeoutMs, options?.[ALSO_OFFER], t, done)))
      return this.#adopt(handle)
    } finally {
      dialing?.release()
    }
  }
  /** The next connection that finished its handshake; null once the endpoint is closed. */
  async accept(options) {
    if (this.#closed) return null
    const handle = await pending(options?.signal, (t) => this.#settled((done) => this[NATIVE].accept(t, done)))
    return handle ? this.#adopt(handle) : null
  }
  /** Closes every connection and the socket; the process no longer waits for any of them. */
  close() {
    this.#closed = true
    this.#keepAlive.release()
    // Their answers are on their way now: each holds the process until it lands.
    for (const waiting of this.#waiting) {
      const landing = new KeepAlive().hold()
      waiting.finally(() => landing.release()).catch(() => {})
    }
    for (const conn of this.#connections) conn[RELEASE]()
    return native(() => this[NATIVE].close())
  }

  /** A weak-callback call, remembered until it answers (see close()). */
  #settled(start) {
    const settled = viaCallback(start)
    this.#waiting.add(settled)
    const forget = () => this.#waiting.delete(settled)
    settled.then(forget, forget)
    return settled
  }

  #adopt(handle) {
    const conn = new Connection(handle, (c) => this.#connections.delete(c))
    // Closed already (the endpoint too, say): nothing to hold.
    if (conn.isClosed()) conn[RELEASE]()
    else this.#connections.add(conn)
    return conn
  }
  /** Whether the endpoint has closed (a method, as in the community binding). */
  isClosed() {
    return nativeSync(() => this[NATIVE].isClosed())
  }
  /** `open` or `closed`: the state every class of this package has. */
  get state() {
    return this.isClosed() ? 'closed' : 'open'
  }
}

module.exports = { Endpoint, NATIVE, CALLER_HOLDS, ALSO_OFFER, PREFER_ALPN }
