'use strict'

// A topic: many members and no hub. Every member's `dispatchEvent` reaches every other
// member (not itself) exactly once and in that author's order, pushed by its author to
// each member, with repair of what a push missed (src/topic.rs). Sending goes through the same pump
// staging as the other targets (lib/pump.js); what arrives is one author's events per
// batch, dispatched as `TopicEvent`s that name their author.

const binding = require('./native.js')
const { address, forget } = require('./mailbox.js')
const { Endpoint, NATIVE: ENDPOINT } = require('./endpoint.js')
const { Pump, answeredByPump } = require('./pump.js')
const { invalidArgument, irohError, normalizeError, requireString } = require('./errors.js')
const { checkOptions, TOPIC } = require('./options.js')
const { Listeners, listenable } = require('./listeners.js')
const { KeepAlive, refable } = require('./keep-alive.js')
const { native } = require('./pending.js')
const { eventText } = require('./wire-event.js')

// As on the other targets: a createPubSub subscriber overflows past 1,024 synchronous pushes.
const DISPATCH_CHUNK = 256
const yieldMacrotask = () => new Promise((resolve) => setImmediate(resolve))
/** Package-internal: `topic[PUMP]` is its raw native pump (tests play a hostile member with it). */
const PUMP = Symbol('pump')

/** An event from another member: a CustomEvent that also names its author. */
class TopicEvent extends CustomEvent {
  /** The node id of the member that dispatched it. */
  author

  constructor(type, detail, author) {
    super(type, { detail })
    this.author = author
  }
}

class Topic {
  // An open topic keeps the process alive, as a hub target does; unref() opts out.
  static {
    refable(this, (topic) => topic.#keepAlive)
    listenable(this, (topic) => topic.#listeners)
    answeredByPump(this, (topic) => topic.#pump)
  }
  #pump
  #keepAlive = new KeepAlive().hold()
  #listeners = new Listeners((err) => this.#pump.life.reportError(err))
  #inbox = Promise.resolve()
  #members = new Set()
  #neighbors = new Set()
  #raw

  /** The topic's name, as joined. */
  name

  /**
   * Lifecycle signals: `close`, `error`, `drain`; `neighborup` / `neighbordown` (detail
   * `{ nodeId }`: a gossip neighbour came or went); `member` (`{ nodeId }`: first word from
   * a member); `gap` (`{ author, from, to }`: those events of `author` are gone everywhere
   * this member could ask; delivery goes on after them); `dropped` (`{ author, reason }`:
   * a forged, replayed, malformed or not-allowed message was not delivered).
   */
  lifecycle

  constructor(raw, name, opened) {
    this.#raw = raw
    this.name = name
    const source = {
      connection: null,
      open: (_options, deliver) => {
        opened(deliver)
        return raw
      },
    }
    this.#pump = new Pump(source, { mode: 'json' }, 'topic', (message) => this.#receive(message))
    this.lifecycle = this.#pump.life.events
  }

  /** Sends `{ type, detail }` to every other member. Never waits; returns true. */
  dispatchEvent(event) {
    const text = eventText(JSON.stringify, event)
    this.#pump.checkOpen()
    this.#pump.stageText(text)
    return true
  }

  /** Resolves once everything dispatched so far has been handed to the members' push queues. */
  async flush() {
    await this.#pump.flush()
  }

  /** Writes what is queued to the members (for at most 10 s), then leaves the topic. Resolves with the close info. */
  close(code = 0, reason = '') {
    return this.#pump.close(code, reason)
  }

  /** Node ids of the members heard from so far (not this one). */
  members() {
    return [...this.#members]
  }

  /** Node ids of the gossip neighbours connected now. */
  neighbors() {
    return [...this.#neighbors]
  }

  get [PUMP]() {
    return this.#raw
  }

  /** This member's session number: new each time it joins (decimal string). */
  session() {
    return this.#raw.session()
  }

  #receive(message) {
    this.#inbox = this.#inbox.then(() => this.#handle(message)).catch((err) => this.#pump.life.reportError(normalizeError(err)))
  }

  async #handle(message) {
    const life = this.#pump.life
    switch (message.kind) {
      case 'events': {
        try {
          const events = JSON.parse(message.json)
          const make = (type, detail) => new TopicEvent(type, detail, message.author)
          for (let i = 0; i < events.length; i++) {
            if (i > 0 && i % DISPATCH_CHUNK === 0) await yieldMacrotask()
            const event = events[i]
            this.#listeners.emit(this, event.type, event.detail === undefined ? null : event.detail, make)
          }
        } finally {
          // Whatever happened to this batch, the next one must come.
          this.#pump.ack()
        }
        break
      }
      case 'drain':
        this.#pump.drained()
        break
      case 'neighbor':
        if (message.up) this.#neighbors.add(message.nodeId)
        else this.#neighbors.delete(message.nodeId)
        life.emit(message.up ? 'neighborup' : 'neighbordown', { nodeId: message.nodeId })
        break
      case 'member':
        this.#members.add(message.nodeId)
        life.emit('member', { nodeId: message.nodeId })
        break
      case 'gap':
        life.emit('gap', { author: message.author, from: message.from, to: message.to })
        break
      case 'dropped':
        life.emit('dropped', { author: message.author ?? null, reason: message.reason })
        break
      case 'closed':
        this.#pump.finish(message.closed, () => this.#keepAlive.release())
        break
    }
  }
}

/**
 * Joins the topic `name` on `endpoint` (one membership per topic per endpoint) through the
 * members in `options.bootstrap`, and resolves to its event target.
 */
async function joinTopic(endpoint, name, options) {
  if (!(endpoint instanceof Endpoint)) throw invalidArgument('joinTopic expects an Endpoint from Endpoint.create()')
  requireString(name, 'name')
  const checked = checkOptions(TOPIC, options)
  // The browser build has no gossip (a page has only relay connections and no accept loop for it).
  if (typeof binding.joinTopic !== 'function') throw irohError('ERR_IROH_UNSUPPORTED', 'this build has no topics: the browser build has none (join from Node); in Node, the native addon is older than lib/ (rebuild it)')
  // What arrives before the target exists waits here.
  const early = []
  let deliver = (message) => early.push(message)
  const to = address((message) => {
    if (message.kind === 'closed') forget(to)
    deliver(message)
  })
  // Joining keeps the process alive, as a dial does.
  const joining = new KeepAlive().hold()
  let raw
  try {
    raw = await native(() =>
      binding.joinTopic(
        endpoint[ENDPOINT],
        name,
        {
          bootstrap: checked.bootstrap,
          allow: checked.allow,
          maxEventBytes: checked.maxEventBytes,
          maxBufferedBytes: checked.maxBufferedBytes,
          receiveBufferBytes: checked.receiveBufferBytes,
          retentionBytes: checked.retention?.maxBytes,
          retentionMs: checked.retention?.maxAgeMs,
          headsIntervalMs: checked.headsIntervalMs,
        },
        to,
      ),
    )
  } catch (err) {
    forget(to)
    throw err
  } finally {
    joining.release()
  }
  return new Topic(raw, name, (receive) => {
    deliver = receive
    for (const message of early.splice(0)) receive(message)
  })
}

module.exports = { Topic, TopicEvent, joinTopic, PUMP }
