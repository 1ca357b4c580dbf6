// The install path users take, end to end: a real npm registry (verdaccio) on 127.0.0.1,
// the main package and this platform's binary package published to it from this
// checkout, then `npm install @alkdev/iroh` in a fresh project from that registry only,
// and a hub/spoke exchange from ESM and from CommonJS with deprecations made fatal.
// Everything it makes goes in a temp dir that is removed at the end.
//
//   node scripts/e2e-install.mjs     (after a release build: scripts/build-portable.sh)
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const platform = `${process.platform}-${process.arch}${process.platform === 'linux' ? '-gnu' : process.platform === 'win32' ? '-msvc' : ''}`
const binary = `iroh.${platform}.node`
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const work = mkdtempSync(join(tmpdir(), 'alkdev-iroh-e2e-'))
const failures = []
let registry = null

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...options, env: { ...process.env, npm_config_loglevel: 'error', ...options.env } })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`)
  return r
}

function check(ok, what) {
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${what}`)
  if (!ok) failures.push(what)
}

function du(dir) {
  let bytes = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    bytes += entry.isDirectory() ? du(path) : statSync(path).size
  }
  return bytes
}

const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`

async function startRegistry() {
  const dir = join(work, 'registry')
  console.log('== installing verdaccio')
  mkdirSync(dir)
  // verdaccio-audit asks for node-fetch by its `cjs` dist-tag (2.x), which registry
  // mirrors that keep only `latest` do not serve: name the version.
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ private: true, dependencies: { verdaccio: '6' }, overrides: { 'verdaccio-audit': { 'node-fetch': '2.7.0' } } }),
  )
  run(npm, ['install', '--no-audit', '--no-fund'], { cwd: dir })
  const port = 4873 + Math.floor(Math.random() * 1000)
  // No uplinks: nothing is fetched from anywhere else.
  writeFileSync(
    join(dir, 'config.yaml'),
    [
      `storage: ${join(dir, 'storage')}`,
      `auth: { htpasswd: { file: ${join(dir, 'htpasswd')}, max_users: 10 } }`,
      'packages:',
      "  '@alkdev/*': { access: $all, publish: $authenticated }",
      "  '**': { access: $all }",
      'log: { type: stdout, format: pretty, level: error }',
      '',
    ].join('\n'),
  )
  const bin = join(dir, 'node_modules', 'verdaccio', 'bin', 'verdaccio')
  const child = spawn(process.execPath, [bin, '--config', join(dir, 'config.yaml'), '--listen', `127.0.0.1:${port}`], { stdio: 'inherit' })
  const url = `http://127.0.0.1:${port}/`
  for (const until = Date.now() + 60_000; ; ) {
    try {
      if ((await fetch(`${url}-/ping`)).ok) break
    } catch {}
    if (Date.now() > until || child.exitCode !== null) throw new Error('verdaccio did not start')
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  const res = await fetch(`${url}-/user/org.couchdb.user:ci`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'ci', password: 'ci-password' }),
  })
  const { token } = await res.json()
  if (!token) throw new Error(`verdaccio gave no token (${res.status})`)
  return { child, url, token }
}

/** A project dir whose npm talks to the local registry only. */
function project(name, token) {
  const dir = join(work, name)
  cpSync(join(root, 'scripts', 'e2e'), dir, { recursive: true })
  const host = registry.url.replace(/^http:/, '')
  writeFileSync(join(dir, '.npmrc'), `registry=${registry.url}\n${host}:_authToken=${token}\n`)
  return dir
}

