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

const rustc = process.env.WASM_RUSTC ?? '/usr/bin/rustc'
const cargo = process.env.WASM_CARGO ?? '/usr/bin/cargo'
const env = {
  ...process.env,
  RUSTC: rustc,
  RUSTC_BOOTSTRAP: '1',
  RUSTFLAGS: '--cfg getrandom_backend="wasm_js"',
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER: '/usr/lib/llvm-19/bin/wasm-ld',
  CC_wasm32_unknown_unknown: 'clang-19',
  AR_wasm32_unknown_unknown: 'llvm-ar-19',
  CARGO_TARGET_DIR: join(crate, 'target'),
}
delete env.RUSTUP_TOOLCHAIN
try {
  execFileSync(cargo, ['build', '--release', '-Zbuild-std=std,panic_abort', '--target', 'wasm32-unknown-unknown'], { cwd: crate, env, stdio: 'inherit' })
} catch (err) {
  console.error('build:wasm: the wasm build failed; install the toolchain with `bash scripts/wasm-toolchain.sh` (Debian packages and crates.io only)')
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
