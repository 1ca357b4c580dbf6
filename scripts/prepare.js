'use strict'
// `npm ci` in a clone of this repository builds the native addon from source (release).
// Installs of the published package never run this: they get a prebuilt binary.
const { spawnSync } = require('node:child_process')

const r = spawnSync(
  'npx',
  ['napi', 'build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts'],
  { stdio: 'inherit', shell: process.platform === 'win32' },
)
if (r.status !== 0) {
  console.error('building the native addon failed: a Rust toolchain (rustup.rs) is needed to build from source')
  process.exit(r.status ?? 1)
}
