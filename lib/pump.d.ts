// The pump interface: the one seam between the JS face of this package (event targets,
// message channels, acknowledged delivery, hub and spoke) and what moves the bytes. The
// native addon provides it (src/pump.rs, whose doc comments binding.d.ts carries); a
// WebAssembly build or an in-memory pair (__test__/memory-pump.mjs) can provide it too.
// Package-internal: not part of the public API. The shapes are the generated ones,
// re-exported, not restated.

import type { EventPump, PumpClosed, PumpLimits, PumpMessage, PumpOptions } from '../binding'
import type { Connection } from '../index'

/** What a raw pump is opened with. */
export type RawPumpOptions = PumpOptions

/** How a pump closed; `errorCode` when it closed because of an error. */
export type RawPumpClosed = PumpClosed

/**
 * What a raw pump hands to JS, in order. After a `json`, `frames` or `binary` batch the
 * pump hands over the next only once JS called `ack()` (it may hold two); `closed` is last.
 */
export type RawPumpMessage = PumpMessage

/** The limits a raw pump enforces, so that JS can check frames it stages (`broadcastId` 0 where there is no native broadcast). */
export type RawPumpLimits = PumpLimits

/** One end of a stream of frames: the native `EventPump`'s methods; `traceStamps` only natively. */
export type RawPump = Omit<EventPump, 'traceStamps'> & Partial<Pick<EventPump, 'traceStamps'>>

/** Where pumps come from: one connection's one bidirectional stream, or a stand-in. */
export interface PumpSource {
  /** The connection the pump runs on (paths, ref/unref), or null. */
  connection: Connection | null
  /** Opens the raw pump; every message it has for JS goes to `deliver`, `closed` last. */
  open(options: RawPumpOptions, deliver: (message: RawPumpMessage) => void): RawPump
}
