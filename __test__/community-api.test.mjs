// Users of the community binding bring code written against its API: it must run here
// unchanged but for the points the README lists.
import { describe, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { spawnJsonLines, within } from './helpers.mjs'

const script = fileURLToPath(new URL('./fixtures/community-style.cjs', import.meta.url))

describe('code written against the community binding', () => {
  it('runs as a plain script and exits on its own', async () => {
    const run = spawnJsonLines(process.execPath, [script], 'community-style.cjs')
    try {
      const [result] = await within(run.waitFor(() => (run.lines.length > 0 ? run.lines : undefined)), 20_000, 'its output')
      expect(result).toEqual({
        nodeIdLength: 64,
        remoteNodeId: true,
        echoed: 'HELLO',
        ids: [0, 0, 0, 4],
        datagram: 'dgram',
        closed: { code: 0, reason: 'done', kind: 'remote' },
      })
      expect(await within(run.exited, 10_000, 'exit')).toEqual({ code: 0, signal: null })
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL')
    }
  })
})
