// The package under Deno 2 (the `deno` CLI from npm): a hub and a spoke exchange
// events, and without --allow-ffi the error says what to do instead of "cannot find".
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const fixture = fileURLToPath(new URL('./fixtures/deno-exchange.mjs', import.meta.url))

// The deno CLI from npm, a dev dependency: `npm ci` installs its launcher and the binary
// package of this platform (an optional dependency), so CI never runs without it.
function findDeno() {
  let launcher
  try {
    launcher = createRequire(import.meta.url).resolve('deno/bin.cjs')
  } catch {
    return { why: 'the deno dev dependency is not installed: run npm ci' }
  }
  if (spawnSync(process.execPath, [launcher, '--version'], { encoding: 'utf8', timeout: 60_000 }).status !== 0) {
    return { why: 'the deno binary does not run on this platform' }
  }
  return { launcher }
}

const { launcher: deno, why: unavailable = null } = findDeno()
if (unavailable) console.warn(`Deno tests skipped: ${unavailable}`)
const runDeno = (permissions) =>
  spawnSync(process.execPath, [deno, 'run', ...permissions, fixture], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } })

describe.skipIf(unavailable)('Deno', () => {
  it('runs a hub/spoke exchange and exits on its own', { timeout: 90_000 }, () => {
    const r = runDeno(['--allow-ffi', '--allow-read', '--allow-env', '--allow-net', '--allow-sys'])
    expect(r.status, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout.trim().split('\n').pop())
    expect(out.runtime).toMatch(/^deno 2\./)
    expect(out.received).toEqual(Array.from({ length: 100 }, (_, i) => i))
    expect(out.answers).toEqual(Array.from({ length: 100 }, (_, i) => i * 2))
  })

  it('without --allow-ffi it fails with a coded error that says to grant it', { timeout: 90_000 }, () => {
    const r = runDeno(['--allow-read', '--allow-env', '--allow-net', '--allow-sys'])
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(/could not load its native addon/)
    expect(r.stderr).toMatch(/--allow-ffi/)
  })
})
