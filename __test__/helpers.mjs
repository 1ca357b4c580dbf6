// Shared test setup: every endpoint binds to loopback with relays and n0 address lookup
// off (and this package has no port mapper), so no test sends a packet beyond 127.0.0.1.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Endpoint } from '../lib/index.mjs'

export const LOOPBACK = Object.freeze({ relayMode: 'disabled', bindAddr: '127.0.0.1:0', addressLookup: 'none' })
export const ALPN = 'alkdev/test/1'

const opened = []

export async function endpoint(options = {}) {
  const ep = await Endpoint.create({ ...LOOPBACK, ...options })
  opened.push(ep)
  return ep
}

export async function closeAll() {
  await Promise.all(opened.splice(0).map((ep) => ep.close()))
}

/** A connected pair: `client` dialed `server` by its address. */
export async function pair(alpn = ALPN) {
  const server = await endpoint({ alpns: [alpn] })
  const client = await endpoint()
  const accepted = server.accept()
  const clientConn = await client.connect(server.addr(), alpn, { timeoutMs: 10_000 })
  const serverConn = await within(accepted, 10_000, 'accept() of the connection pair() dialed')
  return { server, client, clientConn, serverConn }
}

/** Resolves with the details of the first `count` events of `type` that reach `target`. */
export function collect(target, type, count) {
  const got = []
  return new Promise((resolve) =>
    target.addEventListener(type, (e) => {
      got.push(e.detail)
      if (got.length === count) resolve(got)
    }),
  )
}

