// The member processes the topic suites drive (fixtures/topic-members.mjs), and the wait
// for their reports. `members()` kills what it started after each test.
import { fileURLToPath } from 'node:url'
import { afterEach } from 'vitest'
import { closeAll, spawnJsonLines, within } from './helpers.mjs'

const MEMBERS = fileURLToPath(new URL('./fixtures/topic-members.mjs', import.meta.url))
const children = []

afterEach(async () => {
  for (const c of children.splice(0)) c.child.kill('SIGKILL')
  await closeAll()
})

/** A process of `count` members (fixtures/topic-members.mjs). */
export function members(config) {
  const proc = spawnJsonLines(process.execPath, [MEMBERS, JSON.stringify(config)], 'a topic member process')
  children.push(proc)
  let reports = 0
  return {
    ...proc,
    ready: () => proc.waitFor(() => proc.lines.find((l) => l.ready)?.ready),
    /** Resolves once each of its members has heard from `n` others. */
    know: (n) => proc.waitFor(() => (proc.lines.findLast((l) => l.members)?.members.every((c) => c >= n) ? true : undefined)),
    sent: (count) => proc.waitFor(() => proc.lines.filter((l) => l.sent).length >= count || undefined),
    report: async (extra = {}) => {
      proc.send(JSON.stringify({ report: true, ...extra }))
      reports++
      const want = reports
      return proc.waitFor(() => {
        const all = proc.lines.filter((l) => l.report)
        return all.length >= want ? all[want - 1].report : undefined
      })
    },
  }
}

/** Asks every process for reports until `done(reports)` holds; then returns them. */
export async function reportsUntil(procs, done, what) {
  let last = []
  try {
    return await within(
      (async () => {
        for (;;) {
          last = (await Promise.all(procs.map((p) => p.report()))).flat()
          if (done(last)) return last
          await new Promise((resolve) => setTimeout(resolve, 300))
        }
      })(),
      60_000,
      what,
    )
  } catch (err) {
    // Say who lacked what: a hang otherwise tells nothing.
    const short = (id) => id.slice(0, 8)
    const state = last.map((r) => `${short(r.nodeId)} sent ${r.sent}: ${Object.entries(r.from).map(([a, s]) => `${short(a)} ${s.first}..${s.last} (${s.count})`).join(', ')}`)
    const native = await within(Promise.all(procs.map((p) => p.report({ debug: true }))), 5_000, 'the native state').catch(() => [])
    throw new Error(`${err.message}\n${state.join('\n')}\n${JSON.stringify(native.flat().map((r) => r.native))}`)
  }
}

/** Every member has every other member's `perAuthor` events, once each. */
export const allArrived = (perAuthor) => (reports) =>
  reports.every((r) => reports.every((a) => a.nodeId === r.nodeId || (r.from[a.nodeId]?.count ?? 0) >= perAuthor))

