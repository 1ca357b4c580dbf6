// Injected into the browser bundle (esbuild `inject`): the Node globals lib/ uses, for a page.
import { Buffer } from 'buffer'

export { Buffer }

const channel = new MessageChannel()
const queue = []
channel.port1.onmessage = () => queue.shift()?.()

/** A macrotask without setTimeout's 4 ms clamp. */
export function setImmediate(fn, ...args) {
  queue.push(() => fn(...args))
  channel.port2.postMessage(0)
}

export const process = {
  env: {},
  nextTick: (fn, ...args) => queueMicrotask(() => fn(...args)),
  hrtime: { bigint: () => BigInt(Math.round(performance.now() * 1e6)) },
}
