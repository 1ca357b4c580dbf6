// Hub push (issue 28): a spoke that only listens, and a hub that dials it by node id or
// ticket. Same targets and the same acknowledged sessions as when the spoke dials.
import { afterEach, describe, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { HubCloseCode, createHub, generateSecretKey, listenForHub, nodeIdFromSecretKey } from '../lib/index.mjs'
import { ALPN, closeAll, collect, endpoint, runNode, stateIs, within } from './helpers.mjs'

const cleanups = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
  await closeAll()
})

async function hubAndWorker(workerOptions = {}) {
  const hubEp = await endpoint({ alpns: [ALPN] })
  const hub = createHub(hubEp, { alpn: ALPN, allow: [] })
  const workerEp = await endpoint()
  const worker = listenForHub(workerEp, { alpn: ALPN, allow: [hubEp.nodeId()], ...workerOptions })
  cleanups.push(() => hub.close(), () => worker.close())
  return { hubEp, hub, workerEp, worker }
}

describe('hub push', () => {
  it('a hub dials a spoke that only listens and admits it as if it had dialed in', async () => {
    const { hub, workerEp, worker } = await hubAndWorker()
    expect(worker.state).toBe('listening')
    const admitted = new Promise((resolve) => hub.addEventListener('spoke', (e) => resolve(e.detail), { once: true }))
    const target = await within(hub.connect(workerEp.ticket(), { timeoutMs: 10_000 }), 15_000, 'hub.connect')
    const { nodeId } = await within(admitted, 5_000, 'the spoke event')
    expect(nodeId).toBe(workerEp.nodeId())
    expect(hub.spoke(nodeId)).toBe(target)
    expect(hub.spokes).toEqual([nodeId])
    // Acknowledged delivery, negotiated by ALPN as when the spoke dials.
    expect(target.connection.alpn()).toBe(`${ALPN}/alkdev-acks/1`)
    const calls = collect(worker, 'call.requested', 2)
    target.dispatchEvent(new CustomEvent('call.requested', { detail: 1 }))
    expect(hub.broadcast('call.requested', 2)).toBe(1)
    expect(await within(calls, 10_000, 'the calls')).toEqual([1, 2])
    await within(stateIs(worker, 'connected'), 5_000, 'connected')
    const answers = collect(target, 'call.responded', 1)
    worker.dispatchEvent(new CustomEvent('call.responded', { detail: 'ok' }))
    expect(await within(answers, 10_000, 'the answer')).toEqual(['ok'])
  })

  it('events held while no hub is connected go out after onConnect, in order, when the hub dials', async () => {
    const { hub, workerEp, worker } = await hubAndWorker({
      onConnect: (s) => s.dispatchEvent(new CustomEvent('hub.register', { detail: 'hello' })),
    })
    for (let i = 0; i < 50; i++) worker.dispatchEvent(new CustomEvent('held', { detail: i }))
    expect(worker.bufferedAmount).toBeGreaterThan(0)
    const target = await within(hub.connect(workerEp.addr(), { timeoutMs: 10_000 }), 15_000, 'hub.connect')
    const seen = []
    const all = new Promise((resolve) => {
      const take = (e) => {
        seen.push([e.type, e.detail])
        if (seen.length === 51) resolve()
      }
      target.addEventListener('hub.register', take)
      target.addEventListener('held', take)
    })
    await within(all, 10_000, 'the greeting and the held events')
    expect(seen[0]).toEqual(['hub.register', 'hello'])
    expect(seen.slice(1).map(([, d]) => d)).toEqual(Array.from({ length: 50 }, (_, i) => i))
  })

  it('a hub that dials again replaces its connection; the session carries on: nothing lost, nothing twice', async () => {
    const { hub, workerEp, worker } = await hubAndWorker()
    const first = await within(hub.connect(workerEp.addr(), { timeoutMs: 10_000 }), 15_000, 'first dial')
    const got = []
    worker.addEventListener('n', (e) => got.push(e.detail))
    for (let i = 0; i < 100; i++) first.dispatchEvent(new CustomEvent('n', { detail: i }))
    const second = await within(hub.connect(workerEp.addr(), { timeoutMs: 10_000 }), 15_000, 'second dial')
    expect(second).not.toBe(first)
    for (let i = 100; i < 200; i++) second.dispatchEvent(new CustomEvent('n', { detail: i }))
    await within(second.flush({ acked: true }), 10_000, 'acknowledged')
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => i))
    const closed = await within(first.closed, 5_000, 'the first connection closed')
    expect(closed.code).toBe(HubCloseCode.REPLACED)
  })

  it('a stranger dialing a listening spoke is refused, and so is a hub not in allow', async () => {
    const { workerEp, worker } = await hubAndWorker()
    const refused = []
    worker.lifecycle.addEventListener('refused', (e) => refused.push(e.detail))
    const stranger = await endpoint()
    const conn = await stranger.connect(workerEp.addr(), ALPN, { timeoutMs: 10_000 })
    const info = await within(conn.closed(), 10_000, 'the stranger is closed')
    expect(info).toMatchObject({ kind: 'remote', code: HubCloseCode.REFUSED })
    const otherEp = await endpoint({ alpns: [ALPN] })
    const other = createHub(otherEp, { alpn: ALPN })
    cleanups.push(() => other.close())
    const gone = new Promise((resolve) => other.addEventListener('disconnect', (e) => resolve(e.detail), { once: true }))
    await within(other.connect(workerEp.addr(), { timeoutMs: 10_000 }), 15_000, 'the other hub dials')
    expect(await within(gone, 10_000, 'the other hub is refused')).toMatchObject({ kind: 'remote', code: HubCloseCode.REFUSED })
    expect(refused.map((r) => r.nodeId)).toEqual([stranger.nodeId(), otherEp.nodeId()])
    expect(worker.state).toBe('listening')
  })

  it('hub.connect rejects for a denied spoke and once the hub is closed', async () => {
    const { hub, workerEp } = await hubAndWorker()
    hub.revoke(workerEp.nodeId())
    await expect(within(hub.connect(workerEp.addr(), { timeoutMs: 10_000 }), 15_000, 'denied')).rejects.toMatchObject({ code: 'ERR_IROH_REFUSED' })
    await hub.close()
    await expect(hub.connect(workerEp.addr())).rejects.toMatchObject({ code: 'ERR_IROH_CONNECTION_CLOSED' })
  })

  it('a worker that only listens and a hub that dials it by ticket, as two programs, both exit on their own', async () => {
    const key = generateSecretKey()
    const hubId = nodeIdFromSecretKey(key)
    const fixture = (name) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
    const { spawn } = await import('node:child_process')
    const worker = spawn(process.execPath, [fixture('push-worker.mjs'), hubId], { stdio: ['ignore', 'pipe', 'inherit'] })
    const workerExit = new Promise((resolve) => worker.on('exit', (code) => resolve(code)))
    cleanups.push(() => worker.exitCode === null && worker.kill('SIGKILL'))
    const ticket = await within(new Promise((resolve) => worker.stdout.once('data', (d) => resolve(String(d).trim()))), 20_000, 'the worker ticket')
    const hub = await runNode([fixture('push-hub.mjs'), key, ticket], 30_000)
    expect(hub.stderr).toBe('')
    expect(hub.code).toBe(0)
    expect(JSON.parse(hub.stdout)).toEqual({ id: 'a1', result: 42 })
    expect(await within(workerExit, 30_000, 'the worker exits')).toBe(0)
  })
})
