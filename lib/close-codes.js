'use strict'

// The application close codes this package puts on connections, in one place. The 40xx
// codes are the native pump's (framing and stream errors), defined in Rust and read from the
// addon here (src/pump/message.rs documents each); the 41xx codes are the hub's and are
// defined here alone. __test__/close-codes.test.mjs checks both against the Rust source.

const binding = require('./native.js')

/** Close codes the native pump puts on a connection whose stream broke the framing. */
const { NORMAL: _normal, ...pumpCodes } = binding.PumpCloseCode
const PumpCloseCode = Object.freeze(pumpCodes)

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
  /**
   * Hub and spoke dialed each other at once: the connection the hub dialed is closed, the
   * one the spoke dialed is kept (both ends apply the same rule, see the README).
   */
  BOTH_DIALED: 4105,
})

/** The hub said no: a spoke that dials again would only be refused again. */
const FINAL_HUB_CODES = new Set([HubCloseCode.REFUSED, HubCloseCode.REVOKED, HubCloseCode.WRONG_ALPN])

module.exports = { PumpCloseCode, HubCloseCode, FINAL_HUB_CODES }
