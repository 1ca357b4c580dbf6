// ESM entry: the implementation is CommonJS, so both loaders share one native instance.
import cjs from './index.js'

export const {
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
  RelayServer,
  startRelayServer,
  generateSecretKey,
  nodeIdFromSecretKey,
  parseNodeId,
  setLogLevel,
  initLogging,
} = cjs
export default cjs
