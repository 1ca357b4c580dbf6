// A hub and three spokes on loopback exchanging events through the event targets, the
// way @alkdev/pubsub uses them: spokes request calls, the hub answers each and
// broadcasts a notice to all. No internet needed: relays and n0 address lookup are off
// (and this package has no port mapper).
import { Endpoint, createHubIrohEventTarget, createSpokeIrohEventTarget } from '@alkdev/iroh'

const ALPN = 'alkhub/1'
const local = { relayMode: 'disabled', addressLookup: 'none', bindAddr: '127.0.0.1:0' }
const short = (id) => `${id.slice(0, 8)}…`
const names = ['alpha', 'beta', 'gamma']

const hub = await Endpoint.create({ ...local, alpns: [ALPN] })
console.log(`hub     ${short(hub.nodeId())} at ${hub.addr().directAddresses.join(', ')}`)

const hubTargets = []
const hubDone = (async () => {
  for (let i = 0; i < names.length; i++) {
    const conn = await hub.accept()
    if (!conn) break
    const target = await createHubIrohEventTarget(conn)
    hubTargets.push(target)
    target.addEventListener('call.requested', (event) => {
      const { id, op, args } = event.detail
      console.log(`hub     <- call.requested ${id} ${op}(${args.join(', ')}) from ${short(conn.remoteNodeId())}`)
      const result = op === 'sum' ? args.reduce((a, b) => a + b, 0) : args
      target.dispatchEvent(new CustomEvent('call.responded', { detail: { id, result } }))
    })
    target.closed.then((info) => console.log(`hub     spoke ${short(conn.remoteNodeId())} left: ${info.kind} "${info.reason}"`))
  }
})()

const spokes = await Promise.all(
  names.map(async (name, n) => {
    const endpoint = await Endpoint.create(local)
    const conn = await endpoint.connect(hub.ticket(), ALPN, { timeoutMs: 5000 })
    const target = await createSpokeIrohEventTarget(conn)
    const answered = new Promise((resolve) => {
      target.addEventListener('call.responded', (event) => {
        console.log(`${name.padEnd(7)} <- call.responded ${event.detail.id} = ${JSON.stringify(event.detail.result)}`)
        resolve()
      })
    })
    const noticed = new Promise((resolve) => {
      target.addEventListener('hub.notice', (event) => {
        console.log(`${name.padEnd(7)} <- hub.notice "${event.detail.text}"`)
        resolve()
      })
    })
    target.dispatchEvent(new CustomEvent('call.requested', { detail: { id: `${name}-1`, op: 'sum', args: [n, 10, 100] } }))
    await answered
    return { name, endpoint, target, noticed }
  }),
)
await hubDone
for (const target of hubTargets) target.dispatchEvent(new CustomEvent('hub.notice', { detail: { text: 'all spokes served' } }))
await Promise.all(spokes.map((s) => s.noticed))
for (const { name, target } of spokes) await target.close(0, `${name} done`)
await Promise.all(hubTargets.map((t) => t.closed))
await Promise.all([...spokes.map((s) => s.endpoint.close()), hub.close()])
console.log('all closed; the process exits on its own')
