'use strict'

// Keys and node ids, checked natively.

const binding = require('./native.js')
const { nativeSync } = require('./pending.js')
const { requireString } = require('./errors.js')

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

module.exports = { generateSecretKey, nodeIdFromSecretKey, parseNodeId }
