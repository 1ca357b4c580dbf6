// lib/staging.js decides in JS whether a frame still fits under maxBufferedBytes, with the
// native outbox's rule (an empty buffer always takes one frame). These cases mirror the
// Rust unit test `outbox_coalesces_and_bounds` (src/batch.rs, the outbox's tests): same
// limits (maxFrameBytes 100, maxBufferedBytes 50), same frames, same verdicts. Pure JS,
// against a fake pump: no native addon, no network.
import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { rustSources } from './rust-source.mjs'

const { HEADER_BYTES, Outlet, Staging, overfull } = createRequire(import.meta.url)('../lib/staging.js')

/** A pump as staging sees it; `queued` is what the native side holds, in flight included. */
function fakePump() {
  const pump = {
    queued: 0,
    received: [],
    drainsWanted: 0,
    send(payload) {
      pump.received.push(Buffer.concat([frameHeader(payload.length), payload]))
      pump.queued += HEADER_BYTES + payload.length
      return pump.queued
    },
    sendFrames(frames) {
      pump.received.push(Buffer.from(frames))
      pump.queued += frames.length
      return pump.queued
    },
    sendStaged(frames) {
      pump.received.push(frames)
      pump.queued += frames.length
      return pump.queued
    },
    bufferedAmount: () => pump.queued,
    wantDrain() {
      pump.drainsWanted++
    },
  }
  return pump
}

const frameHeader = (len) => {
  const header = Buffer.alloc(HEADER_BYTES)
  header.writeUInt32BE(len)
  return header
}
const coded = (code) => expect.objectContaining({ code })
const failOnError = (err) => {
  throw err
}

/** A Rust integer expression of the test: `64 * 1024`, `1 << 20`, `101`, or a constant of `source`. */
function rustInt(expr, source) {
  const e = expr.trim()
  if (/^[0-9_]+$/.test(e)) return Number(e.replaceAll('_', ''))
  const shift = e.match(/^(.+?)<<(.+)$/)
  if (shift) return rustInt(shift[1], source) * 2 ** rustInt(shift[2], source)
  const times = e.match(/^(.+?)\*(.+)$/)
  if (times) return rustInt(times[1], source) * rustInt(times[2], source)
  const constant = source.match(new RegExp(`const ${e}: usize = ([^;]+);`))
  if (constant) return rustInt(constant[1], source)
  throw new Error(`cannot read the Rust integer ${e}`)
}

/** The payload length of a Rust test's `b"hello"`, `&[0; 101]` or `&vec![5; N]`. */
function rustPayloadLength(expr, source) {
  const literal = expr.match(/^b"([^"]*)"$/)
  if (literal) return literal[1].length
  const repeated = expr.match(/^&(?:vec!)?\[[^;]+;(.+)\]$/)
  if (repeated) return rustInt(repeated[1], source)
  throw new Error(`cannot read the Rust payload ${expr}`)
}

/**
 * The pushes of the Rust test `outbox_coalesces_and_bounds`, read from its source: for each,
 * the outbox's limits, what it buffered (writer's share included), the payload length, and
 * the verdict the Rust test asserts (`ok`, `full`, `too large`). Follows the outbox's length
 * through accepted pushes and `take()`, and checks it against the test's `o.len()` asserts.
 */
