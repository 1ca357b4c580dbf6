'use strict'

// A hub's delivery sessions, one per spoke node id: kept across the spoke's connections,
// and forgotten once the spoke stays away past the session TTL. What a forgotten session
// never had acknowledged is reported, never dropped silently.

const { irohError } = require('../errors.js')
const { Session } = require('./session.js')

class Sessions {
  #byNodeId = new Map()
  #maxPendingBytes
  #ttlMs
  #onLost
  #closed = false

  /** `onLost(nodeId, error, undelivered)`: a session went with events never acknowledged. */
  constructor({ maxPendingBytes, ttlMs, onLost }) {
    this.#maxPendingBytes = maxPendingBytes
    this.#ttlMs = ttlMs
    this.#onLost = onLost
  }

  /** The spoke's session for a new connection: the one it had, if it came back in time. */
  take(nodeId) {
    let entry = this.#byNodeId.get(nodeId)
    if (entry === undefined) {
      entry = { session: new Session({ maxPendingBytes: this.#maxPendingBytes }), timer: null }
      this.#byNodeId.set(nodeId, entry)
    }
    clearTimeout(entry.timer)
    entry.timer = null
    return entry.session
  }

  /** The spoke's connection ended: its session lasts the TTL unless it comes back. */
  expire(nodeId) {
    const entry = this.#byNodeId.get(nodeId)
    if (entry === undefined || this.#closed) return
    entry.timer = setTimeout(() => this.drop(nodeId, `it did not reconnect within sessionTtlMs (${this.#ttlMs} ms)`), this.#ttlMs)
    entry.timer.unref()
  }

  /** Forgets a spoke's session, `why` it went. */
  drop(nodeId, why) {
    const entry = this.#byNodeId.get(nodeId)
    if (entry === undefined) return
    this.#byNodeId.delete(nodeId)
    clearTimeout(entry.timer)
    const { out } = entry.session
    const error = irohError('ERR_IROH_CONNECTION_CLOSED', `${out.size} events to spoke ${nodeId} were never acknowledged: ${why}`)
    out.abandon(error)
    if (out.size > 0) this.#onLost(nodeId, error, out.size)
  }

  /** The hub closed: every session goes. */
  close(why) {
    this.#closed = true
    for (const nodeId of [...this.#byNodeId.keys()]) this.drop(nodeId, why)
  }
}

module.exports = { Sessions }
