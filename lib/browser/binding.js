'use strict'

// The browser bundle's lib/native.js: the WebAssembly build (crates/wasm) in place of the
// .node addon, with the same names (binding.d.ts) for what applies in a page. The bundler
// swaps it in (scripts/build-wasm.mjs); Node never loads this file. `install` runs once the
// module is instantiated, before any other file of lib/ loads (lib/browser/index.mjs).

const binding = {}

function install(wasm) {
  Object.assign(binding, wasm)
  binding.PumpCloseCode = wasm.pumpCloseCodes()
  // Binary batches arrive as Uint8Arrays; the JS face reads them as Buffers (its shim).
  binding.openMailbox = (receiver) =>
    wasm.openMailbox((to, mail) => {
      if (mail?.kind === 'binary') mail.data = Buffer.from(mail.data.buffer, mail.data.byteOffset, mail.data.byteLength)
      receiver(to, mail)
    })
}

Object.defineProperty(binding, 'install', { value: install, enumerable: false })

module.exports = binding
