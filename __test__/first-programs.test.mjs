// The programs a new user writes first, run as plain scripts in child processes: no
// `await closed`, no knowledge of this package's internals. Each must do its job and then
// exit on its own.
import { describe, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { spawnJsonLines, within } from './helpers.mjs'

const fixture = (name) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
const node = (name, ...args) => spawnJsonLines(process.execPath, [fixture(name), ...args], name)

/** Kills what is still running when a test fails, so a hang never outlives it. */
async function running(children, body) {
  try {
    return await body()
  } finally {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL')
  }
}

describe('first programs', () => {
  it('a worker answers a call from a hub process, and both exit on their own', async () => {
    const hub = node('first-hub.mjs')
    await running([hub], async () => {
      const ticket = await within(hub.waitFor(() => hub.lines.find((l) => l.ticket)?.ticket), 10_000, 'the hub ticket')
      const worker = node('first-worker.mjs', ticket)
      await running([worker], async () => {
        const registered = await within(hub.waitFor(() => hub.lines.find((l) => l.registered)?.registered), 15_000, 'registration')
        expect(registered).toEqual({ ops: ['add'] })
        const responded = await within(hub.waitFor(() => hub.lines.find((l) => l.responded)?.responded), 15_000, 'the answer')
        expect(responded).toEqual({ id: 'c1', result: 5 })
        expect(await within(worker.exited, 15_000, 'the worker exit')).toEqual({ code: 0, signal: null })
        expect(await within(hub.exited, 15_000, 'the hub exit')).toEqual({ code: 0, signal: null })
      })
    })
  })

  it('a spoke that only listens hears every broadcast of a hub that never waits for it', async () => {
    const hub = node('news-hub.mjs')
    await running([hub], async () => {
      const ticket = await within(hub.waitFor(() => hub.lines.find((l) => l.ticket)?.ticket), 10_000, 'the hub ticket')
      const spoke = node('listening-spoke.mjs', ticket)
      await running([spoke], async () => {
        expect(await within(spoke.exited, 20_000, 'the spoke exit')).toEqual({ code: 0, signal: null })
        expect(spoke.lines.map((l) => l.news)).toEqual([1, 2, 3, 4, 5])
        expect(await within(hub.exited, 15_000, 'the hub exit')).toEqual({ code: 0, signal: null })
      })
    })
  })

  it('a burst of 1,000 broadcasts in one loop reaches a listening spoke whole and in order', async () => {
    const hub = node('burst-hub.mjs', '1000')
    await running([hub], async () => {
      const ticket = await within(hub.waitFor(() => hub.lines.find((l) => l.ticket)?.ticket), 10_000, 'the hub ticket')
      const spoke = node('listening-spoke.mjs', ticket, '1000')
      await running([spoke], async () => {
        expect(await within(spoke.exited, 20_000, 'the spoke exit')).toEqual({ code: 0, signal: null })
        expect(spoke.lines.map((l) => l.news)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1))
        expect(await within(hub.exited, 15_000, 'the hub exit')).toEqual({ code: 0, signal: null })
      })
    })
  })
})
