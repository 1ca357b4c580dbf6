// Case A: this package's hub/spoke event targets.
import { Endpoint, createHubIrohEventTarget, createSpokeIrohEventTarget } from '../../lib/index.mjs'
import trace from '../../lib/trace.js'

const ALPN = 'alkdev-bench/1'
const LOCAL = { relayMode: 'disabled', addressLookup: 'none', bindAddr: '127.0.0.1:0' }

/**
 * `listen()` and `dial(addr)` over loopback iroh: `accepted(conn, endpoint)` and
 * `dialed(conn, endpoint)` make the peer of each side's connection.
 */
export function irohTransport(accepted, dialed) {
  return {
    async listen() {
      const endpoint = await Endpoint.create({ ...LOCAL, alpns: [ALPN] })
      return {
        addr: endpoint.ticket(),
        accept: async () => accepted(await endpoint.accept(), endpoint),
      }
    },
    async dial(addr) {
      const endpoint = await Endpoint.create(LOCAL)
      return dialed(await endpoint.connect(addr, ALPN, { timeoutMs: 10_000 }), endpoint)
    },
  }
}

export const { listen, dial } = irohTransport(
  async (conn, endpoint) => wrap(await createHubIrohEventTarget(conn), endpoint),
  async (conn, endpoint) => wrap(await createSpokeIrohEventTarget(conn), endpoint),
)

function wrap(target, endpoint) {
  // trace(): the round-trip breakdown's stamps, when ALKDEV_IROH_TRACE=1 (lib/trace.js).
  return { target, trace: () => target[trace.STAMPS](), ...peerOf(target, endpoint, (event) => target.dispatchEvent(event)) }
}

/**
 * The workload's view of an event target or a message channel on `endpoint`: `send`
 * returns false when the buffer is full (ready() then waits for drain).
 */
export function peerOf(thing, endpoint, send) {
  const closed = thing.closed
  return {
    send(value) {
      try {
        send(value)
        return true
      } catch (err) {
        if (err.code === 'ERR_IROH_BUFFER_FULL') return false
        throw err
      }
    },
    ready: () => new Promise((resolve) => thing.lifecycle.addEventListener('drain', resolve, { once: true })),
    flush: () => thing.flush(),
    async close() {
      await thing.close()
      await endpoint.close()
    },
    async closed() {
      await closed
      await endpoint.close()
    },
  }
}
