'use strict'

// Acknowledged delivery on the wire: the negotiated extension of the wire protocol (README,
// "Wire protocol"). Both ends must offer it: the dialer offers `ackAlpn(alpn)` next to
// `alpn`, and a hub lists it first, so a peer that knows only the plain protocol never sees
// it. Control frames are ordinary frames whose type starts with U+0000, which no event of
// this extension may use.

const SUFFIX = '/alkdev-acks/1'
/** The ALPN that offers acknowledged delivery on top of `alpn`. */
const ackAlpn = (alpn) => `${alpn}${SUFFIX}`
const isAckAlpn = (alpn, base) => alpn === ackAlpn(base)

const CONTROL = '\u0000'
/** `{ session, from, greeting, ack: { session, seq } }`: opens a connection's numbering. */
const HELLO = `${CONTROL}hello`
/** `seq`: every event up to `seq` was delivered to the listeners. */
const ACK = `${CONTROL}ack`
/** Asks for an ACK at once. */
const PING = `${CONTROL}ping`
const isControl = (type) => type.charCodeAt(0) === 0
const controlText = (type, detail) => JSON.stringify({ type, detail })
/** Frames of a custom serializer that are control frames nonetheless (control frames are JSON). */
const CONTROL_PREFIX = '{"type":"\\u0000'

module.exports = { ackAlpn, isAckAlpn, isControl, controlText, HELLO, ACK, PING, CONTROL_PREFIX }
