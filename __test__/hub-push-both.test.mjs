// Hub push, both ways (issue 28): a spoke that dials its hub and lets the hub dial it too
// (`connectSpoke` with `listen: true`). One target over whichever connection; when both dial
// at once the spoke's own connection survives on both ends; acknowledged delivery carries on
// across a hub-dialed and a spoke-dialed connection, either way round.
import { afterEach, describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HubCloseCode, connectSpoke, createHub, generateSecretKey, listenForHub, nodeIdFromSecretKey } from '../lib/index.mjs'
import { ALPN, closeAll, collect, endpoint, runNode, spawnJsonLines, startHubProcess, stateIs, within } from './helpers.mjs'

const { nodeIdOfTarget } = createRequire(import.meta.url)('../lib/identity.js')

const cleanups = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
  await closeAll()
})

const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i)

/** A hub with acknowledged delivery that records, across all its spokes' targets, each `n` it receives. */
async function recordingHub(existing) {
  const hubEp = existing ?? (await endpoint({ alpns: [ALPN] }))
  const hub = createHub(hubEp, { alpn: ALPN })
  const received = []
  const admitted = []
  hub.addEventListener('spoke', (e) => {
    admitted.push(e.detail)
    e.detail.target.addEventListener('n', (ev) => received.push(ev.detail))
  })
  const closes = []
  hub.addEventListener('disconnect', (e) => closes.push(e.detail))
  cleanups.push(() => hub.close())
  return { hubEp, hub, received, admitted, closes }
}

/** Resolves once `array` has `count` items (checked on each event of `type` on `target`). */
function filled(target, type, array, count) {
  if (array.length >= count) return Promise.resolve()
  return new Promise((resolve) =>
    target.addEventListener(type, function check() {
      if (array.length < count) return
      target.removeEventListener(type, check)
      resolve()
    }),
  )
}

/** Resolves with the first `spoke` event of `hub` whose detail passes `test`, counting earlier ones. */
function admittedWhere(hub, admitted, test) {
  const seen = admitted.find(test)
  if (seen) return Promise.resolve(seen)
  return new Promise((resolve) =>
    hub.addEventListener('spoke', function check(e) {
      if (!test(e.detail)) return
      hub.removeEventListener('spoke', check)
      resolve(e.detail)
    }),
  )
}

/**
 * Resolves with `check()`'s first truthy answer, asked now and on every `spoke` and
 * `disconnect` of `hub` and `statechange` of `spoke`.
 */
function once(hub, spoke, check) {
  return new Promise((resolve) => {
    const ask = () => {
      const answer = check()
      if (!answer) return
      for (const type of ['spoke', 'disconnect']) hub.removeEventListener(type, ask)
      spoke.lifecycle.removeEventListener('statechange', ask)
      resolve(answer)
    }
    for (const type of ['spoke', 'disconnect']) hub.addEventListener(type, ask)
    spoke.lifecycle.addEventListener('statechange', ask)
    ask()
  })
}

