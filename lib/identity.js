'use strict'

// Keys and node ids, checked natively.

const binding = require('./native.js')
const { nativeSync } = require('./pending.js')
const { irohError, requireString } = require('./errors.js')

function generateSecretKey() {
  return nativeSync(() => binding.generateSecretKey())
}

function nodeIdFromSecretKey(secretKey) {
  return nativeSync(() => binding.nodeIdFromSecretKey(requireString(secretKey, 'secretKey', 'ERR_IROH_INVALID_SECRET_KEY')))
}

/** A node id in the form `remoteNodeId()` returns; throws ERR_IROH_INVALID_NODE_ID. */
function parseNodeId(nodeId) {
  return nativeSync(() => binding.parseNodeId(requireString(nodeId, 'nodeId', 'ERR_IROH_INVALID_NODE_ID')))
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'

/**
 * The node id in an endpoint ticket: `endpoint`, then RFC 4648 base32 (no padding) of the
 * postcard encoding of iroh-tickets 1.0's `TicketWireFormat::Variant1`: a variant byte 0,
 * then the node id's 32 bytes (then the addresses, not needed here). Throws
 * ERR_IROH_INVALID_NODE_ID for anything else.
 */
function ticketNodeId(ticket) {
  const body = ticket.trim().toLowerCase().slice('endpoint'.length)
  const bytes = []
  let bits = 0
  let value = 0
  // 33 bytes are all that is read: 53 characters carry them.
  for (const ch of body.slice(0, 53)) {
    const digit = BASE32.indexOf(ch)
    if (digit === -1) break
    value = (value << 5) | digit
    bits += 5
    if (bits >= 8) {
      bits -= 8
      bytes.push((value >>> bits) & 0xff)
    }
  }
  if (!ticket.trim().toLowerCase().startsWith('endpoint') || bytes.length < 33 || bytes[0] !== 0) {
    throw irohError('ERR_IROH_INVALID_NODE_ID', 'not an endpoint ticket whose node id can be read')
  }
  return parseNodeId(Buffer.from(bytes.slice(1, 33)).toString('hex'))
}

/** The node id a dial target names: a node id, a ticket, or an `{ nodeId }` address. */
function nodeIdOfTarget(target) {
  if (target !== null && typeof target === 'object') return parseNodeId(target.nodeId)
  if (typeof target === 'string' && target.trim().toLowerCase().startsWith('endpoint')) return ticketNodeId(target)
  return parseNodeId(target)
}

module.exports = { generateSecretKey, nodeIdFromSecretKey, parseNodeId, nodeIdOfTarget }
