#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for FUZZ_SECONDS (default 60) with libFuzzer.
#
# Builds the targets the way `cargo fuzz build -s none` does (SanitizerCoverage through
# stable -C flags), so a stable toolchain is enough: no nightly, no cargo-fuzz install.
# Rust code needs no AddressSanitizer to be memory safe; what this hunts for is panics,
# broken round trips and unbounded allocations. A crash leaves its input in
# fuzz/artifacts/<target>/ and fails the run: turn it into a unit test.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-60}"
targets=(frame_decoder identity topic_envelope)

export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
# Its own target dir: these flags would otherwise rebuild the addon's dependencies.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-../target/fuzz}"
# An explicit --target keeps these flags off build scripts and proc macros.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --locked --bins --target "$host"
bin="$CARGO_TARGET_DIR/$host/release"

status=0
for t in "${targets[@]}"; do
  corpus="$(mktemp -d)"
  cp -r "seeds/$t/." "$corpus/" 2>/dev/null || true
  mkdir -p "artifacts/$t"
  echo "== fuzz $t for ${seconds}s"
  # -rss_limit_mb: an input that makes the decoder allocate without bound is a crash.
  log="$(mktemp)"
  if "$bin/$t" "$corpus" -max_total_time="$seconds" -rss_limit_mb=1024 \
      -max_len=65536 -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|Done )' "$log" || tail -n 5 "$log"
  else
    tail -n 40 "$log"
    echo "fuzz target $t FAILED: the input is in fuzz/artifacts/$t/"
    status=1
  fi
  rm -f "$log"
  rm -rf "$corpus"
done
exit "$status"
