'use strict'

// Per-peer figures for hub.stats() and spoke.stats(): counts summed over a peer's
// connections, an events-per-second rate over a sliding window, and when it was last heard.
// Nothing here runs until someone asks for stats: the sampler that feeds the rates starts
// with the first stats() call.

const { COUNTS } = require('./event-target.js')

/** Events per second are measured over this window (once sampling has run that long). */
const RATE_WINDOW_MS = 10_000
/** How often the sampler reads the counts, and the transport's received packets. */
const SAMPLE_MS = 1_000

const ZERO = Object.freeze({ eventsIn: 0, eventsOut: 0, bytesIn: 0, bytesOut: 0 })

/** One peer's counts across its connections, while this side remembers it. */
class PeerRecord {
  /** Connections this peer had while remembered (reconnects are this, less one). */
  connections = 0
  /** Date.now() when the live connection came, or 0 between connections. */
  connectedAt = 0
  /** Date.now() of the last frame heard (or packet, read by the sampler), or 0. */
  #lastSeen = 0
  /** Counts of the connections that closed. */
  #carried = { ...ZERO }
  /** Targets not closed yet: the live one, and one that was just replaced. */
  #live = new Set()
  /** `{ at, eventsIn, eventsOut }`, oldest first: the first at creation, then one per sample. */
  #samples
  /** The transport's received datagrams at the last sample, per connection. */
  #rx = new WeakMap()
  /** A timer that forgets this record, or null. */
  forget = null

  constructor(now = Date.now()) {
    this.#samples = [{ at: now, eventsIn: 0, eventsOut: 0 }]
  }

  /** A new connection's target. */
  attach(target, now = Date.now()) {
    this.connections++
    this.connectedAt = now
    this.#lastSeen = now
    this.#live.add(target)
  }

  /** A target closed: its counts are kept; `current` says whether it was the live one. */
  detach(target, current) {
    if (!this.#live.delete(target)) return
    const c = target[COUNTS]()
    this.#carried.eventsIn += c.eventsIn
    this.#carried.eventsOut += c.eventsOut
    this.#carried.bytesIn += c.bytesIn
    this.#carried.bytesOut += c.bytesOut
    if (c.lastHeard > this.#lastSeen) this.#lastSeen = c.lastHeard
    if (current) this.connectedAt = 0
  }

  /** `{ eventsIn, eventsOut, bytesIn, bytesOut }` over every connection so far. */
  totals() {
    const t = { ...this.#carried }
    for (const target of this.#live) {
      const c = target[COUNTS]()
      t.eventsIn += c.eventsIn
      t.eventsOut += c.eventsOut
      t.bytesIn += c.bytesIn
      t.bytesOut += c.bytesOut
    }
    return t
  }

  /** Date.now() of the last frame or packet from the peer. */
  get lastSeen() {
    let seen = this.#lastSeen
    for (const target of this.#live) {
      const heard = target[COUNTS]().lastHeard
      if (heard > seen) seen = heard
    }
    return seen
  }

  /** The sampler's reading: counts for the rates, and the transport's packets for lastSeen. */
  sample(totals, now = Date.now()) {
    this.#samples.push({ at: now, eventsIn: totals.eventsIn, eventsOut: totals.eventsOut })
    // Keep the newest sample older than the window, to measure from when nothing is younger.
    while (this.#samples.length > 2 && this.#samples[1].at <= now - RATE_WINDOW_MS) this.#samples.shift()
    for (const target of this.#live) {
      const conn = target.connection
      if (conn === null || target.isClosed) continue
      let datagrams
      try {
        datagrams = conn.stats().udpRx.datagrams
      } catch {
        continue
      }
      const before = this.#rx.get(conn)
      if (before !== undefined && datagrams !== before) this.#lastSeen = Math.max(this.#lastSeen, now)
      this.#rx.set(conn, datagrams)
    }
  }

  /**
   * `{ eventsInPerSecond, eventsOutPerSecond, rateWindowMs }`: from the oldest sample within
   * the window (or, when none is, the newest before it) to now.
   */
  rates(totals, now = Date.now()) {
    const samples = this.#samples
    let from = samples[samples.length - 1]
    for (const s of samples) {
      from = s
      if (s.at >= now - RATE_WINDOW_MS) break
    }
    const ms = now - from.at
    if (ms <= 0) return { eventsInPerSecond: 0, eventsOutPerSecond: 0, rateWindowMs: 0 }
    return {
      eventsInPerSecond: ((totals.eventsIn - from.eventsIn) * 1000) / ms,
      eventsOutPerSecond: ((totals.eventsOut - from.eventsOut) * 1000) / ms,
      rateWindowMs: ms,
    }
  }
}

/**
 * Calls `tick()` every SAMPLE_MS from `start()` until `stop()`; the timer does not keep the
 * process alive.
 */
class Sampler {
  #timer = null
  #tick
  constructor(tick) {
    this.#tick = tick
  }
  start() {
    if (this.#timer !== null) return
    this.#timer = setInterval(this.#tick, SAMPLE_MS)
    this.#timer.unref?.()
  }
  stop() {
    clearInterval(this.#timer)
    this.#timer = null
  }
}

/** Rounds a rate to what a person reads: three decimals. */
const round3 = (x) => Math.round(x * 1000) / 1000

/**
 * One peer's figures. `kept`: the events kept until acknowledged (a delivery session's
 * `out`), or held for a connection; `acked`: whether the live connection acknowledges;
 * `totals`: the counts, when the caller counts some itself; `extra`: `state` and the like.
 */
function figures(nodeId, target, record, now, { kept = null, acked = false, totals = record.totals(), ...extra }) {
  const conn = target?.connection ?? null
  const open = conn !== null && !target.isClosed
  const rates = record.rates(totals, now)
  return {
    nodeId,
    ...extra,
    pathType: open ? conn.pathType() : 'none',
    rttMs: open ? conn.rtt() : null,
    acked,
    ...totals,
    eventsInPerSecond: round3(rates.eventsInPerSecond),
    eventsOutPerSecond: round3(rates.eventsOutPerSecond),
    rateWindowMs: rates.rateWindowMs,
    unackedEvents: kept?.size ?? 0,
    unackedBytes: kept?.bytes ?? 0,
    bufferedBytes: open ? target.bufferedAmount : 0,
    reconnects: Math.max(0, record.connections - 1),
    connectedAt: record.connectedAt === 0 ? null : record.connectedAt,
    lastSeen: record.lastSeen === 0 ? null : record.lastSeen,
  }
}

module.exports = { PeerRecord, Sampler, figures, RATE_WINDOW_MS, SAMPLE_MS }
