// A topic member behind a NAT whose packets are dropped at 10 % for 5 s, in network
// namespaces this test builds (see netns.mjs), with a relay of its own on the "internet".
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { RELAY_IP, createNetwork, netnsUnavailable, startPeer } from './netns.mjs'
import { spawnJsonLines, within } from './helpers.mjs'

const PEER = fileURLToPath(new URL('./fixtures/nat-peer.mjs', import.meta.url))
const MEMBERS = fileURLToPath(new URL('./fixtures/topic-members.mjs', import.meta.url))
const unavailable = process.platform === 'linux' ? netnsUnavailable() : 'network namespaces are Linux only'
if (unavailable && process.env.IROH_REQUIRE_NETNS === '1') throw new Error(`topic NAT tests must run here, but ${unavailable}`)
if (unavailable) console.warn(`topic NAT tests skipped: ${unavailable}`)

const cleanups = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

/** A member process in namespace `ns` (fixtures/topic-members.mjs). */
function members(ns, config) {
  const proc = spawnJsonLines('ip', ['netns', 'exec', ns, process.execPath, MEMBERS, JSON.stringify(config)], 'a topic member process')
  cleanups.push(() => within(new Promise((resolve) => {
    proc.child.stdin.end()
    proc.exited.then(resolve)
  }), 10_000, 'member exit').catch(() => proc.child.kill('SIGKILL')))
  let reports = 0
  return {
    ...proc,
    ready: () => proc.waitFor(() => proc.lines.find((l) => l.ready)?.ready),
    know: (n) => proc.waitFor(() => (proc.lines.findLast((l) => l.members)?.members.every((c) => c >= n) ? true : undefined)),
    report: async (extra = {}) => {
      proc.send(JSON.stringify({ report: true, ...extra }))
      const want = ++reports
      return proc.waitFor(() => {
        const all = proc.lines.filter((l) => l.report)
        return all.length >= want ? all[want - 1].report : undefined
      })
    },
  }
}

describe.skipIf(unavailable)('topics through NATs', () => {
  it('a member whose packets are dropped at 10 % for 5 s gets every event once, in order, and so do the others', { timeout: 180_000 }, async () => {
    const network = createNetwork({ r1: 'endpoint-independent', r2: 'endpoint-independent' })
    cleanups.push(() => network.remove())
    const relayPeer = startPeer(network.ns.pub, PEER, 'relay', { bindAddr: `${RELAY_IP}:443`, quicPort: 7842 })
    cleanups.push(() => within(relayPeer.stop(), 10_000, 'relay exit').catch(() => relayPeer.child.kill('SIGKILL')))
    const { relay, ca } = await within(relayPeer.next('ready'), 20_000, 'relay ready')
    const endpoint = { relayMode: { relays: [relay] }, relayCaCertificates: [ca], bindAddr: undefined }
    const home = members(network.ns.h1, { count: 3, endpoint })
    const [boot] = await within(home.ready(), 30_000, 'the members at home 1')
    const lossy = members(network.ns.h2, { count: 1, endpoint, bootstrap: boot.addr })
    await within(Promise.all([home, lossy].map((p) => p.know(3))), 60_000, 'every member hearing of the others')
    network.lose('r2', 10)
    const lossEnds = new Promise((resolve) => setTimeout(resolve, 5_000))
    home.send(JSON.stringify({ send: 5_000 }))
    lossy.send(JSON.stringify({ send: 5_000 }))
    // The loss lasts 5 s by the clock: that is the fault, not a wait for something.
    await lossEnds
    network.stopLosing('r2')
    let last = []
    const reports = await within(
      (async () => {
        for (;;) {
          last = (await Promise.all([home, lossy].map((p) => p.report()))).flat()
          if (last.every((r) => last.every((a) => a.nodeId === r.nodeId || (r.from[a.nodeId]?.count ?? 0) >= 5_000))) return last
          await new Promise((resolve) => setTimeout(resolve, 500))
        }
      })(),
      90_000,
      'every event reaching every member',
    ).catch(async (err) => {
      const short = (id) => id.slice(0, 8)
      const native = await within(Promise.all([home, lossy].map((p) => p.report({ debug: true }))), 5_000, 'the native state').catch(() => [])
      console.log(JSON.stringify(native.flat().map((r) => r.native)))
      throw new Error(`${err.message}\n${last.map((r) => `${short(r.nodeId)} sent ${r.sent}: ${Object.entries(r.from).map(([a, s]) => `${short(a)} ${s.first}..${s.last} (${s.count})`).join(', ')}`).join('\n')}`)
    })
    for (const r of reports) {
      for (const seen of Object.values(r.from)) expect(seen).toMatchObject({ count: 5_000, twice: 0, disorder: 0, first: 0 })
      expect(r.gaps).toEqual([])
    }
  })
})
