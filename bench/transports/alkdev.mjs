// Case A: this package's hub/spoke event targets.
import { Endpoint, createHubIrohEventTarget, createSpokeIrohEventTarget } from '../../lib/index.mjs'

const ALPN = 'alkdev-bench/1'
const LOCAL = { relayMode: 'disabled', addressLookup: 'none', bindAddr: '127.0.0.1:0' }

export async function listen() {
  const endpoint = await Endpoint.create({ ...LOCAL, alpns: [ALPN] })
  return {
    addr: endpoint.ticket(),
    async accept() {
      const conn = await endpoint.accept()
      return wrap(await createHubIrohEventTarget(conn), endpoint)
    },
  }
}

export async function dial(addr) {
  const endpoint = await Endpoint.create(LOCAL)
  const conn = await endpoint.connect(addr, ALPN, { timeoutMs: 10_000 })
  return wrap(await createSpokeIrohEventTarget(conn), endpoint)
}

function wrap(target, endpoint) {
  const closed = target.closed
  return {
    target,
    send(event) {
      try {
        return target.dispatchEvent(event)
      } catch (err) {
        if (err.code === 'ERR_IROH_BUFFER_FULL') return false
        throw err
      }
    },
    ready: () => new Promise((resolve) => target.lifecycle.addEventListener('drain', resolve, { once: true })),
    flush: () => target.flush(),
    async close() {
      await target.close()
      await endpoint.close()
    },
    async closed() {
      await closed
      await endpoint.close()
    },
  }
}
