'use strict'

// A spoke that outlives its connections: one event target whose listeners stay put while
// it dials, redials with backoff, and holds what is dispatched meanwhile.

const {
  createSpokeIrohEventTarget,
  createHubIrohEventTarget,
  FORWARD,
  SEND_TEXT,
  DELIVERY,
  DEFER_START,
  START,
  LINK,
  NUDGE,
} = require('./event-target.js')
const { checkOptions, SPOKE, LISTENING_SPOKE } = require('./options.js')
const { checkEvent, eventText, stringifierOf } = require('./wire-event.js')
const { Lifecycle } = require('./lifecycle.js')
const { Endpoint, CALLER_HOLDS, ALSO_OFFER, PREFER_ALPN } = require('./endpoint.js')
const { Session } = require('./delivery/session.js')
const { ackAlpn } = require('./delivery/protocol.js')
const { KeepAlive, refable } = require('./keep-alive.js')
const { FINAL_HUB_CODES, HubCloseCode } = require('./close-codes.js')
const { Listeners, listenable } = require('./listeners.js')
const { invalidArgument, irohError, normalizeError } = require('./errors.js')

/** A node id the `allow` of a hub or a listening spoke lets in (a Set is read live). */
async function allowedBy(allow, denied, nodeId) {
  if (denied.has(nodeId)) return false
  if (allow === null) return true
  if (allow instanceof Set) return allow.has(nodeId)
  // Denial may have come while `allow` was thinking.
  return (await allow(nodeId)) === true && !denied.has(nodeId)
}

/** Full jitter over exponential backoff: a crowd of spokes does not redial in step. */
function backoff(attempt, { initialDelayMs, maxDelayMs }) {
  const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempt - 1, 30))
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2)
}

/**
 * A spoke that outlives its connections. It either dials the hub (`connectSpoke`) or waits
 * for the hub to dial it (`listenForHub`, hub push): only who opens the connection differs;
 * listeners, held events, onConnect and the delivery session are the same code.
 */
