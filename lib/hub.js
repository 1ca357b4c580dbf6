'use strict'

// A hub: runs an endpoint's accept loop, admits spokes by node id, and keeps one event
// target per connected spoke. Refusals happen before any stream is taken.

const { setMaxListeners } = require('node:events')
const { encodeFrame } = require('./staging.js')
const { stageBroadcast, broadcastFrames } = require('./pump.js')
const { createHubIrohEventTarget, createSpokeIrohEventTarget, TAKE_BROADCAST, BROADCAST_REFUSED, DELIVERY, LINK } = require('./event-target.js')
const { checkOptions, HUB } = require('./options.js')
const { eventText, stringifierOf } = require('./wire-event.js')
const { Endpoint, PREFER_ALPN, ALSO_OFFER } = require('./endpoint.js')
const { Sessions } = require('./delivery/sessions.js')
const { ackAlpn, isAckAlpn } = require('./delivery/protocol.js')
const { parseNodeId, nodeIdOfTarget } = require('./identity.js')
const { invalidArgument, irohError, normalizeError, requireString } = require('./errors.js')
const { HubCloseCode } = require('./close-codes.js')
const { refable } = require('./keep-alive.js')
const { allowedBy } = require('./spoke.js')
const { PeerRecord, Sampler, figures } = require('./stats.js')
const { prometheusText } = require('./metrics.js')

