'use strict'

const binding = require('./native.js')
const { Endpoint } = require('./endpoint.js')
const { Connection, SendStream, RecvStream } = require('./connection.js')
const { nativeSync } = require('./pending.js')
const { requireString } = require('./errors.js')
const { IrohEventTarget, createSpokeIrohEventTarget, createHubIrohEventTarget } = require('./event-target.js')
const { MessageChannel, createMessageChannel } = require('./message-channel.js')
const { Hub, createHub } = require('./hub.js')
const { HubCloseCode } = require('./close-codes.js')
const { ReconnectingSpoke, connectSpoke, listenForHub } = require('./spoke.js')
const { RelayServer, startRelayServer } = require('./relay.js')
const { Topic, TopicEvent, joinTopic } = require('./topic.js')
const { generateSecretKey, nodeIdFromSecretKey, parseNodeId } = require('./identity.js')

function setLogLevel(level) {
  nativeSync(() => binding.setLogLevel(requireString(level, 'level')))
}

/** The community binding's name; with no argument it logs at `info`, as there. */
function initLogging(level = 'info') {
  setLogLevel(level)
}

// Shorthand properties, so that Node's ESM loader sees the names of this CommonJS module.
module.exports = {
  Endpoint,
  Connection,
  SendStream,
  RecvStream,
  IrohEventTarget,
  createSpokeIrohEventTarget,
  createHubIrohEventTarget,
  MessageChannel,
  createMessageChannel,
  Hub,
  HubCloseCode,
  createHub,
  ReconnectingSpoke,
  connectSpoke,
  listenForHub,
  Topic,
  TopicEvent,
  joinTopic,
  RelayServer,
  startRelayServer,
  generateSecretKey,
  nodeIdFromSecretKey,
  parseNodeId,
  setLogLevel,
  initLogging,
}
