// The browser entry of @alkdev/iroh (the `browser` export condition): instantiates the
// WebAssembly build, then loads the same JS face as Node over it. Bundled into
// dist/browser.mjs by `npm run build:wasm` (scripts/build-wasm.mjs).
import initWasm, * as wasm from '../../dist/wasm/alkdev_iroh_wasm.js'
import binding from './binding.js'

await initWasm({ module_or_path: new URL('./wasm/alkdev_iroh_wasm_bg.wasm', import.meta.url) })
binding.install(wasm)
const lib = await import('../index.js')

export const {
  Endpoint,
  Connection,
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
  generateSecretKey,
  nodeIdFromSecretKey,
  parseNodeId,
  setLogLevel,
  initLogging,
  startRelayServer,
} = lib.default ?? lib
export default lib.default ?? lib
