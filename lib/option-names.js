'use strict'

// The names of the options the native side takes, one list per options object. The Rust
// structs (#[napi(object)]) are the source; binding.d.ts is generated from them and
// index.d.ts re-exports it. JS refuses any other name: a misspelt option (say `relaymode`)
// would otherwise be ignored and silently use the default. __test__/option-names.test.mjs
// fails when a list here drifts from the Rust struct or from binding.d.ts.

const { invalidArgument } = require('./errors.js')

/** `EndpointOptions` (Endpoint.create). */
const ENDPOINT_OPTIONS = new Set([
  'alpns', 'secretKey', 'secretKeyPath', 'relayMode', 'relayCaCertificates', 'relayOnly',
  'bindAddr', 'addressLookup', 'idleTimeoutMs', 'keepAliveMs',
])

/** `RelayServerOptions` (startRelayServer). */
const RELAY_SERVER_OPTIONS = new Set(['bindAddr', 'quicPort', 'hostname', 'certificatePem', 'privateKeyPem'])

/** Throws ERR_IROH_INVALID_ARGUMENT for a name of `options` that is not in `known`. */
function checkOptionNames(options, known, what) {
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw invalidArgument(`unknown ${what} option ${JSON.stringify(key)}`)
  }
}

module.exports = { ENDPOINT_OPTIONS, RELAY_SERVER_OPTIONS, checkOptionNames }
