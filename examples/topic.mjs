// One topic, three processes, no hub: each process joins, publishes a greeting through
// createPubSub, prints the greetings of the other two, and leaves.
//
//   node examples/topic.mjs            (starts the other two itself)
//
// The first process is the others' way in (their `bootstrap`); after that every member
// talks to every other. Loopback only: relays off, no n0 address lookup.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createPubSub } from '@graphql-yoga/subscription'
import { Endpoint, joinTopic } from '../lib/index.mjs'

const [, , name = 'ada', bootstrap] = process.argv
const endpoint = await Endpoint.create({ relayMode: 'disabled', addressLookup: 'none', bindAddr: '127.0.0.1:0' })
const topic = await joinTopic(endpoint, 'greetings', { bootstrap: bootstrap ? [bootstrap] : [] })
const pubsub = createPubSub({ eventTarget: topic })

const children = bootstrap ? [] : ['grace', 'linus'].map((n) => spawn(process.execPath, [fileURLToPath(import.meta.url), n, endpoint.ticket()], { stdio: 'inherit' }))

// Listen first: another member may greet before this one is ready to.
const heard = (async () => {
  const from = new Set()
  for await (const greeting of pubsub.subscribe('greeting')) {
    console.log(`${name} heard: ${greeting.text}`)
    from.add(greeting.from)
    if (from.size === 2) break
  }
})()

// Greet once every member has been heard from, so that nobody misses the greeting.
await new Promise((resolve) => {
  const check = () => topic.members().length === 2 && resolve()
  topic.lifecycle.addEventListener('member', check)
  check()
})
pubsub.publish('greeting', { from: name, text: `hello from ${name}` })
await heard
// The others may still need this member to relay: wait for them before leaving.
await Promise.all(children.map((c) => new Promise((resolve) => c.on('exit', resolve))))
await topic.close()
await endpoint.close()
