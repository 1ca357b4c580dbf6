'use strict'

// A relay server run in this process: for tests, and for hosting your own relay.

const binding = require('./native.js')
const { native, nativeSync } = require('./pending.js')
const { KeepAlive, refable } = require('./keep-alive.js')
const { checkOptions, RELAY_SERVER } = require('./options.js')

/**
 * A running relay. Like a listening `net.Server`, it keeps the process alive until
 * `close()` (or `unref()`).
 */
class RelayServer {
  #native
  #keepAlive = new KeepAlive().hold()
  #closing = null
  #closed = false
  // unref() lets the process exit while the server runs; ref() undoes it.
  static {
    refable(this, (server) => server.#keepAlive)
  }

  constructor(handle) {
    this.#native = handle
  }

  /** The URL endpoints dial, e.g. `https://127.0.0.1:40123/`. */
  get url() {
    return nativeSync(() => this.#native.url)
  }

  /** The UDP port of its QUIC address discovery. */
  get quicPort() {
    return nativeSync(() => this.#native.quicPort)
  }

  /** `{ url, quicPort }`: an entry for `relayMode: { relays: [...] }`. */
  get relay() {
    return nativeSync(() => this.#native.relay)
  }

  /** The PEM of the CA generated for this server, or null when you passed your own certificate. */
  get caCertificatePem() {
    return nativeSync(() => this.#native.caCertificatePem)
  }

  /** `open`, `closing` (close() was called) or `closed`. */
  get state() {
    return this.#closed ? 'closed' : this.#closing !== null ? 'closing' : 'open'
  }

  get isClosed() {
    return this.#closed
  }

  /** Stops serving; resolves once every socket is closed. */
  close() {
    this.#keepAlive.release()
    this.#closing ??= native(() => this.#native.close()).finally(() => {
      this.#closed = true
    })
    return this.#closing
  }
}

/** Starts an iroh relay server (see the README's "Self-hosting a relay"). */
async function startRelayServer(options) {
  const checked = checkOptions(RELAY_SERVER, options)
  return new RelayServer(await native(() => binding.startRelayServer(checked)))
}

module.exports = { RelayServer, startRelayServer }
