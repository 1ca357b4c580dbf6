// The pump interface: the one seam between the JS face of this package (event targets,
// message channels, acknowledged delivery, hub and spoke) and what moves the bytes. The
// native addon provides it (src/pump.rs); a WebAssembly build or an in-memory pair
// (__test__/memory-pump.mjs) can provide it too. Package-internal: not part of the public API.

/** What a raw pump is opened with. */
export interface RawPumpOptions {
  maxFrameBytes?: number
  maxBufferedBytes?: number
  /** How long a frame may stall half-received before the connection closes (4003). */
  frameTimeoutMs?: number
  /** Hand frames over one string each (`frames` messages), for a custom parser. */
  rawFrames?: boolean
  /** Hand frames over as bytes (`binary` messages), for a message channel. */
  binary?: boolean
}

/** How a pump closed; `errorCode` when it closed because of an error. */
export interface RawPumpClosed {
  code: number
  reason: string
  kind: 'local' | 'remote' | 'timeout' | 'reset' | 'transport'
  errorCode?: string
  errorMessage?: string
}

/**
 * What a raw pump hands to JS, in order. After a `json`, `frames` or `binary` batch the
 * pump hands over the next only once JS called `ack()` (it may hold two); `closed` is last.
 */
export type RawPumpMessage =
  /** Events of a batch as one JSON array, each checked to be an object with a string `type`. */
  | { kind: 'json'; json: string }
  /** Frames of a batch as one string each (a custom parser decides what they are). */
  | { kind: 'frames'; frames: string[] }
  /** Frames of a batch in wire format: 4-byte big-endian length, then the payload, each. */
  | { kind: 'binary'; data: Buffer }
  /** The send buffer became empty after `wantDrain()`. */
  | { kind: 'drain' }
  | { kind: 'closed'; closed: RawPumpClosed }

/** The limits a raw pump enforces, so that JS can check frames it stages. */
export interface RawPumpLimits {
  maxFrameBytes: number
  maxBufferedBytes: number
  /** The pump's number for a native broadcast; 0 where there is none. */
  broadcastId: number
}

/** One end of a stream of frames. Every send returns the bytes buffered afterwards. */
export interface RawPump {
  /** One payload; the pump frames it. */
  send(payload: Uint8Array): number
  /** Frames encoded back to back in wire format; the pump copies them. */
  sendFrames(frames: Uint8Array): number
  /** Like `sendFrames`, but the pump takes the buffer itself: JS never writes into it again. */
  sendStaged(frames: Buffer): number
  limits(): RawPumpLimits
  bufferedAmount(): number
  /** Asks for a `drain` message once the send buffer is empty. */
  wantDrain(): void
  /** An empty frame the peer's transport acknowledges and its JS never sees (a liveness probe). */
  nudge(): void
  /** JS took the last batch. */
  ack(): void
  /** Resolves once everything sent so far was handed to the transport. */
  flush(): Promise<void>
  /** Closes the connection as for a malformed frame (4002), reporting `ERR_IROH_PROTOCOL` with `reason`. */
  malformedFrame(reason: string): void
  /** Sends what is queued, waits until the peer has it, then closes with `code` and `reason`. */
  close(code?: number, reason?: string): Promise<void>
  /** The round-trip stamps when tracing (native only). */
  traceStamps?(): unknown
}

/** Where pumps come from: one connection's one bidirectional stream, or a stand-in. */
export interface PumpSource {
  /** The connection the pump runs on (paths, ref/unref), or null. */
  connection: import('../index').Connection | null
  /** Opens the raw pump; every message it has for JS goes to `deliver`, `closed` last. */
  open(options: RawPumpOptions, deliver: (message: RawPumpMessage) => void): RawPump
}
