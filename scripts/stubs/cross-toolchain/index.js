'use strict'
throw new Error(
  '@napi-rs/cross-toolchain is replaced by a stub in this repository (see scripts/stubs/cross-toolchain/README.md); ' +
    'install the real package (npm install --no-save @napi-rs/cross-toolchain) to cross-compile with --use-napi-cross',
)
