'use strict'

// The application close codes this package puts on connections, in one place. The 40xx
// codes are the native pump's (framing and stream errors) and are defined in Rust; they are
// restated here for JS and the docs, and __test__/close-codes.test.mjs checks that the two
// agree. The 41xx codes are the hub's and are defined here alone.

/** Close codes the native pump puts on a connection whose stream broke the framing. */
const PumpCloseCode = Object.freeze({
  /** A frame's length is over `maxFrameBytes`. */
  FRAME_TOO_LARGE: 4001,
  /** A frame is not an event (not JSON, not an object with a string type, or the parser refused it). */
  MALFORMED_FRAME: 4002,
  /** The stream ended, or stalled past `frameTimeoutMs`, inside a frame. */
  TRUNCATED_FRAME: 4003,
  /** Reading or writing the stream failed. */
  STREAM_ERROR: 4004,
})

/** Close codes the hub puts on the connections it ends. */
const HubCloseCode = Object.freeze({
  /** The node id is not allowed (or is denied). */
  REFUSED: 4100,
  /** The node id was revoked while connected. */
  REVOKED: 4101,
  /** The same node id connected again; the older connection is closed. */
  REPLACED: 4102,
  /** The connection asked for an ALPN that is not the hub's. */
  WRONG_ALPN: 4103,
  /** The hub is closing. */
  CLOSING: 4104,
})

/** The hub said no: a spoke that dials again would only be refused again. */
const FINAL_HUB_CODES = new Set([HubCloseCode.REFUSED, HubCloseCode.REVOKED, HubCloseCode.WRONG_ALPN])

module.exports = { PumpCloseCode, HubCloseCode, FINAL_HUB_CODES }