function rustOutboxCases(source) {
  const start = source.indexOf('fn outbox_coalesces_and_bounds()')
  const body = source.slice(start, source.indexOf('\n    }\n', start))
  const cases = []
  let limits = null
  let len = 0
  for (const raw of body.split('\n').slice(1)) {
    const line = raw.trim()
    const created = line.match(/Outbox::new\((.+), (.+)\);$/)
    if (created) {
      limits = { maxFrame: rustInt(created[1], source), maxBuffered: rustInt(created[2], source) }
      len = 0
      continue
    }
    if (/\bo\.take\(\)/.test(line)) len = 0
    const length = line.match(/^assert_eq!\(o\.len\(\), (\d+)\);$/)
    if (length) expect(len, `the outbox length at \`${line}\``).toBe(Number(length[1]))
    const push = line.match(/o\.push\((b"[^"]*"|&(?:vec!)?\[[^\]]*\]), ([^,()]+)\)/)
    if (!push) continue
    const payload = rustPayloadLength(push[1], source)
    const expected = /Ok\(|\.unwrap\(\)/.test(line) ? 'ok' : /OutboxError::Full/.test(line) ? 'full' : /OutboxError::FrameTooLarge/.test(line) ? 'too large' : null
    if (expected === null) throw new Error(`no verdict in the Rust line ${line}`)
    const ok = line.match(/Ok\((\d+)\)/)
    if (ok) expect(Number(ok[1]), `the wire length at \`${line}\``).toBe(HEADER_BYTES + payload)
    cases.push({ line, ...limits, buffered: len + rustInt(push[2], source), len: payload, expected })
    if (expected === 'ok') len += HEADER_BYTES + payload
  }
  return cases
}

// Both kinds of staging: text frames copied by the pump (event targets), and byte frames
// handed over whole (message channels).
const modes = [
  { name: 'text, copied', handOver: false, stage: (s, o, n, fill = 'x') => s.stageText(o, fill.repeat(n)) },
  { name: 'bytes, handed over', handOver: true, stage: (s, o, n, fill = 'x') => s.stageBytes(o, Buffer.from(fill.repeat(n))) },
]

describe('the outbox rule', () => {
  it('an empty buffer always takes one frame; otherwise header and payload must fit', () => {
    // The numbers of outbox_coalesces_and_bounds, buffer cap 50.
    expect(overfull(0, 5, 50)).toBe(false) // "hello" into an empty outbox
    expect(overfull(9, 5, 50)).toBe(false) // "world" after it: 18 bytes
    expect(overfull(18, 40, 50)).toBe(true) // 18 + 44 > 50: Full
    expect(overfull(45, 10, 50)).toBe(true) // what the writer holds counts: Full
    expect(overfull(0, 90, 50)).toBe(false) // empty: above the buffer cap, within the frame cap
    expect(overfull(36, 10, 50)).toBe(false) // exactly at the cap fits
    expect(overfull(37, 10, 50)).toBe(true)
  })

  it('is the rule of the Rust test these cases mirror', () => {
    const holder = rustSources().find(({ text }) => text.includes('fn outbox_coalesces_and_bounds()'))
    expect(holder, 'the Rust test outbox_coalesces_and_bounds, which staging.test.mjs mirrors').toBeDefined()
    // Every push of the Rust test, run through the JS rule: the same verdict for each.
    const cases = rustOutboxCases(holder.text)
    expect(cases.map((c) => c.expected)).toEqual(['ok', 'ok', 'too large', 'full', 'full', 'ok', 'ok', 'ok', 'ok'])
    for (const c of cases) {
      const js = c.len > c.maxFrame ? 'too large' : overfull(c.buffered, c.len, c.maxBuffered) ? 'full' : 'ok'
      expect(js, `JS verdict on the Rust case \`${c.line}\``).toBe(c.expected)
    }
  })
})

describe.each(modes)('staging ($name)', ({ handOver, stage }) => {
  it('coalesces and bounds as the native outbox does (outbox_coalesces_and_bounds)', () => {
    const pump = fakePump()
    const staging = new Staging({ size: 1024, handOver })
    const outlet = new Outlet(pump, { maxFrameBytes: 100, maxBufferedBytes: 50 }, failOnError)
    stage(staging, outlet, 1, 'hello')
    stage(staging, outlet, 1, 'world')
    expect(pump.received).toEqual([]) // staged until the commit: one hand-over for both
    staging.commit()
    expect(Buffer.concat(pump.received)).toEqual(Buffer.from('\0\0\0\x05hello\0\0\0\x05world', 'latin1'))
    expect(outlet.buffered).toBe(18)
    if (!handOver) {
      // Text is measured as it is encoded; a channel checks a message's size before staging.
      expect(() => stage(staging, outlet, 101)).toThrow(coded('ERR_IROH_FRAME_TOO_LARGE'))
    }
    expect(() => stage(staging, outlet, 40)).toThrow(coded('ERR_IROH_BUFFER_FULL'))
    expect(pump.drainsWanted).toBe(1)
    // The writer takes everything; then 45 bytes go to it and are being written.
    pump.queued = 0
    stage(staging, outlet, 41)
    staging.commit()
    expect(pump.queued).toBe(45)
    // What the writer holds counts against the cap.
    expect(() => stage(staging, outlet, 10)).toThrow(coded('ERR_IROH_BUFFER_FULL'))
    // An empty buffer takes one frame above the buffer cap but within the frame cap.
    pump.queued = 0
    stage(staging, outlet, 90)
    staging.commit()
    expect(pump.received.at(-1)).toEqual(Buffer.concat([frameHeader(90), Buffer.from('x'.repeat(90))]))
    expect(pump.queued).toBe(94)
  })

  it('stages one pump at a time, so each gets its frames in order', () => {
    const a = fakePump()
    const b = fakePump()
    const staging = new Staging({ size: 1024, handOver })
    const limits = { maxFrameBytes: 100, maxBufferedBytes: 1000 }
    const outA = new Outlet(a, limits, failOnError)
    const outB = new Outlet(b, limits, failOnError)
    stage(staging, outA, 1, 'a')
    stage(staging, outA, 1, 'b')
    stage(staging, outB, 1, 'c') // hands a's run over first
    expect(a.received).toHaveLength(1)
    stage(staging, outA, 1, 'd')
    staging.commit()
    expect(Buffer.concat(a.received).toString('latin1')).toBe('\0\0\0\x01a\0\0\0\x01b\0\0\0\x01d')
    expect(Buffer.concat(b.received).toString('latin1')).toBe('\0\0\0\x01c')
  })

  it('commits on its own at the end of the tick', async () => {
    const pump = fakePump()
    const staging = new Staging({ size: 1024, handOver })
    stage(staging, new Outlet(pump, { maxFrameBytes: 100, maxBufferedBytes: 1000 }, failOnError), 3, 'z')
    expect(pump.received).toEqual([])
    await Promise.resolve()
    expect(Buffer.concat(pump.received).toString('latin1')).toBe('\0\0\0\x03zzz')
  })

  it('starts again when full, and never writes into a run it handed over', () => {
    const pump = fakePump()
    const staging = new Staging({ size: 64, handOver })
    const outlet = new Outlet(pump, { maxFrameBytes: 100, maxBufferedBytes: 10_000 }, failOnError)
    for (const fill of 'abcdef') stage(staging, outlet, 10, fill)
    staging.commit()
    const expected = [...'abcdef'].map((fill) => Buffer.concat([frameHeader(10), Buffer.from(fill.repeat(10))]))
    expect(Buffer.concat(pump.received)).toEqual(Buffer.concat(expected))
    expect(pump.received.length).toBeGreaterThan(1)
    // A run handed over whole stays as it was handed over.
    expect(pump.received[0].subarray(0, 14)).toEqual(expected[0])
  })
})

describe('staging text', () => {
  it('sends text that could not fit the staging buffer at once, after what was staged', () => {
    const pump = fakePump()
    const staging = new Staging({ size: 64 })
    const outlet = new Outlet(pump, { maxFrameBytes: 1000, maxBufferedBytes: 10_000 }, failOnError)
    staging.stageText(outlet, 'small')
    staging.stageText(outlet, 'y'.repeat(30)) // 4 + 90 bytes at most: too big to stage
    expect(pump.received.map((b) => b.length)).toEqual([9, 34])
  })

  it('reports a failed hand-over, but not one to a connection that closed', () => {
    const errors = []
    const pump = fakePump()
    const staging = new Staging({ size: 1024 })
    const outlet = new Outlet(pump, { maxFrameBytes: 100, maxBufferedBytes: 1000 }, (err) => errors.push(err))
    pump.sendFrames = () => {
      throw Object.assign(new Error('closed'), { code: 'ERR_IROH_CONNECTION_CLOSED' })
    }
    staging.stageText(outlet, 'a')
    staging.commit()
    pump.sendFrames = () => {
      throw new Error('panicked')
    }
    staging.stageText(outlet, 'b')
    staging.commit()
    expect(errors.map((e) => e.code)).toEqual(['ERR_IROH_INTERNAL'])
  })
})

describe('staging broadcasts', () => {
  /** A fake broadcastFrames over fake pumps: one call per hand-over, recorded. */
  function broadcaster() {
    const calls = []
    const broadcastFrames = (outlets, frames) => {
      calls.push(outlets.length)
      return outlets.map((o) => o.pump.sendFrames(frames))
    }
    return { calls, staging: new Staging({ size: 1024, broadcastFrames }) }
  }
  const limits = { maxFrameBytes: 100, maxBufferedBytes: 1000 }
  const frame = (text) => Buffer.concat([frameHeader(text.length), Buffer.from(text)])
  const text = (pump) => Buffer.concat(pump.received).toString('latin1').replace(/\0\0\0[\s\S]/g, '|')

  it('hands a burst to the same pumps in one call, in order with their own frames', () => {
    const { calls, staging } = broadcaster()
    const [a, b] = [fakePump(), fakePump()]
    const outlets = [new Outlet(a, limits, failOnError), new Outlet(b, limits, failOnError)]
    staging.stageText(outlets[0], 'a-own')
    staging.commitRun()
    expect(staging.stageBroadcast([...outlets], frame('b1'))).toBe(true)
    expect(staging.stageBroadcast([...outlets], frame('b2'))).toBe(true)
    // commitRun leaves staged broadcasts staged: they stay one run.
    staging.commitRun()
    expect(calls).toEqual([])
    staging.stageText(outlets[1], 'b-own') // another run: the broadcasts go first
    expect(calls).toEqual([2])
    expect(staging.stageBroadcast([...outlets], frame('b3'))).toBe(true)
    staging.commit()
    expect(calls).toEqual([2, 2])
    expect(text(a)).toBe('|a-own|b1|b2|b3')
    expect(text(b)).toBe('|b1|b2|b-own|b3')
  })

  it('commits on its own at the end of the tick, and apart for a different set of pumps', async () => {
    const { calls, staging } = broadcaster()
    const [a, b] = [fakePump(), fakePump()]
    const [outA, outB] = [new Outlet(a, limits, failOnError), new Outlet(b, limits, failOnError)]
    staging.stageBroadcast([outA, outB], frame('x'))
    staging.stageBroadcast([outA], frame('y'))
    expect(calls).toEqual([2])
    await Promise.resolve()
    expect(calls).toEqual([2, 1])
    expect([text(a), text(b)]).toEqual(['|x|y', '|x'])
    expect([outA.buffered, outB.buffered]).toEqual([a.queued, b.queued])
  })

  it('stages nothing, and hands over what it staged, when a pump might pass maxBufferedBytes', () => {
    const { calls, staging } = broadcaster()
    const a = fakePump()
    const outlet = new Outlet(a, { maxFrameBytes: 100, maxBufferedBytes: 30 }, failOnError)
    expect(staging.stageBroadcast([outlet], frame('x'.repeat(10)))).toBe(true)
    // 14 staged + 4 + 20 > 30: the caller must hand it over itself and hear the verdict.
    expect(staging.stageBroadcast([outlet], frame('y'.repeat(20)))).toBe(false)
    expect(calls).toEqual([1])
    expect(text(a)).toBe(`|${'x'.repeat(10)}`)
  })
})