class ReconnectingSpoke {
  // A spoke keeps the process alive from connectSpoke() until it is closed or gives up:
  // unref() lets it exit while the spoke is open or redialing (the live connection too, and
  // a listening spoke's endpoint, which accepts for it).
  // Listeners are added to and removed from #listeners, which outlive connections.
  static {
    refable(
      this,
      (spoke) => spoke.#keepAlive,
      (spoke) => spoke.#inner,
      (spoke) => (spoke.#peer === null ? spoke.#endpoint : null),
    )
    listenable(this, (spoke) => spoke.#listeners)
  }
  #life = new Lifecycle()
  #endpoint
  #peer
  #options
  #listeners = new Listeners((err) => this.#life.reportError(err))
  #state = 'connecting'
  #inner = null
  /**
   * What the spoke sends, across connections: events waiting for a connection and events the
   * hub has not acknowledged, in order, under one bound (maxPendingBytes).
   */
  #session
  /** Whether the live connection speaks acknowledged delivery. */
  #acked = false
  /** What onConnect dispatched on an acknowledged connection: sent right after the hello. */
  #greetingTexts = []
  #stop = new AbortController()
  #stringify
  /** Held from creation until the spoke closes or gives up, as a socket's handle is. */
  #keepAlive = new KeepAlive()
  /** While `onConnect` runs, events go straight to the new connection, ahead of held ones. */
  #greeting = false
  /** A listening spoke: connections from allowed hubs, not served yet. */
  #incoming = []
  #incomingWaiter = null
  /** Undoes what listening changed on the endpoint, newest first. */
  #unlisten = []

  /**
   * `statechange` (detail `{ state, previous }`), `error` (detail: the Error), `close`, and
   * `pathchange` (detail `{ pathType, paths }`) for each connection's paths.
   */
  lifecycle = this.#life.events

  /** `peer` null: a listening spoke (`listenForHub`), which the hub dials. */
  constructor(endpoint, peer, options) {
    const listening = peer === null
    if (!(endpoint instanceof Endpoint)) throw invalidArgument(`${listening ? 'listenForHub' : 'connectSpoke'} expects an Endpoint`)
    if (!listening && typeof peer !== 'string' && typeof peer !== 'object') {
      throw invalidArgument('the hub to dial must be a node id, a ticket or an address object')
    }
    this.#endpoint = endpoint
    this.#peer = peer
    this.#options = checkOptions(listening ? LISTENING_SPOKE : SPOKE, options)
    this.#stringify = stringifierOf(this.#options.eventTarget)
    this.#session = new Session({ maxPendingBytes: this.#options.maxPendingBytes })
    // Only once the arguments passed: a spoke that never was must not hold the process.
    this.#keepAlive.hold()
    if (listening) {
      this.#state = 'listening'
      // Accept the plain protocol, and prefer acknowledged delivery when the hub offers it.
      this.#unlisten.push(endpoint[PREFER_ALPN](this.#options.alpn))
      if (this.#options.acks) this.#unlisten.push(endpoint[PREFER_ALPN](ackAlpn(this.#options.alpn)))
      this.#acceptLoop()
      this.#listen()
    } else this.#run()
  }

  /**
   * `connecting`, `connected`, `disconnected` (waiting to redial) or `closed`; a listening
   * spoke is `listening` (no hub connected), `connected` or `closed`.
   */
  get state() {
    return this.#state
  }

  /** Whether the spoke has closed (`close()` was called, or it gave up redialing). */
  get isClosed() {
    return this.#state === 'closed'
  }

  /** The live connection, or null between connections. */
  get connection() {
    return this.#inner?.connection ?? null
  }

  /** Where data goes on the live connection: `direct`, `relay`, `mixed`; `none` between connections. */
  pathType() {
    return this.#inner?.pathType() ?? 'none'
  }

  /** The live connection's open paths; empty between connections. */
  paths() {
    return this.#inner?.paths() ?? []
  }

  /** Bytes dispatched and not yet handed to QUIC, waiting ones included. */
  get bufferedAmount() {
    return this.#session.out.heldBytes + (this.#inner?.bufferedAmount ?? 0)
  }

  /** Resolves with the close info once `close()` is called or redialing gives up. */
  get closed() {
    return this.#life.closed
  }

  /**
   * Sends `{ type, detail }` to the hub, or keeps it, in order, until the next connection.
   * Throws `ERR_IROH_BUFFER_FULL` past `maxPendingBytes` (or the live target's buffer).
   */
  dispatchEvent(event) {
    checkEvent(event)
    if (this.#state === 'closed') throw irohError('ERR_IROH_CONNECTION_CLOSED', 'the spoke is closed')
    if (this.#greeting && this.#acked) {
      this.#greetingTexts.push(eventText(this.#stringify, event))
      return true
    }
    const out = this.#session.out
    // An acknowledged connection keeps what it sends in the session itself; a plain one
    // takes events straight once nothing waits before them.
    if (this.#greeting || (this.#state === 'connected' && (this.#acked || out.size === 0))) {
      try {
        return this.#inner.dispatchEvent(event)
      } catch (err) {
        // The connection just died and the spoke has not noticed yet: hold the event.
        if (err.code !== 'ERR_IROH_CONNECTION_CLOSED') throw err
      }
    }
    const text = eventText(this.#stringify, event)
    out.push(text, Buffer.byteLength(text))
    return true
  }

  /**
   * Resolves once everything dispatched has been handed to QUIC on a live connection, or
   * with `{ acked: true }` once the hub has acknowledged delivering it to its listeners.
   */
  async flush(options) {
    while (this.#state !== 'connected' || (!this.#acked && this.#session.out.size > 0)) {
      if (this.#state === 'closed') throw irohError('ERR_IROH_CONNECTION_CLOSED', 'the spoke is closed')
      await new Promise((resolve) => this.lifecycle.addEventListener('statechange', resolve, { once: true }))
    }
    await this.#inner.flush(options)
  }

  /** Stops redialing, sends what the live connection has queued, and closes it. */
  async close(code = 0, reason = '') {
    if (!this.#life.isClosed) {
      this.#stop.abort()
      const inner = this.#inner
      if (inner) {
        // A hub that takes nothing for ackTimeoutMs is gone: do not wait for the idle timeout.
        let timer
        const gone = new Promise((resolve) => {
          timer = setTimeout(resolve, this.#options.ackTimeoutMs)
          timer.unref()
        })
        await Promise.race([inner.close(code, reason).catch(() => {}), gone])
        clearTimeout(timer)
        if (!inner.isClosed) inner.connection.close(code, reason)
      }
      this.#finish({ code, reason, kind: 'local' })
    }
    return this.#life.closed
  }

  /** A listening spoke: takes the endpoint's connections and lets in the allowed hubs. */
  async #acceptLoop() {
    const { alpn, acks, allow } = this.#options
    const signal = this.#stop.signal
    const none = new Set()
    for (;;) {
      let conn
      try {
        conn = await this.#endpoint.accept({ signal })
      } catch (err) {
        if (!signal.aborted) this.#life.reportError(normalizeError(err))
        conn = null
      }
      if (conn === null) {
        // The endpoint closed under the spoke: nothing can reach it any more.
        if (!signal.aborted) this.#finish({ code: 0, reason: 'the endpoint closed', kind: 'local' })
        return
      }
      const nodeId = conn.remoteNodeId()
      const known = conn.alpn() === alpn || (acks && conn.alpn() === ackAlpn(alpn))
      let ok = false
      try {
        ok = known && (await allowedBy(allow, none, nodeId))
      } catch (err) {
        this.#life.reportError(normalizeError(err))
      }
      if (!ok || signal.aborted) {
        // The same codes a hub uses, so a peer reads a refusal the same way.
        const [code, reason] = known ? [HubCloseCode.REFUSED, 'node id not allowed'] : [HubCloseCode.WRONG_ALPN, `this spoke speaks ${alpn}`]
        conn.close(code, reason)
        if (!signal.aborted) this.#life.emit('refused', { nodeId, code, reason })
        continue
      }
      if (!this.#keepAlive.refed) conn.unref()
      this.#incoming.push(conn)
      this.#incomingWaiter?.()
    }
  }

  /** The next connection from an allowed hub, or null once the spoke closes. */
  #nextIncoming() {
    if (this.#incoming.length > 0) return Promise.resolve(this.#incoming.shift())
    if (this.#stop.signal.aborted) return Promise.resolve(null)
    return new Promise((resolve) => {
      const done = () => {
        this.#incomingWaiter = null
        this.#stop.signal.removeEventListener('abort', done)
        resolve(this.#incoming.shift() ?? null)
      }
      this.#incomingWaiter = done
      this.#stop.signal.addEventListener('abort', done, { once: true })
    })
  }

  /**
   * A listening spoke serves one hub connection at a time; a newer one from the hub replaces
   * the live one (as a hub replaces a spoke that dials again): the hub dials again only when
   * it has lost the old one, and the session carries on across them.
   */
  async #listen() {
    const signal = this.#stop.signal
    let next = null
    while (!signal.aborted) {
      const conn = next ?? (await this.#nextIncoming())
      next = null
      if (conn === null) return
      let outcome
      try {
        outcome = await this.#serve(conn, true)
      } catch (err) {
        conn.close(0, 'failed to start')
        outcome = { info: { kind: 'local', code: 0 } }
        this.#life.reportError(normalizeError(err))
      }
      for (const stale of this.#incoming.splice(0, this.#incoming.length - 1)) stale.close(HubCloseCode.REPLACED, 'replaced by a newer connection')
      if (signal.aborted) return
      if (outcome.replacedBy) next = outcome.replacedBy
      else this.#setState('listening')
    }
  }

  async #run() {
    let attempt = 0
    const signal = this.#stop.signal
    // A connection a probe already made, when the live one went silent.
    let next = null
    while (!signal.aborted) {
      let conn = next
      next = null
      if (conn === null) {
        this.#setState('connecting')
        try {
          conn = await this.#dial(this.#options.connectTimeoutMs)
        } catch (err) {
          if (signal.aborted) return
          attempt++
          if (attempt >= this.#options.maxAttempts) return this.#giveUp(normalizeError(err), attempt)
          this.#setState('disconnected')
          await this.#sleep(backoff(attempt, this.#options))
          continue
        }
      }
      attempt = 0
      let outcome
      try {
        outcome = await this.#serve(conn)
      } catch (err) {
        conn.close(0, 'failed to start')
        outcome = { info: { kind: 'local', code: 0 } }
        this.#life.reportError(normalizeError(err))
      }
      if (signal.aborted) return
      if (outcome.replacedBy) {
        // The old connection went silent and a new one is up: say so, and carry on there.
        this.#setState('connecting')
        next = outcome.replacedBy
        continue
      }
      const info = outcome.info
      if (info.kind === 'remote' && FINAL_HUB_CODES.has(info.code)) {
        const error = irohError('ERR_IROH_REFUSED', `the hub refused this spoke (code ${info.code}: ${info.reason})`)
        return this.#finish({ ...info, error })
      }
      attempt++
      this.#setState('disconnected')
      await this.#sleep(backoff(attempt, this.#options))
    }
  }

  /** Dials the hub, offering acknowledged delivery too unless it is turned off. */
  async #dial(timeoutMs) {
    const { alpn, acks } = this.#options
    const conn = await this.#endpoint.connect(this.#peer, alpn, {
      timeoutMs,
      signal: this.#stop.signal,
      [ALSO_OFFER]: acks ? [ackAlpn(alpn)] : undefined,
      // This spoke's own handle keeps the process alive while it dials.
      [CALLER_HOLDS]: true,
    })
    if (!this.#keepAlive.refed) conn.unref()
    return conn
  }

  /**
   * Runs one connection until it ends (`{ info }`) or, with acknowledged delivery, until the
   * hub has been silent past ackTimeoutMs and a new connection replaced it (`{ replacedBy }`).
   */
  async #serve(conn, accepted = false) {
    const acked = this.#options.acks && conn.alpn() === ackAlpn(this.#options.alpn)
    const options = acked ? { ...this.#options.eventTarget, [DELIVERY]: this.#session, [DEFER_START]: true } : this.#options.eventTarget
    // The dialer opens the one stream, whoever dialed: the wire looks as the README says.
    const inner = await (accepted ? createHubIrohEventTarget : createSpokeIrohEventTarget)(conn, options)
    inner[FORWARD] = (type, detail) => this.#listeners.emit(this, type, detail)
    inner.lifecycle.addEventListener('error', (e) => this.#life.reportError(e.detail))
    inner.lifecycle.addEventListener('pathchange', (e) => this.#life.emit('pathchange', e.detail))
    const ended = new Promise((resolve) => inner.lifecycle.addEventListener('close', (e) => resolve(e.detail), { once: true }))
    this.#inner = inner
    this.#acked = acked
    await this.#greet()
    // Acknowledged: the link sends the hello, the greeting, then all the session keeps.
    if (acked) inner[START](this.#greetingTexts.splice(0))
    else await this.#sendPending(inner, ended)
    if (!inner.isClosed && !this.#stop.signal.aborted) this.#setState('connected')
    let outcome
    if (accepted) {
      // The hub dials; this side can only wait for it, or for a newer connection from it.
      const newer = new Promise((resolve) => {
        const check = () => {
          if (this.#incoming.length > 0) resolve({ replacedBy: this.#incoming.pop() })
          else this.#incomingWaiter = check
        }
        check()
      })
      outcome = await Promise.race([ended.then((info) => ({ info })), newer])
      if (this.#incomingWaiter !== null && !outcome.replacedBy) this.#incomingWaiter = null
      if (outcome.replacedBy) inner.connection.close(HubCloseCode.REPLACED, 'replaced by a newer connection')
    } else if (acked) {
      const watch = this.#watchSilence(inner)
      outcome = await Promise.race([ended.then((info) => ({ info })), watch.replaced])
      watch.stop()
      if (outcome.replacedBy) inner.connection.close(0, 'replaced: the hub went silent')
    } else outcome = { info: await ended }
    this.#inner = null
    this.#acked = false
    return outcome
  }

  /**
   * Watches the connection's transport: after heartbeatMs without a packet from the hub it
   * sends an empty frame, which the hub's QUIC stack acknowledges however busy its JS is
   * (and its JS never sees); past ackTimeoutMs without a packet it dials again alongside: a
   * hub that restarted accepts the new connection at once, long before the old one's idle
   * timeout, and the session resends what it lost. A hub that is only slow is not redialed:
   * with a thousand spokes, redials fed its backlog and made it slower still.
   */
  #watchSilence(inner) {
    const link = inner[LINK]
    const conn = inner.connection
    const { heartbeatMs, ackTimeoutMs } = this.#options
    let stopped = false
    let probing = false
    let nudged = 0
    // Datagrams received are read only during a silence of the application.
    let rx = -1
    let rxAt = 0
    let resolveReplaced
    const replaced = new Promise((resolve) => (resolveReplaced = resolve))
    const check = async () => {
      const now = Date.now()
      if (now - link.lastHeard < heartbeatMs) rx = -1
      else {
        const datagrams = conn.stats().udpRx.datagrams
        // The first reading of a silence credits nothing beyond what the link last heard.
        if (rx === -1) rxAt = link.lastHeard
        else if (datagrams !== rx) rxAt = now
        rx = datagrams
      }
      const silent = now - Math.max(link.lastHeard, rxAt)
      if (silent >= heartbeatMs && now - nudged >= heartbeatMs) {
        nudged = now
        inner[NUDGE]()
      }
      if (silent < ackTimeoutMs || probing) return
      probing = true
      try {
        const conn = await this.#dial(ackTimeoutMs)
        if (stopped) conn.close(0, 'not needed')
        else resolveReplaced({ replacedBy: conn })
      } catch {
        // The hub is not there yet: the next check tries again.
      } finally {
        probing = false
      }
    }
    const timer = setInterval(check, Math.max(25, Math.floor(Math.min(heartbeatMs, ackTimeoutMs - heartbeatMs) / 4)))
    timer.unref()
    return {
      replaced,
      stop: () => {
        stopped = true
        clearInterval(timer)
      },
    }
  }

  /** Runs `onConnect`: what it dispatches goes first on the new connection. */
  async #greet() {
    const onConnect = this.#options.onConnect
    if (onConnect === undefined) return
    this.#greeting = true
    try {
      await onConnect(this)
    } catch (err) {
      this.#life.reportError(err)
    } finally {
      this.#greeting = false
    }
  }

  /**
   * A plain connection: sends what the session keeps in order, waiting for room as needed.
   * Handed to QUIC is all a plain connection confirms, so that is where the session lets go.
   */
  async #sendPending(inner, ended) {
    const out = this.#session.out
    while (out.size > 0) {
      const seq = out.from
      try {
        inner[SEND_TEXT](out.textAt(seq), out.sizeAt(seq))
      } catch (err) {
        if (err.code !== 'ERR_IROH_BUFFER_FULL') return // closed: they wait for the next connection
        const drained = new Promise((resolve) => inner.lifecycle.addEventListener('drain', resolve, { once: true }))
        if ((await Promise.race([drained, ended.then(() => 'ended')])) === 'ended') return
        continue
      }
      out.ack(seq)
    }
  }

  /** Waits `ms`, or less if closed. The timer does not hold the process open. */
  #sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms)
      timer.unref()
      this.#stop.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer)
          resolve()
        },
        { once: true },
      )
    })
  }

  #giveUp(cause, attempts) {
    const error = irohError('ERR_IROH_CONNECT', `gave up after ${attempts} attempts: ${cause.message}`, { cause })
    this.#finish({ code: 0, reason: error.message, kind: 'local', error })
  }

  #setState(state) {
    if (state === this.#state) return
    const previous = this.#state
    this.#state = state
    this.#life.emit('statechange', { state, previous })
  }

  #finish(info) {
    this.#life.finish(info, () => {
      this.#keepAlive.release()
      for (const undo of this.#unlisten.splice(0).reverse()) undo()
      for (const conn of this.#incoming.splice(0)) conn.close(0, 'the spoke closed')
      this.#session.out.abandon(irohError('ERR_IROH_CONNECTION_CLOSED', 'the spoke closed before the hub acknowledged everything'))
      this.#stop.abort()
      this.#setState('closed')
    })
  }
}

/** One event target for the hub at `peer` that redials on its own (see the README). */
function connectSpoke(endpoint, peer, options) {
  if (peer === null) throw invalidArgument('the hub to dial must be a node id, a ticket or an address object')
  return new ReconnectingSpoke(endpoint, peer, options)
}

/** One event target for the hubs in `options.allow`, which dial this endpoint (hub push). */
function listenForHub(endpoint, options) {
  return new ReconnectingSpoke(endpoint, null, options)
}

module.exports = { ReconnectingSpoke, connectSpoke, listenForHub, allowedBy }
