// Case B: a `ws` WebSocket, one text message per event.
import { once } from 'node:events'
import { WebSocket, WebSocketServer } from 'ws'
import { Dispatcher } from '../workload.mjs'

const HIGH_WATER = 1 << 20

export async function listen() {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false })
  await once(server, 'listening')
  return {
    addr: `ws://127.0.0.1:${server.address().port}`,
    async accept() {
      const [ws] = await once(server, 'connection')
      return wrap(ws, server)
    },
  }
}

/** `config.fireAndForget`: send without looking at bufferedAmount, as much ws code does. */
export async function dial(addr, config = {}) {
  const ws = new WebSocket(addr, { perMessageDeflate: false })
  await once(ws, 'open')
  return wrap(ws, null, config.fireAndForget ? Infinity : HIGH_WATER)
}

function wrap(ws, server, highWater = HIGH_WATER) {
  const target = new Dispatcher()
  ws.on('message', (data) => target.receive(data.toString()))
  const ended = once(ws, 'close')
  // ws has no drain event of its own; its bufferedAmount is the socket's buffer.
  const drained = () => once(ws._socket, 'drain')
  return {
    target,
    send(event) {
      if (ws.bufferedAmount >= highWater) return false
      ws.send(JSON.stringify({ type: event.type, detail: event.detail }))
      return true
    },
    ready: drained,
    flush: () => (ws.bufferedAmount === 0 ? Promise.resolve() : drained()),
    async close() {
      ws.close()
      await ended
    },
    async closed() {
      await ended
      server?.close()
    },
  }
}
