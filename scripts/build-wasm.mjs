// `npm run build:wasm`: builds the browser build. crates/wasm for wasm32-unknown-unknown
// with Debian's rustc-web (scripts/wasm-toolchain.sh installs it; -Zbuild-std builds std,
// as no rustup target is needed), wasm-bindgen's glue, then dist/browser.mjs: lib/ bundled
// with esbuild, lib/native.js swapped for the wasm binding. Prints the sizes, and writes
// dist/build-stamp.json so that the browser tests can tell a stale build from a fresh one.
// `--rust-only` stops after the wasm and its glue: .ci/run starts that before `npm ci`.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync, mkdirSync, statSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sourceHash } from './wasm-sources.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const crate = join(root, 'crates/wasm')
const out = join(root, 'dist')
const started = Date.now()

// Two toolchains: Debian's rustc-web building std itself (this machine: no rustup target can
// be downloaded), or, with WASM_TOOLCHAIN=rustup (GitHub's runners), rustup's ordinary
// wasm32-unknown-unknown target with its own linker. ring's C code needs clang either way.
const rustup = process.env.WASM_TOOLCHAIN === 'rustup'
const env = {
  ...process.env,
  RUSTFLAGS: '--cfg getrandom_backend="wasm_js"',
  CC_wasm32_unknown_unknown: process.env.CC_wasm32_unknown_unknown ?? (rustup ? 'clang' : 'clang-19'),
  AR_wasm32_unknown_unknown: process.env.AR_wasm32_unknown_unknown ?? (rustup ? 'llvm-ar' : 'llvm-ar-19'),
  CARGO_TARGET_DIR: join(crate, 'target'),
}
let cargo = 'cargo'
const cargoArgs = ['build', '--release', '--target', 'wasm32-unknown-unknown']
if (!rustup) {
  cargo = process.env.WASM_CARGO ?? '/usr/bin/cargo'
  env.RUSTC = process.env.WASM_RUSTC ?? '/usr/bin/rustc'
  env.RUSTC_BOOTSTRAP = '1'
  env.CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER = '/usr/lib/llvm-19/bin/wasm-ld'
  cargoArgs.push('-Zbuild-std=std,panic_abort')
  delete env.RUSTUP_TOOLCHAIN
}
try {
  execFileSync(cargo, cargoArgs, { cwd: crate, env, stdio: 'inherit' })
} catch (err) {
  console.error('build:wasm: the wasm build failed; install the toolchain with `bash scripts/wasm-toolchain.sh` (Debian packages and crates.io; WASM_TOOLCHAIN=rustup for rustup\'s target)')
  process.exit(err.status ?? 1)
}
const built = join(crate, 'target/wasm32-unknown-unknown/release/alkdev_iroh_wasm.wasm')
mkdirSync(join(out, 'wasm'), { recursive: true })
execFileSync('wasm-bindgen', ['--target', 'web', '--out-dir', join(out, 'wasm'), built], { stdio: 'inherit' })

if (process.argv.includes('--rust-only')) {
  console.log(`build:wasm: wasm and glue built in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  process.exit(0)
}
const esbuild = await import('esbuild')
const browser = join(root, 'lib/browser')
await esbuild.build({
  entryPoints: [join(browser, 'index.mjs')],
  outfile: join(out, 'browser.mjs'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  legalComments: 'none',
  inject: [join(browser, 'globals.js')],
  // The wasm glue is its own file next to the bundle, loaded with its .wasm.
  external: ['./wasm/alkdev_iroh_wasm.js'],
  plugins: [
    {
      name: 'browser-seams',
      setup(build) {
        // The native addon's loader, keep-alive handles and node:crypto have browser stand-ins.
        build.onResolve({ filter: /^\.\/native\.js$/ }, () => ({ path: join(browser, 'binding.js') }))
        build.onResolve({ filter: /^\.\.\/\.\.\/dist\/wasm\/alkdev_iroh_wasm\.js$/ }, () => ({ path: './wasm/alkdev_iroh_wasm.js', external: true }))
        build.onResolve({ filter: /^\.\/keep-alive\.js$/ }, (args) =>
          args.importer.startsWith(browser) ? undefined : { path: join(browser, 'keep-alive.js') },
        )
        // hub.serveStatus's HTTP server (node:http) has a stand-in that says it is Node only.
        build.onResolve({ filter: /^\.\/status-server\.js$/ }, (args) =>
          args.importer.startsWith(browser) ? undefined : { path: join(browser, 'status-server.js') },
        )
        // Each node: module lib/ uses has a stand-in here, named after it (lib/browser/crypto.js).
        build.onResolve({ filter: /^node:/ }, (args) => {
          const standIn = join(browser, `${args.path.slice(5)}.js`)
          if (existsSync(standIn)) return { path: standIn }
          return { errors: [{ text: `${args.path} (from ${args.importer}) has no browser stand-in: add lib/browser/${args.path.slice(5)}.js with what lib/ uses of it` }] }
        })
        build.onResolve({ filter: /^buffer$/ }, () => ({ path: join(root, 'node_modules/buffer/index.js') }))
      },
    },
  ],
})

const wasmFile = join(out, 'wasm/alkdev_iroh_wasm_bg.wasm')
const wasmBytes = readFileSync(wasmFile)
const gz = gzipSync(wasmBytes, { level: 9 }).length
const js = statSync(join(out, 'browser.mjs')).size
const mib = (n) => `${(n / 1024 / 1024).toFixed(2)} MiB`
const stamp = { sources: sourceHash(root), wasmBytes: wasmBytes.length, wasmGzipBytes: gz, bundleBytes: js }
writeFileSync(join(out, 'build-stamp.json'), `${JSON.stringify(stamp, null, 2)}\n`)
console.log(
  `build:wasm: ${wasmBytes.length} bytes of wasm (${mib(wasmBytes.length)}), ${gz} gzipped (${mib(gz)}); dist/browser.mjs ${js} bytes; ${((Date.now() - started) / 1000).toFixed(1)} s`,
)
