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

/** Node's timers have ref/unref (lib/ unrefs its timers); a page's are numbers. */
class Timer {
  constructor(id) {
    this.id = id
  }
  ref() {
    return this
  }
  unref() {
    return this
  }
  hasRef() {
    return true
  }
  [Symbol.toPrimitive]() {
    return this.id
  }
}

const idOf = (timer) => (timer instanceof Timer ? timer.id : timer)

function _setTimeout(fn, ms, ...args) {
  return new Timer(globalThis.setTimeout(fn, ms, ...args))
}
function _setInterval(fn, ms, ...args) {
  return new Timer(globalThis.setInterval(fn, ms, ...args))
}
function _clearTimeout(timer) {
  globalThis.clearTimeout(idOf(timer))
}
function _clearInterval(timer) {
  globalThis.clearInterval(idOf(timer))
}

export { _setTimeout as setTimeout, _setInterval as setInterval, _clearTimeout as clearTimeout, _clearInterval as clearInterval }
