// What the browser build is made from, hashed: build:wasm records it in
// dist/build-stamp.json and the browser tests compare, so a stale build is caught.
import { createHash } from 'node:crypto'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const SOURCES = ['crates/wasm/src', 'crates/wasm/Cargo.toml', 'crates/wasm/Cargo.lock', 'crates/core/src', 'lib', 'scripts/build-wasm.mjs']

function files(root, path) {
  const full = join(root, path)
  let st
  try {
    st = statSync(full)
  } catch {
    return []
  }
  if (!st.isDirectory()) return [full]
  return readdirSync(full)
    .sort()
    .flatMap((name) => files(root, join(path, name)))
}

export function sourceHash(root) {
  const hash = createHash('sha256')
  for (const file of SOURCES.flatMap((p) => files(root, p))) {
    hash.update(relative(root, file))
    hash.update(readFileSync(file))
  }
  return hash.digest('hex')
}
