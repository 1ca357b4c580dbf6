// The round-trip breakdown of case A's rtt workload (BENCH_RTT_TRACE=1, bench/README.md):
// both processes stamp every frame at each hand-over (lib/trace.js, src/pump/trace.rs) on
// the machine's one CLOCK_MONOTONIC, and the ping-pong is strictly sequential, so the
// stamps of ping i and pong i line up by position across the two processes.

import { markdownTable } from './table.mjs'

// One direction's stages, in the order a frame passes them: [stamp before, stamp after,
// what the span is]. Sender's stamps first, then the receiver's.
const HOPS = [
  ['dispatched', 'committed', 'dispatchEvent -> staged run handed to the pump (JS, microtask)'],
  ['committed', 'taken', 'native call -> writer task takes it (tokio thread wake-up)'],
  ['taken', 'written', 'writer took it -> QUIC accepted the write'],
  ['written', 'read', "QUIC write -> peer's reader has the bytes (QUIC, UDP)"],
  ['read', 'posted', 'reader has the bytes -> batch handed to the JS thread'],
  ['posted', 'woken', 'handed over -> JS thread runs it (JS thread wake-up)'],
  ['woken', 'delivered', 'JS has the batch -> listener called (parse, CustomEvent)'],
]
const SENT = ['dispatched', 'committed', 'taken', 'written']
const RECEIVED = ['read', 'posted', 'woken', 'delivered']

/** The last `count` stamps of each of `names` in `stamps`: the measured round trips. */
function tail(stamps, names, count, who) {
  const lengths = names.map((n) => stamps[n]?.length ?? 0)
  if (lengths.some((l) => l !== lengths[0] || l < count)) {
    throw new Error(`rtt trace: ${who} has ${names.map((n, i) => `${n} ${lengths[i]}`).join(', ')} stamps for ${count} round trips`)
  }
  return Object.fromEntries(names.map((n) => [n, stamps[n].slice(-count)]))
}

function stats(spansNs) {
  const us = spansNs.map((ns) => ns / 1000).sort((a, b) => a - b)
  const mean = us.reduce((s, v) => s + v, 0) / us.length
  return { p50: us[Math.floor(us.length / 2)], mean }
}

/**
 * Joins the pinging client's (the spoke's) and the echoing server's (the hub's) stamps
 * over the last `count` round trips; `rttsUs` are the client's round trips in order. µs
 * per stage, p50 and mean.
 */
export function rttBreakdown(client, server, rttsUs, count) {
  const ping = { ...tail(client, SENT, count, 'the spoke (sending)'), ...tail(server, RECEIVED, count, 'the hub (receiving)') }
  const pong = { ...tail(server, SENT, count, 'the hub (sending)'), ...tail(client, RECEIVED, count, 'the spoke (receiving)') }
  const span = (from, fromKey, to, toKey) => from[fromKey].map((t, i) => to[toKey][i] - t)
  const stages = HOPS.map(([from, to, what]) => ({
    what,
    ping: stats(span(ping, from, ping, to)),
    pong: stats(span(pong, from, pong, to)),
  }))
  const traced = span(ping, 'dispatched', pong, 'delivered')
  const rtts = rttsUs.slice(-count).map((us) => us * 1000)
  return {
    count,
    stages,
    // The echo listener: a CustomEvent, then dispatchEvent.
    hubTurnaround: stats(span(ping, 'delivered', pong, 'dispatched')),
    traced: stats(traced),
    // The bench loop around it: a CustomEvent before dispatchEvent, the promise after the listener.
    outside: stats(rtts.map((rtt, i) => rtt - traced[i])),
    rtt: stats(rtts),
  }
}

const fmt = (v) => (v === null || v === undefined ? '–' : v.toFixed(1))

/** The breakdown as a table: µs per stage, p50 and mean, each direction. */
export function renderBreakdown(b) {
  const rows = [['stage (each frame, one direction)', 'ping spoke -> hub p50 µs', 'mean', 'pong hub -> spoke p50 µs', 'mean']]
  for (const s of b.stages) rows.push([s.what, fmt(s.ping.p50), fmt(s.ping.mean), fmt(s.pong.p50), fmt(s.pong.mean)])
  const sum = (dir) => b.stages.reduce((t, s) => t + s[dir].mean, 0)
  rows.push(['sum of the stages (means)', '', fmt(sum('ping')), '', fmt(sum('pong'))])
  const one = (what, s) => rows.push([what, fmt(s.p50), fmt(s.mean), '', ''])
  one('hub listener -> its dispatchEvent (the echo)', b.hubTurnaround)
  one('round trip: spoke dispatchEvent -> spoke listener', b.traced)
  one('bench loop outside that (CustomEvent, promise resume)', b.outside)
  one('round trip as the bench measures it (traced run)', b.rtt)
  return markdownTable(rows)
}
