'use strict'

// The napi-rs generated loader picks the prebuilt .node for this platform (or the one
// built from source in a clone). When none loads, say which platform that is and what to
// do, instead of the generic "cannot find native binding".

const PREBUILT = [
  'linux-x64-gnu', 'linux-x64-musl', 'linux-arm64-gnu', 'linux-arm64-musl',
  'darwin-x64', 'darwin-arm64', 'win32-x64-msvc', 'win32-arm64-msvc',
]

function platformName() {
  if (process.platform !== 'linux') return `${process.platform}-${process.arch}${process.platform === 'win32' ? '-msvc' : ''}`
  let musl
  try {
    musl = require('node:fs').readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    musl = !process.report?.getReport?.()?.header?.glibcVersionRuntime
  }
  return `linux-${process.arch}-${musl ? 'musl' : 'gnu'}`
}

function loadError(cause) {
  const platform = platformName()
  const inDeno = typeof globalThis.Deno !== 'undefined'
  const hint = inDeno
    ? 'Deno loads native addons only with --allow-ffi (and --allow-read, --allow-env): run it with those permissions.'
    : PREBUILT.includes(platform)
      ? `@alkdev/iroh-${platform} should have been installed as an optional dependency: reinstall without --no-optional / --omit=optional, and make sure your lock file was not made on another platform (npm bug 4828: delete package-lock.json and node_modules, then npm install).`
      : `There is no prebuilt binary for ${platform} (there are for ${PREBUILT.join(', ')}). Build it from source: clone the repository, install Rust (https://rustup.rs) and run npm install there.`
  const err = new Error(`@alkdev/iroh could not load its native addon on ${platform}. ${hint}`, { cause })
  err.code = 'ERR_IROH_NATIVE_BINDING'
  return err
}

try {
  module.exports = require('../binding.js')
} catch (cause) {
  throw loadError(cause)
}
