// What the restart benchmark's processes share.
export const ALPN = 'alkdev-restart/1'
export const LOCAL = { relayMode: 'disabled', addressLookup: 'none', bindAddr: '127.0.0.1:0' }