try {
  if (!existsSync(join(root, binary))) throw new Error(`${binary} is missing: build it first (scripts/build-portable.sh)`)
  registry = await startRegistry()
  const npmrcArgs = ['--registry', registry.url, `--${registry.url.replace(/^http:/, '')}:_authToken=${registry.token}`]

  console.log('== publishing from this checkout')
  const platformDir = join(work, 'platform-package')
  cpSync(join(root, 'npm', platform), platformDir, { recursive: true })
  cpSync(join(root, binary), join(platformDir, binary))
  run(npm, ['publish', platformDir, ...npmrcArgs])
  // The main package as it is published: packed from the checkout, then given its
  // optionalDependencies (scripts/add-optional-deps.mjs, as the release workflow does).
  const packDir = join(work, 'main-package')
  mkdirSync(packDir)
  const packed = JSON.parse(run(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], { cwd: root }).stdout)[0]
  run('tar', ['xzf', join(packDir, packed.filename), '-C', packDir])
  run(process.execPath, [join(root, 'scripts', 'add-optional-deps.mjs'), join(packDir, 'package', 'package.json')])
  run(npm, ['publish', join(packDir, 'package'), '--ignore-scripts', ...npmrcArgs])
  const files = packed.files.map((f) => f.path)
  console.log(`main package: ${files.length} files, ${(packed.size / 1024).toFixed(1)} KiB packed, ${(packed.unpackedSize / 1024).toFixed(1)} KiB unpacked`)
  check(files.every((f) => !/\.(rs|node)$|^__test__|^src\/|^bench\/|^fuzz\//.test(f)), 'the main package carries no Rust sources, binaries or tests')
  // The browser build (dist/, made by `npm run build:wasm`) ships in the main package: its
  // wasm is allowed its size goal, 1.5 MiB gzipped, on top of the JS.
  const browserBuild = ['dist/browser.mjs', 'dist/wasm/alkdev_iroh_wasm.js', 'dist/wasm/alkdev_iroh_wasm_bg.wasm']
  if (process.env.CI || existsSync(join(root, 'dist/build-stamp.json'))) {
    check(browserBuild.every((f) => files.includes(f)), 'the main package carries the browser build (dist/browser.mjs and its wasm)')
  }
  const wasmAllowance = files.includes(browserBuild[2]) ? 1.5 * 2 ** 20 : 0
  // 119 KiB packed at the last count: lib/, the types, the README (a quarter of it) and the
  // command line. The bound is there to catch what should not ship (a build tree, tests,
  // fixtures: megabytes), not to fail on the next README paragraph.
  check(packed.size < 160 * 1024 + wasmAllowance, 'the main package packs under 160 KiB, besides the browser build\'s wasm (at most 1.5 MiB gzipped)')

  console.log('== npm install @alkdev/iroh in a fresh project, from the local registry only')
  const app = project('app', registry.token)
  run(npm, ['install', '--no-audit', '--no-fund', '@alkdev/iroh'], { cwd: app })
  const installed = du(join(app, 'node_modules'))
  const nodeFile = join(app, 'node_modules', '@alkdev', `iroh-${platform}`, binary)
  console.log(`installed node_modules: ${mib(installed)}; ${binary}: ${mib(statSync(nodeFile).size)}`)
  check(installed < 30 * 2 ** 20, 'the installed package takes under 30 MiB')
  const installedManifest = JSON.parse(readFileSync(join(app, 'node_modules', '@alkdev', 'iroh', 'package.json'), 'utf8'))
  check(Object.keys(installedManifest.optionalDependencies ?? {}).length === 8, 'the main package lists the 8 platform packages as optionalDependencies')

  // The command line as `npx iroh` runs it: npm's link in node_modules/.bin.
  const cli = spawnSync(join(app, 'node_modules', '.bin', 'iroh'), ['--help'], { cwd: app, encoding: 'utf8', timeout: 30_000 })
  if (cli.status !== 0) console.log(`iroh --help: exit ${cli.status}\n${cli.stdout}\n${cli.stderr}${cli.error ?? ''}`)
  check(cli.status === 0 && cli.stdout.startsWith('Usage: iroh <command>'), 'the installed command line: node_modules/.bin/iroh --help')

  for (const [script, kind] of [['exchange.mjs', 'ESM import'], ['exchange.cjs', 'CommonJS require']]) {
    const r = spawnSync(process.execPath, ['--throw-deprecation', '--trace-warnings', script], { cwd: app, encoding: 'utf8', timeout: 60_000 })
    const ok = r.status === 0 && r.stdout.trim() === 'exchanged 100 events each way' && r.stderr === ''
    if (!ok) console.log(`${kind}: exit ${r.status}\n${r.stdout}\n${r.stderr}`)
    check(ok, `${kind}: a hub/spoke exchange, no warning on load`)
  }
} catch (err) {
  console.log(err.stack)
  failures.push(err.message)
} finally {
  registry?.child.kill()
  rmSync(work, { recursive: true, force: true })
}
console.log(failures.length === 0 ? 'e2e install: all passed' : `e2e install: ${failures.length} failed`)
process.exit(failures.length === 0 ? 0 : 1)
