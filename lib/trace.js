'use strict'

// The JS side of the round-trip breakdown (bench/README.md, `BENCH_RTT_TRACE`): with
// ALKDEV_IROH_TRACE=1 in the environment at start, every plain event target stamps each
// frame at its JS hand-overs and its pump stamps the native ones (src/pump/trace.rs).
// Stamps are CLOCK_MONOTONIC nanoseconds (`process.hrtime` on Linux, as the native side),
// one per frame in frame order, so the k-th stamp of every stage, and of the peer's
// stages, belongs to the k-th frame. Off, a target checks the constant TRACE and nothing
// more per event.

const binding = require('./native.js')

const TRACE = binding.pumpTraceEnabled()
/** `target[STAMPS]()`: the target's and its pump's stamps so far, or null when not tracing. */
const STAMPS = Symbol('traceStamps')

const now = () => Number(process.hrtime.bigint())

/** One target's JS stamps. Covers plain targets: not acknowledged delivery, not broadcast. */
class TargetTrace {
  /** Frames sent: `dispatchEvent` (or the hub's and spoke's internal send) was called. */
  dispatched = []
  /** Frames sent: staging handed the run that holds it to the pump (a native call). */
  committed = []
  /** Frames received: the JS thread got the batch (the mailbox callback ran). */
  woken = []
  /** Frames received: its listeners are about to be called. */
  delivered = []
  /** When each batch not yet parsed arrived: batches are handled in order. */
  #arrivals = []

  dispatch() {
    this.dispatched.push(now())
  }

  /** A run of frames in wire format goes to the pump now. */
  commit(run) {
    const at = now()
    for (let i = 0; i + 4 <= run.length; i += 4 + run.readUInt32BE(i)) this.committed.push(at)
  }

  /** One frame goes to the pump now (a payload the pump frames). */
  commitOne() {
    this.committed.push(now())
  }

  arrive() {
    this.#arrivals.push(now())
  }

  /** The oldest batch that arrived turned out to hold `frames` frames. */
  parsed(frames) {
    const at = this.#arrivals.shift()
    for (let i = 0; i < frames; i++) this.woken.push(at)
  }

  deliver() {
    this.delivered.push(now())
  }

  stamps(pump) {
    const { dispatched, committed, woken, delivered } = this
    return { dispatched, committed, woken, delivered, ...pump.traceStamps() }
  }
}

module.exports = { TRACE, STAMPS, TargetTrace, now }
