// A hub and three spokes on loopback: each spoke dials the hub by its ticket, sends a
// greeting on a bidirectional stream and prints the hub's reply. No internet needed:
// relays, n0 address lookup and port mapping are all off.
import { Endpoint } from '@alkdev/iroh'

const ALPN = 'alkhub/1'
const local = { relayMode: 'disabled', addressLookup: 'none', bindAddr: '127.0.0.1:0' }

const hub = await Endpoint.create({ ...local, alpns: [ALPN] })
console.log(`hub    ${hub.nodeId().slice(0, 10)}… listening at ${hub.addr().directAddresses.join(', ')}`)

const served = (async () => {
  const done = []
  for (let i = 0; i < 3; i++) {
    const conn = await hub.accept()
    if (!conn) break
    done.push((async () => {
      const { send, recv } = await conn.acceptBi()
      const text = (await recv.readToEnd(64 * 1024)).toString()
      console.log(`hub    <- ${conn.remoteNodeId().slice(0, 10)}…: ${text}`)
      await send.writeAll(Buffer.from(`welcome, ${text.split(' ').at(-1)}`))
      await send.finish()
      const info = await conn.closed()
      console.log(`hub    connection from ${conn.remoteNodeId().slice(0, 10)}… closed: ${info.kind} ${info.code} ${info.reason}`)
    })())
  }
  await Promise.all(done)
})()

const spokes = await Promise.all(
  ['alpha', 'beta', 'gamma'].map(async (name) => {
    const spoke = await Endpoint.create(local)
    const conn = await spoke.connect(hub.ticket(), ALPN, { timeoutMs: 5000 })
    const { send, recv } = await conn.openBi()
    await send.writeAll(Buffer.from(`hello from ${name}`))
    await send.finish()
    const reply = (await recv.readToEnd(64 * 1024)).toString()
    console.log(`${name.padEnd(6)} -> got "${reply}" (rtt ${conn.rtt().toFixed(2)} ms)`)
    conn.close(0, `${name} done`)
    return spoke
  }),
)
await served
await Promise.all([...spokes.map((s) => s.close()), hub.close()])
console.log('all closed; the process exits on its own')
