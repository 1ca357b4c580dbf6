'use strict'

// Staging: small frames are encoded by JS straight into a process-wide buffer in wire
// format (4-byte big-endian length, then the payload) and handed to their native pump once
// per tick, when the buffer fills, or when another pump's frames come next: one native call
// per burst instead of one per frame. Only one run is staged at a time (one pump's frames,
// or a hub's broadcasts to one set of pumps), so frames reach each pump in the order they
// were sent.
//
// JS decides alone whether a frame still fits under `maxBufferedBytes`, with the native
// outbox's rule (`Outbox::push` in the Rust core's batch.rs): an empty buffer always takes
// one frame. __test__/staging.test.mjs holds this module to the cases of the Rust test.

const { irohError, normalizeError } = require('./errors.js')

const HEADER_BYTES = 4
const STAGING_BYTES = 256 * 1024

/**
 * The outbox's rule: whether a frame of `len` payload bytes would take a buffer that holds
 * `buffered` bytes past `max`. Never for an empty buffer, so that a frame larger than the
 * buffer cap (but within the frame cap) can still be sent.
 */
function overfull(buffered, len, max) {
  return buffered > 0 && buffered + HEADER_BYTES + len > max
}

/** The error of a send refused because it would pass `maxBufferedBytes`. */
function bufferFull(buffered, len, max) {
  return irohError(
    'ERR_IROH_BUFFER_FULL',
    `${buffered} bytes are waiting to be sent and ${len} more would pass maxBufferedBytes (${max}): wait for flush() or the drain event`,
  )
}

/** The error of an event that serializes to more than `maxFrameBytes`. */
function frameTooLarge(len, max) {
  return irohError('ERR_IROH_FRAME_TOO_LARGE', `the event is ${len} bytes serialized, more than maxFrameBytes (${max})`)
}

/** One frame of `text` (`bytes` long in UTF-8) in a buffer of its own. */
function encodeFrame(text, bytes) {
  const frame = Buffer.allocUnsafe(HEADER_BYTES + bytes)
  frame.writeUInt32BE(bytes, 0)
  frame.write(text, HEADER_BYTES)
  return frame
}

/**
 * What staging needs of one native pump: its limits, and the bytes it had buffered as of
 * the last hand-over (only ever an overestimate: the writer only takes from it meanwhile).
 * `onError` hears of a hand-over that failed for another reason than a closed connection.
 */
class Outlet {
  buffered = 0
  /** Payload bytes of the frames handed to this pump (headers not counted), for stats. */
  bytesOut = 0
  /** The target's round-trip stamps (lib/trace.js), when the process traces. */
  trace = null

  constructor(pump, { maxFrameBytes, maxBufferedBytes, broadcastId }, onError) {
    this.pump = pump
    this.maxFrame = maxFrameBytes
    this.maxBuffered = maxBufferedBytes
    /** The pump's number for the native `broadcastFrames`. */
    this.broadcastId = broadcastId
    this.onError = onError
  }

  /** Hands encoded frames, or one payload, to the pump at once, without staging. */
  send(bytes) {
    if (this.trace !== null) this.trace.commitOne()
    try {
      this.buffered = this.pump.send(bytes)
      this.bytesOut += bytes.byteLength
    } catch (err) {
      throw normalizeError(err)
    }
  }

  /** Asks the pump what it holds now. */
  refresh() {
    try {
      this.buffered = this.pump.bufferedAmount()
    } catch (err) {
      throw normalizeError(err)
    }
  }

  /** Asks the pump for a drain message once its buffer is empty. */
  wantDrain() {
    try {
      this.pump.wantDrain()
    } catch (err) {
      throw normalizeError(err)
    }
  }

  /** Gives the pump a staged run: a copy of it, or (`handOver`) the bytes themselves. */
  take(run, handOver) {
    if (this.trace !== null) this.trace.commit(run)
    try {
      this.buffered = handOver ? this.pump.sendStaged(run) : this.pump.sendFrames(run)
    } catch (err) {
      // The connection closed after these were sent: they are lost as anything in flight
      // is, and the close event says why.
      if (err?.code !== 'ERR_IROH_CONNECTION_CLOSED') this.onError(normalizeError(err))
    }
  }
}

/**
 * A staging buffer. Without `handOver` (the event targets) the pump copies each run and the
 * buffer is used again; with it (the message channels) the pump takes each run as it is,
 * JS never writes into a run it handed over, and a full buffer is left to the pump and the
 * GC and a new one started.
 */
class Staging {
  #size
  #handOver
  #buffer = null
  /** The staged run is `#buffer[#from, #at)`; it is `#by`'s. */
  #from = 0
  #at = 0
  #by = null
  #queued = false
  /** Broadcasts staged for the same outlets: `{ outlets, frames, bytes }`, or null. */
  #broadcast = null
  /** `(outlets, frames) => buffered[]`: hands `frames` to every outlet's pump at once. */
  #broadcastFrames

  constructor({ size = STAGING_BYTES, handOver = false, broadcastFrames = null } = {}) {
    this.#size = size
    this.#handOver = handOver
    this.#broadcastFrames = broadcastFrames
  }

