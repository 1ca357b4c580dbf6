// One process of the fan-out benchmark (bench/fanout/run.mjs), by `role`: `publisher` (a
// topic member that dispatches), `members` (receiving topic members), `hub` (broadcasts)
// or `spokes` (reconnecting spokes). JSON lines on stdout and stdin.
import { createInterface } from 'node:readline'
import { Endpoint, connectSpoke, createHub, joinTopic } from '../../lib/index.mjs'
import { SMALL_EVENT } from '../workload.mjs'

const LOCAL = { relayMode: 'disabled', addressLookup: 'none', bindAddr: '127.0.0.1:0' }
const ALPN = 'alkdev-fanout/1'
const TOPIC = 'fanout'
const config = JSON.parse(process.argv[2])
const out = (value) => process.stdout.write(`${JSON.stringify(value)}\n`)
const closers = []

/** Counts `{ i }` events in order: lost and twice, and when the last arrived. */
function counter(total) {
  const seen = { next: 0, twice: 0, lastAt: 0 }
  return {
    seen,
    take(i) {
      if (i < seen.next) seen.twice++
      else seen.next = i + 1
      if (seen.next === total()) seen.lastAt = Date.now()
    },
  }
}

let expected = Infinity
const counters = []
function reportWhenDone() {
  if (counters.every((c) => c.seen.next >= expected)) {
    out({ done: { lastAt: Math.max(...counters.map((c) => c.seen.lastAt)), lost: counters.reduce((n, c) => n + expected - Math.min(c.seen.next, expected), 0), twice: counters.reduce((n, c) => n + c.seen.twice, 0) } })
    expected = Infinity
  }
}

async function dispatchAll(target, n) {
  for (let i = 0; i < n; i++) {
    for (;;) {
      try {
        target.dispatchEvent(new CustomEvent(SMALL_EVENT.type, { detail: { ...SMALL_EVENT.detail, i } }))
        break
      } catch (err) {
        if (err.code !== 'ERR_IROH_BUFFER_FULL') throw err
        await target.flush()
      }
    }
  }
  await target.flush()
}

let go = null
if (config.role === 'publisher') {
  const endpoint = await Endpoint.create(LOCAL)
  const topic = await joinTopic(endpoint, TOPIC)
  closers.push(() => topic.close(), () => endpoint.close())
  out({ ready: endpoint.addr() })
  await new Promise((resolve) => {
    const check = () => topic.members().length >= config.expect && resolve()
    topic.lifecycle.addEventListener('member', check)
    check()
  })
  out({ joined: true })
  go = (n) => dispatchAll(topic, n)
} else if (config.role === 'hub') {
  const endpoint = await Endpoint.create({ ...LOCAL, alpns: [ALPN] })
  const hub = createHub(endpoint, { alpn: ALPN })
  closers.push(() => hub.close(), () => endpoint.close())
  out({ ready: endpoint.addr() })
  let admitted = 0
  await new Promise((resolve) => hub.addEventListener('spoke', () => ++admitted === config.expect && resolve()))
  out({ joined: true })
  go = async (n) => {
    for (let i = 0; i < n; i++) {
      hub.broadcast(SMALL_EVENT.type, { ...SMALL_EVENT.detail, i })
      // hub.broadcast holds what a spoke cannot take yet; a tick now and then lets it drain.
      if (i % 1_000 === 999) await new Promise((resolve) => setImmediate(resolve))
    }
  }
} else {
  await Promise.all(
    Array.from({ length: config.count }, async () => {
      const endpoint = await Endpoint.create(LOCAL)
      const c = counter(() => expected)
      counters.push(c)
      const target =
        config.role === 'members' ? await joinTopic(endpoint, TOPIC, { bootstrap: [config.ticket] }) : connectSpoke(endpoint, config.ticket, { alpn: ALPN })
      target.addEventListener(SMALL_EVENT.type, (e) => {
        c.take(e.detail.i)
        if (c.seen.next >= expected) reportWhenDone()
      })
      closers.push(() => target.close(), () => endpoint.close())
      // A topic member delivers what is dispatched after it heard of the publisher.
      if (config.role === 'members') {
        await new Promise((resolve) => {
          const check = () => target.members().includes(config.ticket.nodeId) && resolve()
          target.lifecycle.addEventListener('member', check)
          check()
        })
      }
    }),
  )
  out({ ready: true })
}

for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line)
  if (cmd.go !== undefined) {
    if (go) await go(cmd.go)
  } else if (cmd.expect !== undefined) {
    expected = cmd.expect
    reportWhenDone()
  } else if (cmd.close) break
}
for (const close of closers) await close()
process.exit(0)