/** Runs a Node script; resolves with its exit code and output, or kills it after `limitMs`. */
export function runNode(args, limitMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const killer = setTimeout(() => child.kill('SIGKILL'), limitMs)
    child.on('exit', (code, signal) => {
      clearTimeout(killer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

/** Rejects if `promise` has not settled within `ms`: turns a hang into a failure. */
export function within(promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export async function rejectsWithCode(promiseOrFn, code) {
  let err
  try {
    await (typeof promiseOrFn === 'function' ? promiseOrFn() : promiseOrFn)
  } catch (e) {
    err = e
  }
  if (!err) throw new Error(`expected a rejection with ${code}, got success`)
  if (err.code !== code) throw new Error(`expected ${code}, got ${err.code}: ${err.message}`)
  if (!(err instanceof Error)) throw new Error('rejection is not an Error')
  return err
}

/** Dispatches, waiting for the outbox to drain whenever it is full: no event is dropped. */
export async function dispatchAll(target, events) {
  for (const [type, detail] of events) {
    for (;;) {
      try {
        target.dispatchEvent(new CustomEvent(type, { detail }))
        break
      } catch (err) {
        if (err.code !== 'ERR_IROH_BUFFER_FULL') throw err
        await target.flush()
      }
    }
  }
  await target.flush()
}

/** Resolves once a reconnecting spoke's `state` is `state`. */
export function stateIs(spoke, state) {
  if (spoke.state === state) return Promise.resolve()
  return new Promise((resolve) =>
    spoke.lifecycle.addEventListener('statechange', function check(e) {
      if (e.detail.state !== state) return
      spoke.lifecycle.removeEventListener('statechange', check)
      resolve()
    }),
  )
}

/** Encodes one wire frame: 4-byte big-endian length, then the payload. */
export function frame(payload) {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload))
  const header = Buffer.alloc(4)
  header.writeUInt32BE(body.length)
  return Buffer.concat([header, body])
}

/** Reads one wire frame's payload from a raw RecvStream; null at the end of the stream. */
export async function readFramePayload(recv) {
  let header
  try {
    header = await recv.readExact(4)
  } catch (err) {
    if (err.code === 'ERR_IROH_UNEXPECTED_END') return null
    throw err
  }
  return recv.readExact(header.readUInt32BE(0))
}

/** Reads one wire frame from a raw RecvStream as JSON; null at the end of the stream. */
export async function readFrame(recv) {
  const payload = await readFramePayload(recv)
  return payload === null ? null : JSON.parse(payload.toString())
}

/**
 * Spawns a child that prints one JSON object per line. `lines` holds every one so far;
 * `waitFor(pick)` resolves with pick()'s first result other than undefined, looking again
 * after each new line, and rejects once the child's output has ended without one.
 * `exited` resolves with `{ code, signal }`.
 */
export function spawnJsonLines(command, args, what = args[0]) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = []
  const waiters = []
  let ended = false
  const wake = () => {
    for (const resolve of waiters.splice(0)) resolve()
  }
  const output = createInterface({ input: child.stdout })
  output.on('line', (line) => {
    lines.push(JSON.parse(line))
    wake()
  })
  output.on('close', () => {
    ended = true
    wake()
  })
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const waitFor = async (pick) => {
    for (;;) {
      const found = pick()
      if (found !== undefined) return found
      if (ended) throw new Error(`${what} closed its output without printing the line waited for`)
      await new Promise((resolve) => waiters.push(resolve))
    }
  }
  return { child, lines, exited, waitFor, send: (line) => child.stdin.write(`${line}\n`) }
}

const HUB_PROCESS = fileURLToPath(new URL('./fixtures/hub-process.mjs', import.meta.url))

/**
 * Starts fixtures/hub-process.mjs with `config`. `next(key)` resolves with the first line
 * carrying `key`, `find(key, predicate)` with the first that matches; `events(n)` with the first n "e" events; `extra()` lists the events after
 * those; `all(key)` lists every value of `key` so far; `rss()` asks for the hub's RSS.
 */
export function startHubProcess(config) {
  const hub = spawnJsonLines(process.execPath, ['--expose-gc', HUB_PROCESS, JSON.stringify(config)], 'the hub process')
  const { child, lines, waitFor } = hub
  const exited = hub.exited.then(({ code }) => code)
  const all = (key) => lines.filter((l) => key in l).map((l) => l[key])
  let taken = 0
  return {
    child,
    exited,
    all,
    next: (key) => waitFor(() => lines.find((l) => key in l)?.[key]),
    find: (key, predicate) => waitFor(() => all(key).find(predicate)),
    count: (key, n) => waitFor(() => (all(key).length >= n ? all(key) : undefined)),
    events: (n) =>
      waitFor(() => {
        if (all('event').length < n) return undefined
        taken = n
        return all('event').slice(0, n)
      }),
    extra: () => all('event').slice(taken),
    rss: () => {
      const seen = all('rss').length
      hub.send('rss')
      return waitFor(() => all('rss')[seen])
    },
    /** `{ rss, anon, heapUsed, external }` of the hub, after a forced GC. */
    memory: () => {
      const seen = all('memory').length
      hub.send('rss')
      return waitFor(() => all('memory')[seen])
    },
  }
}

/**
 * Rejects with the first error reported on `target.lifecycle` (its 'error' event, the Error
 * as detail). An `expect` or `throw` inside one of `target`'s listeners goes there, not to
 * vitest: race this against what the test waits for, and such a failure fails the test
 * with its own message instead of showing as a timeout.
 */
export function failOnListenerError(target) {
  return new Promise((_, reject) =>
    target.lifecycle.addEventListener('error', (e) => reject(e.detail instanceof Error ? e.detail : new Error(`listener error: ${e.detail}`)), { once: true }),
  )
}

/**
 * `promise`, or the first listener error reported on any of `targets` (see failOnListenerError).
 * Marked handled, so that it may be awaited later than it rejects; awaiting it still throws.
 */
export function orListenerError(promise, ...targets) {
  const raced = Promise.race([promise, ...targets.map(failOnListenerError)])
  raced.catch(() => {})
  return raced
}

/**
 * How long a sender's outbox must stay exactly as full, with a flush() pending, before
 * fillUntilStalled() takes the path to its peer as full. A peer whose JS is blocked consumes
 * nothing at all, so on a full path nothing drains in any window; while the path still has
 * room, QUIC on loopback moves the outbox in well under a millisecond. 1 s with not one byte
 * drained is a pause of the native side some thousand times longer than that. A slow machine
 * only drains more slowly: any byte drained restarts the wait, so slowness lengthens the
 * loop, it does not end it early.
 */
export const NO_PROGRESS_MS = 1_000

/**
 * Fills the path to a peer that consumes nothing: calls `send()` until it throws
 * ERR_IROH_BUFFER_FULL, then waits for `flush()`; it goes on sending while the outbox drains
 * (`buffered()` goes down or the flush resolves) and stops once NO_PROGRESS_MS pass with
 * neither. Resolves with `{ sent, peakBuffered, stalled }`: `stalled` is that last flush,
 * still pending, which must stay so until the peer consumes again.
 */
export async function fillUntilStalled({ send, flush, buffered }) {
  let sent = 0
  let peakBuffered = 0
  for (;;) {
    try {
      send()
      sent++
      peakBuffered = Math.max(peakBuffered, buffered())
      continue
    } catch (err) {
      if (err?.code !== 'ERR_IROH_BUFFER_FULL') throw err
    }
    const before = buffered()
    const pending = flush()
    let timer
    const outcome = await Promise.race([
      pending.then(() => 'flushed'),
      new Promise((resolve) => {
        timer = setTimeout(resolve, NO_PROGRESS_MS, 'waiting')
      }),
    ]).finally(() => clearTimeout(timer))
    if (outcome === 'waiting' && buffered() === before) return { sent, peakBuffered, stalled: pending }
    // flush() resolves once everything buffered is handed to QUIC, and nothing was sent since.
    if (outcome === 'flushed' && buffered() !== 0) throw new Error(`flush() resolved with ${buffered()} bytes still buffered`)
    // A flush that stays pending while the outbox drains settles later: nobody awaits it.
    pending.catch(() => {})
  }
}