  /** Hands the staged run to its outlet, or the staged broadcasts to theirs. */
  commit = () => {
    this.#queued = false
    if (this.#broadcast !== null) return this.#commitBroadcast()
    const outlet = this.#by
    if (outlet === null) return
    this.#by = null
    const run = this.#buffer.subarray(this.#from, this.#at)
    if (this.#handOver) this.#from = this.#at
    else this.#from = this.#at = 0
    outlet.take(run, this.#handOver)
  }

  /** Hands over one pump's staged run, if there is one; staged broadcasts stay. */
  commitRun() {
    if (this.#by !== null) this.commit()
  }

  /**
   * Stages one encoded frame for every outlet in `outlets`, to go with the broadcasts to the
   * same outlets staged before it: a burst of broadcasts reaches each pump as one run, in
   * one native call for all of them, and leaves in full packets rather than one per event.
   * Returns false, having staged nothing and handed over everything staged before, if the
   * frame might pass some outlet's maxBufferedBytes: the caller then hands it over at once
   * and hears from each pump whether it took it.
   */
  stageBroadcast(outlets, frame) {
    const staged = this.#broadcast
    const joins = staged !== null && sameOutlets(staged.outlets, outlets) && staged.bytes + frame.length <= this.#size
    if (!joins) this.commit()
    const ahead = joins ? staged.bytes : 0
    const len = frame.length - HEADER_BYTES
    for (const outlet of outlets) {
      if (overfull(outlet.buffered + ahead, len, outlet.maxBuffered)) {
        this.commit()
        return false
      }
    }
    if (joins) {
      staged.frames.push(frame)
      staged.bytes += frame.length
    } else this.#broadcast = { outlets, frames: [frame], bytes: frame.length }
    for (const outlet of outlets) outlet.bytesOut += len
    if (!this.#queued) {
      this.#queued = true
      queueMicrotask(this.commit)
    }
    return true
  }

  #commitBroadcast() {
    const { outlets, frames, bytes } = this.#broadcast
    this.#broadcast = null
    let buffered
    try {
      buffered = this.#broadcastFrames(outlets, frames.length === 1 ? frames[0] : Buffer.concat(frames))
    } catch (err) {
      for (const outlet of outlets) outlet.onError(normalizeError(err))
      return
    }
    for (let i = 0; i < outlets.length; i++) {
      // -2: closed since; the frames are lost as anything in flight is, and the close event
      // says why. -1 (full) cannot happen: staging counted more than the pump holds.
      if (buffered[i] >= 0) outlets[i].buffered = buffered[i]
      else if (buffered[i] === -1) outlets[i].onError(bufferFull(outlets[i].buffered, bytes, outlets[i].maxBuffered))
    }
  }

  /**
   * Stages `text` as one frame for `outlet`. Throws ERR_IROH_FRAME_TOO_LARGE past the
   * outlet's maxFrameBytes and ERR_IROH_BUFFER_FULL past its maxBufferedBytes.
   */
  stageText(outlet, text) {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const most = HEADER_BYTES + text.length * 3
    if (most > this.#size) {
      this.commit()
      outlet.send(Buffer.from(text))
      return
    }
    this.#makeRoom(outlet, most)
    let len = this.#buffer.write(text, this.#at + HEADER_BYTES)
    if (len > outlet.maxFrame) throw frameTooLarge(len, outlet.maxFrame)
    const at = this.#at
    this.#checkRoom(outlet, len)
    // A commit moved the run's start: the text goes there.
    if (this.#at !== at) len = this.#buffer.write(text, this.#at + HEADER_BYTES)
    this.#append(outlet, len)
  }

  /** Stages `bytes` (checked against maxFrameBytes already) as one frame for `outlet`. */
  stageBytes(outlet, bytes) {
    const len = bytes.byteLength
    this.#makeRoom(outlet, HEADER_BYTES + len)
    this.#checkRoom(outlet, len)
    this.#buffer.set(bytes, this.#at + HEADER_BYTES)
    this.#append(outlet, len)
  }

  /** Commits another outlet's run, or a run that `most` more bytes would not fit after. */
  #makeRoom(outlet, most) {
    if (this.#by !== outlet || this.#at + most > this.#size) this.commit()
    if (this.#buffer === null || this.#at + most > this.#size) {
      this.#buffer = Buffer.allocUnsafeSlow(this.#size)
      this.#from = this.#at = 0
    }
  }

  /**
   * Throws ERR_IROH_BUFFER_FULL (and asks for a drain) if a frame of `len` bytes would take
   * the outlet past maxBufferedBytes. What is staged for it counts; when that alone is in
   * the way, it is handed over and the pump asked what it holds now.
   */
  #checkRoom(outlet, len) {
    if (!overfull(outlet.buffered + this.#at - this.#from, len, outlet.maxBuffered)) return
    this.commit()
    outlet.refresh()
    if (overfull(outlet.buffered, len, outlet.maxBuffered)) {
      outlet.wantDrain()
      throw bufferFull(outlet.buffered, HEADER_BYTES + len, outlet.maxBuffered)
    }
  }

  /** Writes the header of the frame of `len` bytes written after it, and stages it. */
  #append(outlet, len) {
    this.#buffer.writeUInt32BE(len, this.#at)
    this.#at += HEADER_BYTES + len
    outlet.bytesOut += len
    this.#by = outlet
    if (!this.#queued) {
      this.#queued = true
      queueMicrotask(this.commit)
    }
  }
}

/** Whether two lists hold the same outlets in the same order. */
function sameOutlets(a, b) {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

module.exports = { HEADER_BYTES, STAGING_BYTES, overfull, bufferFull, frameTooLarge, encodeFrame, Outlet, Staging }
