// One hub (its own process), 100 spokes, events both ways for SOAK_SECONDS (60 by
// default; `npm run soak` runs longer). Every event is accounted for, and the hub's
// memory, file descriptors and threads stay within stated bounds after a warm-up.
import { afterAll, describe, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { createSpokeIrohEventTarget } from '../lib/index.mjs'
import { ALPN, closeAll, endpoint, spawnJsonLines, within } from './helpers.mjs'

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60)
const SPOKES = 100
const WARMUP_SECONDS = 10
/** Each spoke sends this many "up" events per tick. */
const UP_PER_TICK = 2
const TICK_MS = 20
const BROADCAST_MS = 10
// Bounds on the hub's growth between the end of the warm-up and the end of the run.
const RSS_GROWTH_MIB = 32
const FD_GROWTH = 2
const THREAD_GROWTH = 2

afterAll(closeAll)

function startHub() {
  const script = fileURLToPath(new URL('./fixtures/soak-hub.mjs', import.meta.url))
  const hub = spawnJsonLines(process.execPath, ['--expose-gc', script, JSON.stringify({ alpn: ALPN, broadcastMs: BROADCAST_MS })], 'the soak hub')
  // Each answer is taken once: the next `stats` is a new sample.
  const next = (key) =>
    hub.waitFor(() => {
      const i = hub.lines.findIndex((l) => key in l)
      return i < 0 ? undefined : hub.lines.splice(i, 1)[0][key]
    })
  const ask = (command, key) => {
    hub.send(command)
    return within(next(key), 20_000, command)
  }
  return { child: hub.child, next, ask, exited: hub.exited }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const mib = (bytes) => Math.round((bytes / 2 ** 20) * 10) / 10

describe('soak', () => {
  it(`one hub, ${SPOKES} spokes, events both ways for ${SECONDS} s: nothing lost, resources flat`, { timeout: SECONDS * 1000 + 180_000 }, async () => {
    const hub = startHub()
    const { ticket } = await within(hub.next('ready'), 20_000, 'hub ready')

    const spokes = await Promise.all(
      Array.from({ length: SPOKES }, async () => {
        const conn = await (await endpoint()).connect(ticket, ALPN, { timeoutMs: 20_000 })
        const target = await createSpokeIrohEventTarget(conn)
        const spoke = { target, sent: 0, firstDown: null, lastDown: null, gaps: 0, closed: null, full: 0 }
        target.addEventListener('down', (e) => {
          if (spoke.lastDown !== null && e.detail !== spoke.lastDown + 1) spoke.gaps++
          spoke.firstDown ??= e.detail
          spoke.lastDown = e.detail
        })
        target.lifecycle.addEventListener('close', (e) => (spoke.closed = e.detail))
        return spoke
      }),
    )
    const send = (spoke) => {
      try {
        spoke.target.dispatchEvent(new CustomEvent('up', { detail: spoke.sent }))
        spoke.sent++
        return true
      } catch (err) {
        if (err.code !== 'ERR_IROH_BUFFER_FULL') throw err
        spoke.full++
        return false
      }
    }
    // The hub sends a spoke nothing until the spoke's stream exists: open them all.
    for (const spoke of spokes) send(spoke)
    await within(Promise.all(spokes.map((s) => new Promise((resolve) => s.target.addEventListener('down', resolve, { once: true })))), 30_000, 'first broadcasts')

    let sending = true
    const ticker = (async () => {
      while (sending) {
        for (const spoke of spokes) for (let i = 0; i < UP_PER_TICK && send(spoke); i++);
        await sleep(TICK_MS)
      }
    })()

    await sleep(WARMUP_SECONDS * 1000)
    const baseline = await hub.ask('stats', 'stats')
    const samples = [baseline]
    for (let t = WARMUP_SECONDS; t < SECONDS; t += 10) {
      await sleep(Math.min(10, SECONDS - t) * 1000)
      samples.push(await hub.ask('stats', 'stats'))
    }
    sending = false
    await ticker

    // Every "up" reached the hub, in order: each spoke asks for its tally.
    const tallies = await within(
      Promise.all(
        spokes.map(async (spoke) => {
          const tally = new Promise((resolve) => spoke.target.addEventListener('tally', (e) => resolve(e.detail), { once: true }))
          await spoke.target.flush()
          spoke.target.dispatchEvent(new CustomEvent('done'))
          return tally
        }),
      ),
      30_000,
      'tallies',
    )
    // Every "down" reached every spoke, in order, from its first one to the last.
    const { broadcasts } = await hub.ask('stop', 'stopped')
    await within(
      (async () => {
        while (spokes.some((s) => s.lastDown !== broadcasts - 1)) await sleep(20)
      })(),
      30_000,
      'last broadcasts',
    )
    const end = await hub.ask('stats', 'stats')

    const sent = spokes.reduce((n, s) => n + s.sent, 0)
    const received = spokes.reduce((n, s) => n + (s.lastDown - s.firstDown + 1), 0)
    const line = samples.map((s) => `${mib(s.rss)}`).join(' -> ')
    console.log(
      `soak ${SECONDS} s, ${SPOKES} spokes: up ${sent} sent / ${end.up} received; down ${broadcasts} broadcasts, ${received} deliveries; ` +
        `hub RSS MiB ${line} -> ${mib(end.rss)} (after warm-up ${mib(baseline.rss)}); fds ${baseline.fds} -> ${end.fds}; threads ${baseline.threads} -> ${end.threads}; ` +
        `dispatches refused for a full buffer: ${spokes.reduce((n, s) => n + s.full, 0)}`,
    )

    expect(spokes.filter((s) => s.closed !== null)).toEqual([])
    expect(tallies).toEqual(spokes.map((s) => s.sent))
    expect(end.up).toBe(sent)
    expect(end.outOfOrder).toBe(0)
    expect(spokes.reduce((n, s) => n + s.gaps, 0)).toBe(0)
    expect(end.spokes).toBe(SPOKES)
    expect(sent).toBeGreaterThan(SPOKES * UP_PER_TICK * (SECONDS * 1000 / TICK_MS) * 0.3)
    expect(mib(end.rss - baseline.rss)).toBeLessThanOrEqual(RSS_GROWTH_MIB)
    if (baseline.fds !== null) expect(end.fds - baseline.fds).toBeLessThanOrEqual(FD_GROWTH)
    if (baseline.threads !== null) expect(end.threads - baseline.threads).toBeLessThanOrEqual(THREAD_GROWTH)

    // The hub process exits by itself once its input ends and it has closed everything.
    await Promise.all(spokes.map((s) => s.target.close()))
    hub.child.stdin.end()
    expect(await within(hub.exited, 20_000, 'hub exit')).toEqual({ code: 0, signal: null })
  })
})
