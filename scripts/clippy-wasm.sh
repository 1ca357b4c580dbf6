#!/usr/bin/env bash
# clippy -D warnings on crates/wasm for wasm32-unknown-unknown, with Debian's rustc-web and
# rust-web-clippy (apt-get install rust-web-clippy; scripts/wasm-toolchain.sh has the rest),
# the same environment as `npm run build:wasm`. Not in .ci/run: a check build of std and
# iroh for wasm costs about 5 CPU minutes, which the 45-minute CI budget does not have.
set -euo pipefail
cd "$(dirname "$0")/../crates/wasm"
export CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTUP_TOOLCHAIN=
export RUSTFLAGS='--cfg getrandom_backend="wasm_js"'
export CC_wasm32_unknown_unknown=clang-19 AR_wasm32_unknown_unknown=llvm-ar-19
exec /usr/bin/cargo-clippy clippy --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort -- -D warnings
