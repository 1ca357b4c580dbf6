'use strict'
throw new Error(
  '@napi-rs/wasm-tools is replaced by a stub in this repository (see scripts/stubs/cross-toolchain/README.md); ' +
    'this package builds no WebAssembly target',
)