describe('a spoke that dials and listens', () => {
  it('reads the node id of a ticket, an address and a node id alike', async () => {
    for (let i = 0; i < 5; i++) {
      const ep = await endpoint()
      expect(nodeIdOfTarget(ep.ticket())).toBe(ep.nodeId())
      expect(nodeIdOfTarget(ep.addr())).toBe(ep.nodeId())
      expect(nodeIdOfTarget(ep.nodeId())).toBe(ep.nodeId())
    }
    expect(() => nodeIdOfTarget('endpointabc')).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_NODE_ID' }))
    // A spoke that listens must know whom to let in.
    const ep = await endpoint()
    expect(() => connectSpoke(ep, 'endpointabc', { alpn: ALPN, listen: true })).toThrow(expect.objectContaining({ code: 'ERR_IROH_INVALID_NODE_ID' }))
  })

  it('lets in only the hub it dials', async () => {
    const { hubEp } = await recordingHub()
    const spokeEp = await endpoint()
    const spoke = connectSpoke(spokeEp, hubEp.ticket(), { alpn: ALPN, listen: true })
    cleanups.push(() => spoke.close())
    const refused = new Promise((resolve) => spoke.lifecycle.addEventListener('refused', (e) => resolve(e.detail), { once: true }))
    const stranger = await endpoint({ alpns: [ALPN] })
    const conn = await stranger.connect(spokeEp.addr(), ALPN, { timeoutMs: 10_000 })
    expect(await within(conn.closed(), 10_000, 'the stranger is closed')).toMatchObject({ kind: 'remote', code: HubCloseCode.REFUSED })
    expect((await within(refused, 5_000, 'the refused event')).nodeId).toBe(stranger.nodeId())
  })

  for (const round of [1, 2, 3]) {
    it(`both dial at once: one connection survives, every event once, in order (round ${round})`, async () => {
      const { hubEp, hub, received, admitted } = await recordingHub()
      const spokeEp = await endpoint()
      const got = []
      const spoke = connectSpoke(spokeEp, hubEp.addr(), { alpn: ALPN, listen: true })
      cleanups.push(() => spoke.close())
      spoke.addEventListener('m', (e) => got.push(e.detail))
      // The spoke dials as it is made; the hub dials it in the same tick.
      const dialed = hub.connect(spokeEp.addr(), { timeoutMs: 10_000 })
      for (let i = 0; i < 100; i++) spoke.dispatchEvent(new CustomEvent('n', { detail: i }))
      const hubsTarget = await within(dialed, 15_000, 'hub.connect')
      // Events from the hub on the target it was handed, whichever connection it is.
      const sentByHub = []
      for (let i = 0; i < 100; i++) {
        try {
          hubsTarget.dispatchEvent(new CustomEvent('m', { detail: i }))
          sentByHub.push(i)
        } catch (err) {
          // Closed as both dialed already: the hub's session did not take it.
          expect(err.code).toBe('ERR_IROH_CONNECTION_CLOSED')
        }
      }
      for (let i = 100; i < 200; i++) spoke.dispatchEvent(new CustomEvent('n', { detail: i }))
      // By the rule the survivor is the spoke's own connection. (Were the spoke, on a
      // starved machine, to hear nothing on its live one within the probe's window, it would
      // take the hub's call and let its own go: then the hub's is the one connection, or
      // the spoke dials once more. One survives either way, and nothing is lost.)
      const id = spokeEp.nodeId()
      const survivor = () =>
        within(
          once(hub, spoke, () => {
            const target = hub.spoke(id)
            const entry = admitted.find((s) => s.target === target)
            return entry && !target.isClosed && spoke.state === 'connected' ? entry : undefined
          }),
          15_000,
          'the one connection at the hub',
        )
      // An event on it arrives (it goes into the hub's session for the spoke, so a last
      // change of connection would not lose it either).
      const last = filled(spoke, 'm', got, sentByHub.length + 1)
      for (;;) {
        const { target } = await survivor()
        try {
          target.dispatchEvent(new CustomEvent('m', { detail: 100 }))
          break
        } catch (err) {
          expect(err.code).toBe('ERR_IROH_CONNECTION_CLOSED')
        }
      }
      await within(last, 10_000, 'the event on the survivor')
      await within(spoke.flush({ acked: true }), 10_000, 'the spoke acknowledged')
      const own = await survivor()
      await within(own.target.flush({ acked: true }), 10_000, 'the hub acknowledged')
      // Every other connection the hub dialed is closed as both dialed, or was never made a target.
      for (const s of admitted.filter((s) => s.dialed && s !== own)) {
        expect((await within(s.target.closed, 10_000, "the hub's dialed connection closes")).code).toBe(HubCloseCode.BOTH_DIALED)
      }
      expect(hub.spokes).toEqual([id])
      expect(hub.spoke(id)).toBe(own.target)
      expect(got).toEqual([...sentByHub, 100])
      expect(received).toEqual(range(0, 200))
      expect(spoke.state).toBe('connected')
      expect(own.target.isClosed).toBe(false)
    })
  }

  it("a connection the spoke dials replaces one the hub dialed, closed as both dialed", async () => {
    const { hubEp, hub, received, admitted, closes } = await recordingHub()
    const spokeEp = await endpoint()
    // Listens only, so that the connection the spoke's endpoint dials is made here, by hand.
    const worker = listenForHub(spokeEp, { alpn: ALPN, allow: [hubEp.nodeId()] })
    cleanups.push(() => worker.close())
    const byHub = await within(hub.connect(spokeEp.addr(), { timeoutMs: 10_000 }), 15_000, 'hub.connect')
    const own = admittedWhere(hub, admitted, (s) => !s.dialed)
    const conn = await within(spokeEp.connect(hubEp.addr(), ALPN, { timeoutMs: 10_000 }), 15_000, "the spoke's endpoint dials")
    const { target } = await within(own, 10_000, 'admitted')
    expect((await within(byHub.closed, 10_000, "the hub's connection closes")).code).toBe(HubCloseCode.BOTH_DIALED)
    expect(closes.map((c) => c.code)).toEqual([HubCloseCode.BOTH_DIALED])
    expect(hub.spoke(spokeEp.nodeId())).toBe(target)
    // A plain connection: its first frame opens the stream.
    const { createSpokeIrohEventTarget } = await import('../lib/index.mjs')
    const raw = await createSpokeIrohEventTarget(conn)
    raw.dispatchEvent(new CustomEvent('n', { detail: 7 }))
    await within(filled(target, 'n', received, 1), 10_000, 'an event on it')
    expect(received).toEqual([7])
  })

  it("hub.connect for a spoke connected on its own connection resolves with that target and changes nothing", async () => {
    const { hubEp, hub, received, admitted } = await recordingHub()
    const spokeEp = await endpoint()
    const spoke = connectSpoke(spokeEp, hubEp.addr(), { alpn: ALPN, listen: true })
    cleanups.push(() => spoke.close())
    const own = await within(
      admittedWhere(hub, admitted, (s) => !s.dialed),
      15_000,
      'the spoke dials',
    )
    await within(stateIs(spoke, 'connected'), 10_000, 'connected')
    const connection = spoke.connection
    const states = []
    spoke.lifecycle.addEventListener('statechange', (e) => states.push(e.detail.state))
    const target = await within(hub.connect(spokeEp.addr(), { timeoutMs: 10_000 }), 15_000, 'hub.connect')
    expect(target).toBe(own.target)
    expect(admitted).toEqual([own])
    // No call was made: the spoke keeps its own connection, untouched.
    for (let i = 0; i < 10; i++) spoke.dispatchEvent(new CustomEvent('n', { detail: i }))
    await within(spoke.flush({ acked: true }), 10_000, 'acknowledged')
    expect(received).toEqual(range(0, 10))
    expect(spoke.connection).toBe(connection)
    expect(states).toEqual([])
    expect(hub.spoke(spokeEp.nodeId())).toBe(own.target)
  })

  it('acknowledged delivery goes on from a hub-dialed connection to a spoke-dialed one: nothing lost, nothing twice', async () => {
    // No hub on the endpoint yet: the spoke's first dial fails and it waits 10-20 s to redial.
    const hubEp = await endpoint({ alpns: [] })
    const spokeEp = await endpoint()
    const got = []
    // An endpoint that accepts no ALPN does not answer: the dial times out.
    const spoke = connectSpoke(spokeEp, hubEp.addr(), { alpn: ALPN, listen: true, initialDelayMs: 20_000, maxDelayMs: 20_000, connectTimeoutMs: 1_000 })
    cleanups.push(() => spoke.close())
    spoke.addEventListener('m', (e) => got.push(e.detail))
    await within(stateIs(spoke, 'disconnected'), 15_000, 'the first dial fails')
    const { hub, received, admitted } = await recordingHub(hubEp)
    const first = await within(hub.connect(spokeEp.addr(), { timeoutMs: 10_000 }), 15_000, 'hub.connect')
    expect(admitted.map((s) => s.dialed)).toEqual([true])
    await within(stateIs(spoke, 'connected'), 10_000, 'the spoke serves the call')
    // Bursts both ways, then the hub's connection dies with much in flight.
    for (let i = 0; i < 2000; i++) spoke.dispatchEvent(new CustomEvent('n', { detail: i }))
    for (let i = 0; i < 2000; i++) first.dispatchEvent(new CustomEvent('m', { detail: i }))
    first.connection.close(0, 'cut')
    // The spoke dials at once; the hub's session for it carries on on that connection.
    const second = await within(
      admittedWhere(hub, admitted, (s) => !s.dialed),
      15_000,
      'the spoke dials back',
    )
    for (let i = 2000; i < 3000; i++) spoke.dispatchEvent(new CustomEvent('n', { detail: i }))
    for (let i = 2000; i < 3000; i++) second.target.dispatchEvent(new CustomEvent('m', { detail: i }))
    await within(second.target.flush({ acked: true }), 15_000, 'the hub acknowledged')
    await within(spoke.flush({ acked: true }), 15_000, 'the spoke acknowledged')
    expect(received).toEqual(range(0, 3000))
    expect(got).toEqual(range(0, 3000))
  })

  it('acknowledged delivery goes on from a spoke-dialed connection to a hub-dialed one: nothing lost, nothing twice', async () => {
    const { hubEp, hub, received, admitted } = await recordingHub()
    const spokeEp = await endpoint()
    const got = []
    // After a lost connection the spoke waits 10-20 s to redial: the hub's call comes first.
    const spoke = connectSpoke(spokeEp, hubEp.addr(), { alpn: ALPN, listen: true, initialDelayMs: 20_000, maxDelayMs: 20_000 })
    cleanups.push(() => spoke.close())
    spoke.addEventListener('m', (e) => got.push(e.detail))
    const first = await within(
      admittedWhere(hub, admitted, (s) => !s.dialed),
      15_000,
      'the spoke dials',
    )
    await within(stateIs(spoke, 'connected'), 10_000, 'connected')
    for (let i = 0; i < 2000; i++) spoke.dispatchEvent(new CustomEvent('n', { detail: i }))
    for (let i = 0; i < 2000; i++) first.target.dispatchEvent(new CustomEvent('m', { detail: i }))
    first.target.connection.close(0, 'cut')
    await within(stateIs(spoke, 'disconnected'), 10_000, 'the spoke waits to redial')
    const second = await within(hub.connect(spokeEp.addr(), { timeoutMs: 10_000 }), 15_000, 'hub.connect')
    expect(admitted.map((s) => s.dialed)).toEqual([false, true])
    for (let i = 2000; i < 3000; i++) spoke.dispatchEvent(new CustomEvent('n', { detail: i }))
    for (let i = 2000; i < 3000; i++) second.dispatchEvent(new CustomEvent('m', { detail: i }))
    await within(second.flush({ acked: true }), 15_000, 'the hub acknowledged')
    await within(spoke.flush({ acked: true }), 15_000, 'the spoke acknowledged')
    expect(received).toEqual(range(0, 3000))
    expect(got).toEqual(range(0, 3000))
    expect(spoke.state).toBe('connected')
  })

  it('a hub that dials while the spoke holds a dead connection to its previous life is let in at once', async () => {
    // The hub runs in a child process, SIGKILLed: the spoke's connection goes silent, not closed.
    const keyPath = join(mkdtempSync(join(tmpdir(), 'both-ways-')), 'hub.key')
    const spokeEp = await endpoint()
    const first = startHubProcess({ secretKeyPath: keyPath, bindAddr: '127.0.0.1:0', alpn: ALPN })
    cleanups.push(() => first.child.exitCode === null && first.child.kill('SIGKILL'))
    const ready = await within(first.next('ready'), 20_000, 'the hub is ready')
    // The silence watcher would redial only after a minute: the hub's call must be what brings it back.
    const spoke = connectSpoke(spokeEp, ready.addr, { alpn: ALPN, listen: true, heartbeatMs: 1_000, ackTimeoutMs: 60_000 })
    cleanups.push(() => spoke.close())
    await within(stateIs(spoke, 'connected'), 15_000, 'connected to the first hub')
    const got = []
    spoke.addEventListener('m', (e) => got.push(e.detail))
    first.child.kill('SIGKILL')
    const hubEp = await endpoint({ secretKeyPath: keyPath, alpns: [ALPN] })
    const hub = createHub(hubEp, { alpn: ALPN, allow: [] })
    cleanups.push(() => hub.close())
    const target = await within(hub.connect(spokeEp.addr(), { timeoutMs: 10_000 }), 15_000, 'the restarted hub dials')
    const answered = filled(spoke, 'm', got, 1)
    target.dispatchEvent(new CustomEvent('m', { detail: 'back' }))
    await within(answered, 10_000, 'the spoke hears the restarted hub')
    expect(got).toEqual(['back'])
    expect(hub.spoke(spokeEp.nodeId())).toBe(target)
  })

  it('a listening spoke lets a silent hub connection go and is listening again', async () => {
    const key = generateSecretKey()
    const hubId = nodeIdFromSecretKey(key)
    const workerEp = await endpoint()
    const worker = listenForHub(workerEp, { alpn: ALPN, allow: [hubId], heartbeatMs: 200, ackTimeoutMs: 1_000 })
    cleanups.push(() => worker.close())
    const fixture = fileURLToPath(new URL('./fixtures/push-hub-hold.mjs', import.meta.url))
    const hubProcess = spawnJsonLines(process.execPath, [fixture, key, workerEp.ticket()], 'the dialing hub')
    cleanups.push(() => hubProcess.child.exitCode === null && hubProcess.child.kill('SIGKILL'))
    await within(stateIs(worker, 'connected'), 20_000, 'the hub dials')
    hubProcess.child.kill('SIGKILL')
    await within(stateIs(worker, 'listening'), 10_000, 'listening again')
    expect(worker.connection).toBe(null)
    // What it dispatches now is held for the next call.
    worker.dispatchEvent(new CustomEvent('held', { detail: 1 }))
    expect(worker.bufferedAmount).toBeGreaterThan(0)
  })

  it('a hub notices a SIGKILLed listening worker at its idle timeout and, dialing again on disconnect, reaches it restarted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'push-restart-'))
    const keyPath = join(dir, 'worker.key')
    // The idle timeout is the hub endpoint's (30 s by default): short here, with keep-alives below it.
    const hubEp = await endpoint({ alpns: [ALPN], idleTimeoutMs: 2_000, keepAliveMs: 500 })
    const hub = createHub(hubEp, { alpn: ALPN, allow: [] })
    cleanups.push(() => hub.close())
    const fixture = fileURLToPath(new URL('./fixtures/push-worker-on-port.mjs', import.meta.url))
    const start = (bindAddr) => spawnJsonLines(process.execPath, [fixture, hubEp.nodeId(), keyPath, bindAddr], 'the worker')
    const first = start('127.0.0.1:0')
    cleanups.push(() => first.child.exitCode === null && first.child.kill('SIGKILL'))
    const { addr } = await within(first.waitFor(() => first.lines.find((l) => l.addr)), 20_000, 'the worker is up')
    const target = await within(hub.connect(addr, { timeoutMs: 10_000 }), 15_000, 'the hub dials')
    const pong = collect(target, 'pong', 1)
    target.dispatchEvent(new CustomEvent('ping', { detail: 1 }))
    expect(await within(pong, 10_000, 'the first pong')).toEqual([1])
    // The recipe: dial again on disconnect, until the worker answers.
    const back = new Promise((resolve) => {
      hub.addEventListener('disconnect', async function redial(e) {
        if (e.detail.nodeId !== addr.nodeId) return
        hub.removeEventListener('disconnect', redial)
        for (;;) {
          try {
            return resolve(await hub.connect(addr, { timeoutMs: 2_000 }))
          } catch {
            if (hub.state !== 'open') return
          }
        }
      })
    })
    first.child.kill('SIGKILL')
    const second = start(addr.directAddresses.find((a) => a.startsWith('127.0.0.1:')))
    cleanups.push(() => second.child.exitCode === null && second.child.kill('SIGKILL'))
    const again = await within(back, 20_000, 'the hub reaches the restarted worker')
    expect(again).not.toBe(target)
    const pongs = []
    const pong2 = new Promise((resolve) =>
      again.addEventListener('pong', (e) => {
        pongs.push(e.detail)
        if (e.detail === 2) resolve()
      }),
    )
    again.dispatchEvent(new CustomEvent('ping', { detail: 2 }))
    await within(pong2, 10_000, 'the second pong')
    // The killed worker may not have acknowledged ping 1 yet (acks go out within 20 ms): the
    // hub's session sends it again to the restarted one, which has forgotten it (README).
    expect([[2], [1, 2]]).toContainEqual(pongs)
  })

  it('a worker that dials and listens, as a program, answers a hub that dials it and exits on its own', async () => {
    const key = generateSecretKey()
    const hubId = nodeIdFromSecretKey(key)
    const fixture = (name) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
    const { spawn } = await import('node:child_process')
    // It knows only the hub's node id and cannot find it: the hub's call is how they meet.
    const worker = spawn(process.execPath, [fixture('both-ways-worker.mjs'), hubId], { stdio: ['ignore', 'pipe', 'inherit'] })
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