class Hub extends EventTarget {
  // unref() lets the process exit while the hub accepts (it unrefs its endpoint, which
  // keeps the process alive while it accepts). Connected spokes still keep it alive, as a
  // server's open sockets do; unref their targets too if that is not wanted.
  static {
    refable(this, (hub) => hub.#endpoint)
  }
  #endpoint
  #alpn
  #allow
  #denied
  #targetOptions
  #stringify
  #spokes = new Map()
  /** The spokes' targets over connections this hub dialed (`connect`). */
  #dialedByHub = new WeakSet()
  /** Acknowledged delivery per spoke node id, kept across its connections. */
  #sessions
  #acks
  #arrivals = []
  #waiters = []
  #iterators = 0
  #stop = new AbortController()
  #closing = null
  #closed = false
  #loop
  /** Stats per spoke node id, kept across its connections for sessionTtlMs after the last. */
  #records = new Map()
  #ttlMs
  #sampler = new Sampler(() => this.#sample())
  /** Status servers (serveStatus), closed with the hub. */
  #servers = new Set()

  constructor(endpoint, options) {
    super()
    if (!(endpoint instanceof Endpoint)) throw invalidArgument('createHub expects an Endpoint')
    const checked = checkOptions(HUB, options)
    this.#endpoint = endpoint
    this.#alpn = checked.alpn
    this.#allow = checked.allow
    this.#denied = checked.deny
    this.#targetOptions = checked.eventTarget
    this.#stringify = stringifierOf(this.#targetOptions)
    this.#acks = checked.acks
    this.#ttlMs = checked.sessionTtlMs
    this.#sessions = new Sessions({
      maxPendingBytes: checked.maxPendingBytes,
      ttlMs: checked.sessionTtlMs,
      onLost: (nodeId, error, undelivered) => this.dispatchEvent(new CustomEvent('error', { detail: { nodeId, error, undelivered } })),
    })
    // Offered by spokes of this package; preferred, so they get it whenever both can.
    if (this.#acks) endpoint[PREFER_ALPN](ackAlpn(this.#alpn))
    // Each pending connect() listens on it: hundreds at once after a restart are expected.
    setMaxListeners(0, this.#stop.signal)
    this.#loop = this.#acceptLoop()
  }

  /** `open`, `closing` (close() was called) or `closed`. */
  get state() {
    return this.#closed ? 'closed' : this.#closing !== null ? 'closing' : 'open'
  }

  /** Whether close() has finished. */
  get isClosed() {
    return this.#closed
  }

  /** Node ids of the spokes connected now. */
  get spokes() {
    return [...this.#spokes.keys()]
  }

  /** The event target of a connected spoke, or undefined. */
  spoke(nodeId) {
    return this.#spokes.get(parseNodeId(nodeId))
  }

  /** Node ids refused whatever `allow` says. */
  get denied() {
    return [...this.#denied]
  }

  /** Denies `nodeId` from now on and closes its live connection, if any. */
  revoke(nodeId, reason = 'revoked') {
    nodeId = parseNodeId(nodeId)
    this.#denied.add(nodeId)
    this.#sessions.drop(nodeId, 'it was revoked')
    const target = this.#spokes.get(nodeId)
    if (target) {
      this.#spokes.delete(nodeId)
      target.connection.close(HubCloseCode.REVOKED, reason)
    }
  }

  /**
   * Hub push: dials a spoke that listens (`listenForHub`) by node id, ticket or address and
   * admits it as if it had dialed in (`spoke` event, `hub.spoke()`, broadcasts, its delivery
   * session). Resolves with its target; rejects if the dial fails, the spoke is denied
   * (`ERR_IROH_REFUSED`) or the hub closes first. `allow` is not asked: the hub chose it.
   * A spoke that dials too (`listen: true`) and is connected on its own connection keeps
   * that one: the promise resolves with its target without dialing (or, if it connected
   * while this dialed, this dial's connection is closed with `BOTH_DIALED`).
   */
  async connect(peer, options = {}) {
    if (this.#closing) throw irohError('ERR_IROH_CONNECTION_CLOSED', 'the hub is closed')
    if (options === null || typeof options !== 'object') throw invalidArgument('options must be an object')
    // Connected on its own connection already: that one is kept anyway, so do not dial.
    const own = this.#ownConnection(peer)
    if (own !== undefined) return own
    const signal = options.signal ? AbortSignal.any([options.signal, this.#stop.signal]) : this.#stop.signal
    const conn = await this.#endpoint.connect(peer, this.#alpn, {
      timeoutMs: options.timeoutMs,
      signal,
      [ALSO_OFFER]: this.#acks ? [ackAlpn(this.#alpn)] : undefined,
    })
    const target = await this.#admit(conn, true)
    if (target === undefined) throw irohError('ERR_IROH_REFUSED', `spoke ${conn.remoteNodeId()} is denied, or the hub closed`)
    return target
  }

  /** The live target of a connection the spoke at `peer` dialed, or undefined. */
  #ownConnection(peer) {
    let nodeId
    try {
      nodeId = nodeIdOfTarget(peer)
    } catch {
      return undefined // the dial says what is wrong with it
    }
    const live = this.#spokes.get(nodeId)
    if (live === undefined || this.#dialedByHub.has(live)) return undefined
    // One closed here a moment ago is still listed until its close event.
    return live.isClosed || live.connection?.isClosed() ? undefined : live
  }

  /** Takes `nodeId` off the deny list; `allow` decides again. */
  restore(nodeId) {
    this.#denied.delete(parseNodeId(nodeId))
  }

  /**
   * Serializes `{ type, detail }` once, encodes it once, and queues the same bytes for every
   * connected spoke. Returns how many took it; a spoke whose buffer is full gets an `error`
   * event (detail `{ nodeId, error }`) instead of a silent drop (with acknowledged delivery
   * it is kept and sent once the buffer drains). Broadcasts in one tick reach the spokes
   * together, in one native call, as an event target's own events do.
   */
  broadcast(type, detail = null) {
    requireString(type, 'type')
    if (this.#closing) throw irohError('ERR_IROH_CONNECTION_CLOSED', 'the hub is closed')
    const text = eventText(this.#stringify, { type, detail })
    const bytes = Buffer.byteLength(text)
    let sent = 0
    // The spokes to send the frame to now, and their outlets, index for index.
    const nodeIds = []
    const targets = []
    const outlets = []
    for (const [nodeId, target] of this.#spokes) {
      try {
        const outlet = target[TAKE_BROADCAST](text, bytes)
        sent++
        if (outlet !== null) {
          nodeIds.push(nodeId)
          targets.push(target)
          outlets.push(outlet)
        }
      } catch (err) {
        this.#spokeError(nodeId, err)
      }
    }
    if (outlets.length === 0) return sent
    const frame = encodeFrame(text, bytes)
    if (stageBroadcast(outlets, frame)) return sent
    // A spoke's buffer may be full: hand it over now and hear which took it.
    const buffered = broadcastFrames(outlets, frame)
    for (let i = 0; i < outlets.length; i++) {
      if (buffered[i] >= 0) {
        outlets[i].buffered = buffered[i]
        outlets[i].bytesOut += bytes
        continue
      }
      const error = targets[i][BROADCAST_REFUSED](buffered[i], bytes)
      if (error !== null) {
        sent--
        this.#spokeError(nodeIds[i], error)
      }
    }
    return sent
  }

  #spokeError(nodeId, err) {
    this.dispatchEvent(new CustomEvent('error', { detail: { nodeId, error: normalizeError(err) } }))
  }

  /**
   * Spokes as they are admitted from the first `next()` on, until the hub closes. Spokes
   * are queued for iteration only while an iterator is running, so a hub used through
   * its events alone holds on to nothing.
   */
  async *[Symbol.asyncIterator]() {
    this.#iterators++
    try {
      for (;;) {
        const next = this.#arrivals.length > 0 ? this.#arrivals.shift() : this.#closing ? null : await new Promise((resolve) => this.#waiters.push(resolve))
        if (next === null) return
        // One that left while it waited in the queue is not worth handing out.
        if (!next.target.isClosed) yield next
      }
    } finally {
      this.#iterators--
      if (this.#iterators === 0) this.#arrivals.length = 0
    }
  }

  /**
   * Stops admitting, closes every spoke's connection, and resolves once all are closed.
   * The endpoint stays open (close it too to let the process exit).
   */
  close(reason = 'hub closing') {
    this.#closing ??= (async () => {
      this.#stop.abort()
      await Promise.all([...this.#servers].map((server) => server.close()))
      await this.#loop
      for (const resolve of this.#waiters.splice(0)) resolve(null)
      const targets = [...this.#spokes.values()]
      this.#spokes.clear()
      await Promise.all(targets.map((t) => t.close(HubCloseCode.CLOSING, reason).catch(() => {})))
      this.#sessions.close('the hub closed')
      this.#sampler.stop()
      for (const record of this.#records.values()) clearTimeout(record.forget)
      this.#closed = true
    })()
    return this.#closing
  }

  async #acceptLoop() {
    for (;;) {
      let conn
      try {
        conn = await this.#endpoint.accept({ signal: this.#stop.signal })
      } catch (err) {
        if (err.code !== 'ERR_IROH_ABORTED') this.dispatchEvent(new CustomEvent('error', { detail: { error: normalizeError(err) } }))
        return
      }
      if (conn === null) return
      // Not awaited: a slow `allow` must not hold up the next spoke.
      this.#admit(conn).catch((err) => {
        conn.close(HubCloseCode.REFUSED, 'admission failed')
        this.dispatchEvent(new CustomEvent('error', { detail: { nodeId: conn.remoteNodeId(), error: normalizeError(err) } }))
      })
    }
  }

  /** `dialed`: the hub dialed it (hub push), so the hub opens the stream and `allow` is not asked. */
  async #admit(conn, dialed = false) {
    const nodeId = conn.remoteNodeId()
    const alpn = conn.alpn()
    const acked = this.#acks && isAckAlpn(alpn, this.#alpn)
    if (alpn !== this.#alpn && !acked) return this.#refuse(conn, nodeId, HubCloseCode.WRONG_ALPN, `this hub speaks ${this.#alpn}`)
    if (!(await allowedBy(dialed ? null : this.#allow, this.#denied, nodeId))) return this.#refuse(conn, nodeId, HubCloseCode.REFUSED, 'node id not allowed')
    // Both dialed: the spoke's own connection wins, as the spoke decides too.
    const own = () => (dialed ? this.#ownConnection(nodeId) : undefined)
    if (own() !== undefined) {
      conn.close(HubCloseCode.BOTH_DIALED, 'both dialed: the spoke keeps its own connection')
      return own()
    }
    // The same session whoever dialed: it is per node id.
    const options = acked ? { ...this.#targetOptions, [DELIVERY]: this.#sessions.take(nodeId) } : this.#targetOptions
    const target = await (dialed ? createSpokeIrohEventTarget : createHubIrohEventTarget)(conn, options)
    // close() may have run while `allow` was thinking; it has already closed the others.
    if (this.#closing) {
      await target.close(HubCloseCode.CLOSING, 'hub closing')
      return undefined
    }
    const live = own()
    if (live !== undefined) {
      conn.close(HubCloseCode.BOTH_DIALED, 'both dialed: the spoke keeps its own connection')
      return live
    }
    const previous = this.#spokes.get(nodeId)
    if (previous !== undefined) {
      // A connection the spoke dialed beats one this hub dialed; otherwise the newer wins.
      const crossed = !dialed && this.#dialedByHub.has(previous)
      if (crossed) previous.connection.close(HubCloseCode.BOTH_DIALED, 'both dialed: the spoke keeps its own connection')
      else previous.connection.close(HubCloseCode.REPLACED, 'replaced by a newer connection')
    }
    if (dialed) this.#dialedByHub.add(target)
    this.#spokes.set(nodeId, target)
    const record = this.#recordOf(nodeId)
    record.attach(target)
    target.lifecycle.addEventListener('close', (e) => {
      const current = this.#spokes.get(nodeId) === target
      if (current) {
        this.#spokes.delete(nodeId)
        if (acked) this.#sessions.expire(nodeId)
      }
      // Revoked or closed by the hub, it left the list already.
      const gone = !this.#spokes.has(nodeId)
      record.detach(target, gone)
      if (gone) this.#forgetLater(nodeId, record)
      this.dispatchEvent(new CustomEvent('disconnect', { detail: { nodeId, ...e.detail } }))
    })
    // `dialed`: this hub dialed it (`connect`); false when the spoke dialed in.
    const spoke = { nodeId, target, dialed }
    this.dispatchEvent(new CustomEvent('spoke', { detail: spoke }))
    const waiter = this.#waiters.shift()
    if (waiter) waiter(spoke)
    else if (this.#iterators > 0) this.#arrivals.push(spoke)
    return target
  }

  /** The stats record of `nodeId`, kept or new; it stays while the spoke is connected. */
  #recordOf(nodeId) {
    let record = this.#records.get(nodeId)
    if (record === undefined) {
      record = new PeerRecord()
      this.#records.set(nodeId, record)
    }
    clearTimeout(record.forget)
    record.forget = null
    return record
  }

  /** A spoke left: its counts and reconnects are kept for its return, as its session is. */
  #forgetLater(nodeId, record) {
    if (this.#closing) return
    record.forget = setTimeout(() => {
      if (this.#records.get(nodeId) === record && !this.#spokes.has(nodeId)) this.#records.delete(nodeId)
    }, this.#ttlMs)
    record.forget.unref?.()
  }

  #sample() {
    for (const [nodeId, record] of this.#records) if (this.#spokes.has(nodeId)) record.sample(record.totals())
  }

  /**
   * Figures per connected spoke, keyed by node id (see SpokeStats in index.d.ts). The first
   * call starts a once-a-second sampler (unref'd) for the events-per-second window.
   */
  stats() {
    this.#sampler.start()
    const now = Date.now()
    const spokes = {}
    for (const [nodeId, target] of this.#spokes) {
      const record = this.#records.get(nodeId)
      if (record === undefined) continue
      const kept = target[LINK]?.session.out ?? null
      spokes[nodeId] = figures(nodeId, target, record, now, { state: target.state, dialed: this.#dialedByHub.has(target), kept, acked: kept !== null })
    }
    return { nodeId: this.#endpoint.nodeId(), state: this.state, spokes }
  }

  /** `stats()` in Prometheus's text exposition format (0.0.4), labelled by `node_id`. */
  metrics() {
    return prometheusText(this.stats())
  }

  /**
   * Serves `/metrics`, `/stats.json` and a status page on `host` (default 127.0.0.1) and
   * `port` (default 0: any free one). Resolves with `{ host, port, url, close() }` once it
   * listens; it closes with the hub, and never keeps the process alive.
   */
  async serveStatus(options = {}) {
    if (this.#closing) throw irohError('ERR_IROH_CONNECTION_CLOSED', 'the hub is closed')
    if (options === null || typeof options !== 'object') throw invalidArgument('options must be an object')
    const { port = 0, host = '127.0.0.1' } = options
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalidArgument('port must be an integer from 0 to 65535')
    requireString(host, 'host')
    // Loaded here: the browser build has no node:http, and a hub that never serves needs none.
    const { serveStatus } = require('./status-server.js')
    const handle = await serveStatus(this, { port, host }, (h) => this.#servers.delete(h))
    this.#servers.add(handle)
    // The hub closed while the server started.
    if (this.#closing) await handle.close()
    return handle
  }

  #refuse(conn, nodeId, code, reason) {
    conn.close(code, reason)
    this.dispatchEvent(new CustomEvent('refused', { detail: { nodeId, code, reason } }))
  }
}

/** Runs `endpoint`'s accept loop as a hub for `options.alpn`. */
function createHub(endpoint, options) {
  return new Hub(endpoint, options)
}

module.exports = { Hub, createHub }
