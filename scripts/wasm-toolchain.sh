#!/usr/bin/env bash
# Installs what `npm run build:wasm` and the browser tests need, from Debian's packages and
# crates.io only (no rustup target download): rustc-web/cargo-web/rust-web-src 1.96 (a Rust that
# can build std for wasm32-unknown-unknown with -Zbuild-std), lld-19 (wasm-ld), clang-19 (ring's C
# code), rust-web-clippy (npm run lint:wasm), chromium (headless, for the browser tests) and wasm-bindgen-cli at the version the wasm
# crate pins. Idempotent: skips what is already there.
# With WASM_TOOLCHAIN=rustup (GitHub's runners, which have clang, llvm and Chrome), rustup's
# wasm32-unknown-unknown target replaces the Debian packages; set CHROMIUM_PATH for the tests.
set -euo pipefail
WASM_BINDGEN_VERSION=0.2.130
install_wasm_bindgen() {
  if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
    # Without default features: no TLS stack (only the test runner downloads anything), about
    # a minute less to build. Not --locked: one dependency in its lockfile is not in the registry.
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --no-default-features
  fi
}
if [ "${WASM_TOOLCHAIN:-debian}" = rustup ]; then
  rustup target add wasm32-unknown-unknown
  install_wasm_bindgen
  echo "wasm toolchain: $(rustc --version) with rustup's wasm32-unknown-unknown, $(wasm-bindgen --version)"
  exit 0
fi
pkgs=(rustc-web cargo-web rust-web-src rust-web-clippy lld-19 clang-19 llvm-19 chromium)
# iroh 1.4 needs a newer Rust than bookworm's own rustc-web (1.85): the 1.96 one is in
# bookworm-security, so the package lists are refreshed before installing.
need=0
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need=1
done
if [ "$need" -eq 0 ] && ! dpkg --compare-versions "$(dpkg-query -W -f='${Version}' rustc-web)" ge 1.91; then need=1; fi
if [ "$need" -eq 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  sudo_=""
  [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  $sudo_ apt-get update >/dev/null
  $sudo_ apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null
fi
if ! dpkg --compare-versions "$(dpkg-query -W -f='${Version}' rustc-web)" ge 1.91; then
  echo "wasm toolchain: rustc-web $(dpkg-query -W -f='${Version}' rustc-web) is older than 1.91 (iroh 1.4 needs it); is bookworm-security in the apt sources?" >&2
  exit 1
fi
install_wasm_bindgen
echo "wasm toolchain: $(/usr/bin/rustc --version), $(wasm-bindgen --version)"
