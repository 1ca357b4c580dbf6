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
const { nodeIdOfTarget } = require('./identity.js')
const { PeerRecord, Sampler, figures } = require('./stats.js')

/**
 * How long a spoke waits for a packet after nudging its connection, to tell it is alive:
 * three round trips and QUIC's largest ack delay (25 ms), within these bounds.
 */
const PROBE_MIN_MS = 100
const PROBE_MAX_MS = 500

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
 * A spoke that outlives its connections. It dials the hub (`connectSpoke`), waits for the
 * hub to dial it (`listenForHub`, hub push), or both (`connectSpoke` with `listen: true`):
 * only who opens a connection differs; listeners, held events, onConnect and the delivery
 * session are the same code, and one connection is served at a time.
 *
 * When both ends dial at once, the connection the spoke dialed wins, on both ends (the hub
 * applies the same rule): both know who is the spoke, so they agree without a word.
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
  /** flush() calls waiting for the live connection to change. */
  #innerWaiters = []
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
  /** Whether this spoke dials the hub, and whether the hub may dial it. */
  #dials
  #listens
  /** Connections from allowed hubs, not served yet. */
  #incoming = []
  /** Resolves (and is replaced) when a connection from the hub arrives or the spoke closes. */
  #arrival = null
  /** The spoke's own dial, settling as `{ conn }` or `{ err }`, while nobody awaits it. */
  #dialing = null
  /** Undoes what listening changed on the endpoint, newest first. */
  #unlisten = []
  /** The hub's figures across connections (stats()); events out are counted here. */
  #record = new PeerRecord()
  #eventsOut = 0
  #sampler = new Sampler(() => this.#record.sample(this.#totals()))

  /**
   * `statechange` (detail `{ state, previous }`), `error` (detail: the Error), `close`,
   * `pathchange` (detail `{ pathType, paths }`) for each connection's paths, and on a spoke
   * that listens `refused` (detail `{ nodeId, code, reason }`).
   */
  lifecycle = this.#life.events

  /** `peer` null: a listening spoke (`listenForHub`), which the hub dials. */
  constructor(endpoint, peer, options) {
    const listenOnly = peer === null
    if (!(endpoint instanceof Endpoint)) throw invalidArgument(`${listenOnly ? 'listenForHub' : 'connectSpoke'} expects an Endpoint`)
    if (!listenOnly && typeof peer !== 'string' && typeof peer !== 'object') {
      throw invalidArgument('the hub to dial must be a node id, a ticket or an address object')
    }
    this.#endpoint = endpoint
    this.#peer = peer
    this.#options = checkOptions(listenOnly ? LISTENING_SPOKE : SPOKE, options)
    this.#dials = !listenOnly
    this.#listens = listenOnly || this.#options.listen
    // A spoke that dials and listens lets in the hub it dials, and no one else.
    if (!listenOnly && this.#listens) this.#options.allow = new Set([nodeIdOfTarget(peer)])
    this.#stringify = stringifierOf(this.#options.eventTarget)
    this.#session = new Session({ maxPendingBytes: this.#options.maxPendingBytes })
    // Only once the arguments passed: a spoke that never was must not hold the process.
    this.#keepAlive.hold()
    this.#stop.signal.addEventListener('abort', () => this.#signalArrival(), { once: true })
    if (listenOnly) this.#state = 'listening'
    if (this.#listens) {
      // Accept the plain protocol, and prefer acknowledged delivery when the hub offers it.
      this.#unlisten.push(endpoint[PREFER_ALPN](this.#options.alpn))
      if (this.#options.acks) this.#unlisten.push(endpoint[PREFER_ALPN](ackAlpn(this.#options.alpn)))
      this.#acceptLoop()
    }
    this.#run()
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
      this.#eventsOut++
      return true
    }
    const out = this.#session.out
    // An acknowledged connection keeps what it sends in the session itself; a plain one
    // takes events straight once nothing waits before them.
    if (this.#greeting || (this.#state === 'connected' && (this.#acked || out.size === 0))) {
      try {
        const sent = this.#inner.dispatchEvent(event)
        this.#eventsOut++
        return sent
      } catch (err) {
        // The connection just died and the spoke has not noticed yet: hold the event.
        if (err.code !== 'ERR_IROH_CONNECTION_CLOSED') throw err
      }
    }
    const text = eventText(this.#stringify, event)
    out.push(text, Buffer.byteLength(text))
    this.#eventsOut++
    return true
  }

  #totals() {
    return { ...this.#record.totals(), eventsOut: this.#eventsOut }
  }

  /**
   * This spoke's figures, as `hub.stats()` gives them per spoke (see SpokeStats in
   * index.d.ts), with `hubNodeId`. The first call starts a once-a-second sampler (unref'd)
   * for the events-per-second window.
   */
  stats() {
    if (this.#state !== 'closed') this.#sampler.start()
    const inner = this.#inner
    let hubNodeId = null
    try {
      hubNodeId = inner?.connection?.remoteNodeId() ?? (this.#peer === null ? null : nodeIdOfTarget(this.#peer))
    } catch {
      // An address the dial will reject: no node id to show.
    }
    return figures(this.#endpoint.nodeId(), inner, this.#record, Date.now(), {
      state: this.#state,
      hubNodeId,
      kept: this.#session.out,
      acked: inner !== null && this.#acked,
      totals: this.#totals(),
    })
  }

  /**
   * Resolves once everything dispatched has been handed to QUIC on a live connection, or
   * with `{ acked: true }` once the hub has acknowledged delivering it to its listeners.
   */
  async flush(options) {
    for (;;) {
      while (this.#state !== 'connected' || this.#inner === null || (!this.#acked && this.#session.out.size > 0)) {
        if (this.#state === 'closed') throw irohError('ERR_IROH_CONNECTION_CLOSED', 'the spoke is closed')
        await Promise.race([new Promise((resolve) => this.lifecycle.addEventListener('statechange', resolve, { once: true })), this.#innerChange()])
      }
      const inner = this.#inner
      const acked = this.#acked
      try {
        return await inner.flush(options)
      } catch (err) {
        // With acknowledged delivery what that connection did not take is kept and goes out
        // on the next one: carry on there. A plain connection lost it: say so.
        if (!acked || err.code !== 'ERR_IROH_CONNECTION_CLOSED' || this.#state === 'closed') throw err
        if (this.#inner === inner) await this.#innerChange()
      }
    }
  }

  /** Resolves when the live connection changes (or the spoke closes). */
  #innerChange() {
    return new Promise((resolve) => this.#innerWaiters.push(resolve))
  }

  #setInner(inner) {
    this.#inner = inner
    for (const resolve of this.#innerWaiters.splice(0)) resolve()
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
      this.#signalArrival()
    }
  }

  /** Resolves once a connection from the hub waits (at once if one does) or the spoke closes. */
  #arrived() {
    if (this.#incoming.length > 0 || this.#stop.signal.aborted) return Promise.resolve()
    if (this.#arrival === null) {
      let resolve
      const promise = new Promise((r) => (resolve = r))
      this.#arrival = { promise, resolve }
    }
    return this.#arrival.promise
  }

  #signalArrival() {
    const arrival = this.#arrival
    this.#arrival = null
    arrival?.resolve()
  }

  /** The newest connection from the hub, or null; older ones waiting are closed (REPLACED). */
  #takeIncoming() {
    const conn = this.#incoming.pop() ?? null
    for (const stale of this.#incoming.splice(0)) stale.close(HubCloseCode.REPLACED, 'replaced by a newer connection')
    return conn
  }

  /** The spoke's own dial: the one under way, or a new one. */
  #startDial() {
    this.#dialing ??= this.#dial(this.#options.connectTimeoutMs).then(
      (conn) => ({ conn }),
      (err) => ({ err }),
    )
    return this.#dialing
  }

  /**
   * Serves one connection at a time: the spoke's own (dialed, redialed with backoff) or one
   * the hub dialed, whichever comes first. A newer connection from the hub replaces one the
   * hub dialed (the hub dials again only when it has lost the old one); the spoke's own dial
   * replaces one the hub dialed, and beats one the hub dials while the spoke's is alive.
   */
  async #run() {
    let attempt = 0
    const signal = this.#stop.signal
    // `{ conn, accepted }` to serve next: one that replaced the last, or a probe's.
    let next = null
    while (!signal.aborted) {
      let entry = next
      next = null
      if (entry === null && this.#listens) {
        const conn = this.#takeIncoming()
        if (conn !== null) entry = { conn, accepted: true }
      }
      if (entry === null && !this.#dials) {
        this.#setState('listening')
        await this.#arrived()
        continue
      }
      if (entry === null) {
        this.#setState('connecting')
        const dialing = this.#startDial()
        const got = await (this.#listens ? Promise.race([dialing, this.#arrived().then(() => null)]) : dialing)
        // The hub called first: serve its connection; the dial goes on, and wins if it gets through.
        if (got === null) continue
        this.#dialing = null
        if (got.err) {
          if (signal.aborted) return
          attempt++
          if (attempt >= this.#options.maxAttempts) return this.#giveUp(normalizeError(got.err), attempt)
          this.#setState('disconnected')
          await this.#sleep(backoff(attempt, this.#options), this.#listens)
          continue
        }
        if (signal.aborted) {
          got.conn.close(0, 'the spoke closed')
          return
        }
        entry = { conn: got.conn, accepted: false }
      }
      attempt = 0
      let outcome
      try {
        outcome = await this.#serve(entry.conn, entry.accepted)
      } catch (err) {
        entry.conn.close(0, 'failed to start')
        outcome = { info: { kind: 'local', code: 0 } }
        this.#life.reportError(normalizeError(err))
      }
      if (signal.aborted) return
      if (outcome.replacedBy) {
        // Carry on on the new connection; a spoke that dials says it is connecting again.
        if (this.#dials) this.#setState('connecting')
        next = outcome.replacedBy
        continue
      }
      const info = outcome.info
      if (!entry.accepted && info.kind === 'remote' && FINAL_HUB_CODES.has(info.code)) {
        const error = irohError('ERR_IROH_REFUSED', `the hub refused this spoke (code ${info.code}: ${info.reason})`)
        return this.#finish({ ...info, error })
      }
      // A connection the hub dialed ended: dial at once (a dial may be under way already).
      if (entry.accepted || !this.#dials) continue
      attempt++
      this.#setState('disconnected')
      await this.#sleep(backoff(attempt, this.#options), this.#listens)
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
   * Runs one connection until it ends (`{ info }`) or another replaces it (`{ replacedBy:
   * { conn, accepted } }`): with acknowledged delivery, a new one after the hub was silent
   * past ackTimeoutMs; one the hub dialed anew; the spoke's own dial (see #await).
   */
  async #serve(conn, accepted = false) {
    const acked = this.#options.acks && conn.alpn() === ackAlpn(this.#options.alpn)
    const options = acked ? { ...this.#options.eventTarget, [DELIVERY]: this.#session, [DEFER_START]: true } : this.#options.eventTarget
    // The dialer opens the one stream, whoever dialed: the wire looks as the README says.
    const inner = await (accepted ? createHubIrohEventTarget : createSpokeIrohEventTarget)(conn, options)
    inner[FORWARD] = (type, detail) => this.#listeners.emit(this, type, detail)
    inner.lifecycle.addEventListener('error', (e) => this.#life.reportError(e.detail))
    inner.lifecycle.addEventListener('pathchange', (e) => this.#life.emit('pathchange', e.detail))
    this.#record.attach(inner)
    const ended = new Promise((resolve) =>
      inner.lifecycle.addEventListener(
        'close',
        (e) => {
          this.#record.detach(inner, true)
          resolve(e.detail)
        },
        { once: true },
      ),
    )
    this.#acked = acked
    this.#setInner(inner)
    await this.#greet()
    // Acknowledged: the link sends the hello, the greeting, then all the session keeps.
    if (acked) inner[START](this.#greetingTexts.splice(0))
    else await this.#sendPending(inner, ended)
    if (!inner.isClosed && !this.#stop.signal.aborted) this.#setState('connected')
    const outcome = await this.#await(inner, ended, accepted)
    this.#acked = false
    this.#setInner(null)
    return outcome
  }

  /** Waits for the live connection to end or be replaced; closes it when replaced. */
  async #await(inner, ended, accepted) {
    const watch = this.#acked ? this.#watchSilence(inner) : null
    const signal = this.#stop.signal
    try {
      for (;;) {
        const races = [ended.then((info) => ({ info }))]
        if (watch !== null) races.push(watch.replaced)
        if (this.#listens && !signal.aborted) races.push(this.#arrived().then(() => ({ arrived: true })))
        const dialing = accepted ? this.#dialing : null
        if (dialing !== null) races.push(dialing.then((dialed) => ({ dialed })))
        const got = await Promise.race(races)
        if (got.info) return got
        if (got.silent) {
          // A listening spoke cannot redial: it lets the dead connection go and waits for the hub.
          inner.connection.close(0, 'the hub went silent')
          return { info: await ended }
        }
        if (got.replacedBy) {
          inner.connection.close(0, 'replaced: the hub went silent')
          return got
        }
        if (got.dialed) {
          this.#dialing = null
          if (got.dialed.err || signal.aborted) {
            got.dialed.conn?.close(0, 'the spoke closed')
            continue
          }
          // Both dialed: the spoke's own connection wins, here and at the hub.
          inner.connection.close(HubCloseCode.BOTH_DIALED, 'both dialed: the spoke keeps its own connection')
          return { replacedBy: { conn: got.dialed.conn, accepted: false } }
        }
        if (signal.aborted) continue
        const newer = this.#takeIncoming()
        if (newer === null) continue
        if (accepted) {
          inner.connection.close(HubCloseCode.REPLACED, 'replaced by a newer connection')
          return { replacedBy: { conn: newer, accepted: true } }
        }
        // The hub dialed while this spoke's own connection is up. If that one is alive, the
        // hub has it too and closes the one it dialed, as this side does; if it is dead (the
        // hub restarted), the hub's call is the way back, at once.
        if (await this.#alive(inner)) newer.close(HubCloseCode.BOTH_DIALED, 'both dialed: the spoke keeps its own connection')
        else {
          inner.connection.close(0, 'replaced: the hub went silent')
          return { replacedBy: { conn: newer, accepted: true } }
        }
      }
    } finally {
      watch?.stop()
    }
  }

  /**
   * Whether the hub still answers on `inner`: a packet within three round trips (and the ack
   * delay) of a nudge, 100-500 ms and at most heartbeatMs. A live connection taken for dead
   * costs one redial: both ends close the hub's, and the spoke dials again at once.
   */
  async #alive(inner) {
    const conn = inner.connection
    const received = () => (inner.isClosed ? -1 : conn.stats().udpRx.datagrams)
    const before = received()
    const window = Math.min(this.#options.heartbeatMs, Math.max(PROBE_MIN_MS, Math.min(PROBE_MAX_MS, 3 * conn.rtt() + 25)))
    inner[NUDGE]()
    const deadline = Date.now() + window
    while (!inner.isClosed && Date.now() < deadline) {
      // Nothing signals a packet's arrival: read the transport's count now and then.
      await new Promise((resolve) => setTimeout(resolve, 10).unref())
      const now = received()
      if (now !== -1 && now !== before) return true
    }
    return false
  }

  /**
   * Watches the connection's transport: after heartbeatMs without a packet from the hub it
   * sends an empty frame, which the hub's QUIC stack acknowledges however busy its JS is
   * (and its JS never sees); past ackTimeoutMs without a packet it dials again alongside: a
   * hub that restarted accepts the new connection at once, long before the old one's idle
   * timeout, and the session resends what it lost. A hub that is only slow is not redialed:
   * with a thousand spokes, redials fed its backlog and made it slower still. A spoke that
   * only listens cannot dial: past ackTimeoutMs it closes the silent connection instead
   * (`{ silent: true }`), so what it dispatches is held for the hub's next call.
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
      if (!this.#dials) return resolveReplaced({ silent: true })
      probing = true
      try {
        const conn = await this.#dial(ackTimeoutMs)
        if (stopped) conn.close(0, 'not needed')
        else resolveReplaced({ replacedBy: { conn, accepted: false } })
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

  /**
   * Waits `ms`, or less if closed or (`orCall`) once the hub dials. The timer does not hold
   * the process open.
   */
  #sleep(ms, orCall = false) {
    return new Promise((resolve) => {
      const signal = this.#stop.signal
      const done = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      timer.unref()
      signal.addEventListener('abort', done, { once: true })
      if (orCall) this.#arrived().then(done)
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
      const dialing = this.#dialing
      this.#dialing = null
      dialing?.then((r) => r.conn?.close(0, 'the spoke closed'))
      this.#session.out.abandon(irohError('ERR_IROH_CONNECTION_CLOSED', 'the spoke closed before the hub acknowledged everything'))
      this.#stop.abort()
      this.#sampler.stop()
      this.#setState('closed')
      this.#setInner(null)
    })
  }
}

/**
 * One event target for the hub at `peer` that redials on its own (see the README); with
 * `listen: true` the hub may dial it too.
 */
function connectSpoke(endpoint, peer, options) {
  if (peer === null) throw invalidArgument('the hub to dial must be a node id, a ticket or an address object')
  return new ReconnectingSpoke(endpoint, peer, options)
}

/** One event target for the hubs in `options.allow`, which dial this endpoint (hub push). */
function listenForHub(endpoint, options) {
  return new ReconnectingSpoke(endpoint, null, options)
}

module.exports = { ReconnectingSpoke, connectSpoke, listenForHub, allowedBy }
