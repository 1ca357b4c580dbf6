#!/usr/bin/env bash
# Builds the release addon for a Linux gnu target against glibc 2.17, so that it loads on
# old distributions, with napi-rs's prebuilt cross toolchain (GCC + an old-glibc sysroot,
# from the npm package @napi-rs/cross-toolchain-<host>-target-<arch>), then checks the
# result: the newest glibc symbol version it needs and its size.
#
#   bash scripts/build-portable.sh [x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu]
#
# Needs a Linux x64 host. The toolchain is cached under target/cross-toolchain/.
# (`napi build --use-napi-cross` does the same, but needs the real
# @napi-rs/cross-toolchain package, which package.json stubs out: scripts/stubs/.)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-x86_64-unknown-linux-gnu}"
max_glibc="2.28"
max_bytes=$((16 * 1024 * 1024))
toolchain_version="1.0.0"

case "$target" in
  x86_64-unknown-linux-gnu) arch=x86_64; platform=linux-x64-gnu ;;
  aarch64-unknown-linux-gnu) arch=aarch64; platform=linux-arm64-gnu ;;
  *) echo "build-portable.sh: unsupported target $target" >&2; exit 2 ;;
esac
[ "$(uname -sm)" = "Linux x86_64" ] || { echo "build-portable.sh needs a Linux x86_64 host" >&2; exit 2; }

cache="$PWD/target/cross-toolchain/$target"
if [ ! -x "$cache/bin/$target-gcc" ]; then
  echo "== fetching @napi-rs/cross-toolchain-x64-target-$arch@$toolchain_version"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "@napi-rs/cross-toolchain-x64-target-$arch@$toolchain_version" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$cache"
  tar xJf "$tmp/package/$target.tar.xz" -C "$cache"
  rm -rf "$tmp"
fi

# Link with Rust's own lld (as host builds do) rather than the toolchain's old GNU ld: its
# identical-code folding takes about 0.3 MB off. gcc 4.8 cannot be told -fuse-ld=lld, so
# an `ld` in a -B directory stands in for the toolchain's.
lld_dir="$PWD/target/cross-toolchain/lld"
rust_lld="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/rust-lld"
mkdir -p "$lld_dir"
printf '#!/bin/sh\nexec "%s" -flavor gnu "$@"\n' "$rust_lld" > "$lld_dir/ld"
chmod +x "$lld_dir/ld"

env_target="$(echo "$target" | tr '[:lower:]-' '[:upper:]_')"
cc_target="$(echo "$target" | tr '-' '_')"
export "CARGO_TARGET_${env_target}_LINKER=$cache/bin/$target-gcc"
export "CC_${cc_target}=$cache/bin/$target-gcc"
export "CXX_${cc_target}=$cache/bin/$target-g++"
export "AR_${cc_target}=$cache/bin/$target-ar"
export "CARGO_TARGET_${env_target}_RUSTFLAGS=-C link-arg=-B$lld_dir -C link-arg=-Wl,--icf=all"

echo "== napi build --release --target $target"
npx napi build --platform --release --target "$target" --js binding.js --dts binding.d.ts

binary="iroh.$platform.node"
needs="$(objdump -T "$binary" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)"
bytes="$(stat -c %s "$binary")"
echo "$binary: $bytes bytes, needs glibc $needs"
status=0
if [ "$(printf '%s\n%s\n' "$needs" "$max_glibc" | sort -V | tail -n 1)" != "$max_glibc" ]; then
  echo "FAIL: $binary needs glibc $needs, more than $max_glibc" >&2
  status=1
fi
if [ "$bytes" -gt "$max_bytes" ]; then
  echo "FAIL: $binary is $bytes bytes, more than $max_bytes" >&2
  status=1
fi
exit "$status"
