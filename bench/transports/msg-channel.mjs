// Case G: this package's binary message channel (`createMessageChannel`), received with
// `for await`.
import { createMessageChannel } from '../../lib/index.mjs'
import { irohTransport, peerOf } from './alkdev.mjs'

export const { listen, dial } = irohTransport(
  (conn, endpoint) => wrap(createMessageChannel(conn, { role: 'accept' }), endpoint),
  (conn, endpoint) => wrap(createMessageChannel(conn, { role: 'open' }), endpoint),
)

function wrap(channel, endpoint) {
  return { messages: channel, ...peerOf(channel, endpoint, (bytes) => channel.send(bytes)) }
}
