// What the scale benchmark's processes share.
export const ALPN = 'alkdev-scale/1'
export const LOCAL = { relayMode: 'disabled', addressLookup: 'none', bindAddr: '127.0.0.1:0' }
export { SMALL_EVENT } from '../workload.mjs'
