'use strict'

// One declarative option table per class: each option's name, type, default and bounds,
// from which its check and its error message come. A table marked `strict` refuses names it
// does not list: a misspelt endpoint option (say `relaymode`) would otherwise silently use
// n0's relays. The endpoint and relay server tables pass their options on to Rust structs
// (#[napi(object)]); __test__/option-names.test.mjs fails when their names drift from those
// structs or from binding.d.ts.

const { invalidArgument, irohError } = require('./errors.js')
const { parseNodeId } = require('./identity.js')

const U32 = 0xffffffff

/** An integer from `min` to `max` (or Infinity, with `orInfinity`). */
function integer({ min = 0, max = Number.MAX_SAFE_INTEGER, orInfinity = false, default: fallback } = {}) {
  const bounds = max === U32 && min === 1 ? 'a positive integer below 2^32' : max === Number.MAX_SAFE_INTEGER ? (min === 0 ? 'a non-negative integer' : `an integer of at least ${min}`) : `an integer from ${min} to ${max}`
  return {
    default: fallback,
    must: orInfinity ? `${bounds}, or Infinity` : bounds,
    check: (v) => (Number.isInteger(v) && v >= min && v <= max) || (orInfinity && v === Infinity),
  }
}

const boolean = (fallback) => ({ default: fallback, must: 'a boolean', check: (v) => typeof v === 'boolean' })

/** A string; `code` for the error when it is not. */
const string = ({ code, required = false } = {}) => ({ required, code, must: 'a string', check: (v) => typeof v === 'string' })

const func = (signature) => ({ must: `a function ${signature}`, check: (v) => typeof v === 'function' })

/** An array whose every item passes `each` (its error says `items`, with `code`). */
const arrayOf = (items, each, code) => ({
  must: `an array of ${items}`,
  check: (v) => Array.isArray(v),
  convert: (v) => {
    for (const item of v) if (!each(item)) throw irohError(code ?? 'ERR_IROH_INVALID_ARGUMENT', `each of them must be ${items.replace(/s$/, '')}, got ${describe(item)}`)
    return v
  },
})

/** Checked by the native side: only the name is the table's business. */
const native = () => ({ check: () => true })

/** Nested options, checked against `table`. */
const nested = (table) => ({ must: 'an object', check: (v) => v === null || typeof v === 'object', convert: (v) => checkOptions(table, v) })

/**
 * A table: `fields` by name; `what` names its owner in errors; `strict` refuses other names;
 * `required`, the message when the options object itself is missing; `refine(out)`, rules
 * across fields.
 */
const table = (what, fields, { strict = false, required = null, refine = null } = {}) => ({ what, fields, strict, required, refine })

function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `a string of length ${value.length}`
  return typeof value
}

/**
 * Checks `options` against `table`: the options with each default filled in and each value
 * converted (what is not in the table, symbol-keyed package-internal options included,
 * passes as it is). Throws ERR_IROH_INVALID_ARGUMENT (or the option's own code).
 */
function checkOptions(table, options) {
  if (options === undefined || options === null) {
    if (table.required !== null) throw invalidArgument(table.required)
    options = {}
  } else if (typeof options !== 'object') throw invalidArgument('options must be an object')
  if (table.strict) {
    for (const key of Object.keys(options)) {
      if (!Object.hasOwn(table.fields, key)) throw invalidArgument(`unknown ${table.what} option ${JSON.stringify(key)}`)
    }
  }
  const out = { ...options }
  for (const [name, field] of Object.entries(table.fields)) {
    const value = options[name]
    if (value === undefined) {
      if (field.required) throw irohError(field.code ?? 'ERR_IROH_INVALID_ARGUMENT', `options.${name} must be ${field.must}, got undefined`)
      if (field.default !== undefined) out[name] = field.default
      continue
    }
    if (!field.check(value)) {
      throw irohError(field.code ?? 'ERR_IROH_INVALID_ARGUMENT', `options.${name} must be ${field.must}, got ${describe(value)}`)
    }
    if (field.convert) out[name] = field.convert(value)
  }
  table.refine?.(out)
  return out
}

const isSerializer = (s) => s !== null && typeof s === 'object' && typeof s.stringify === 'function' && typeof s.parse === 'function'

/** `createSpokeIrohEventTarget` / `createHubIrohEventTarget` options. */
const EVENT_TARGET = table('event target', {
  maxFrameBytes: integer({ min: 1, max: U32 }),
  maxBufferedBytes: integer({ min: 1, max: U32 }),
  frameTimeoutMs: integer({ min: 1, max: U32 }),
  serializer: { must: 'an object with stringify and parse functions', check: isSerializer },
})

/** `createMessageChannel` options: the target's limits, a role, and no serializer. */
const MESSAGE_CHANNEL = table(
  'message channel',
  {
    role: { required: true, must: "'open' (the dialing side) or 'accept'", check: (v) => v === 'open' || v === 'accept' },
    maxFrameBytes: EVENT_TARGET.fields.maxFrameBytes,
    maxBufferedBytes: EVENT_TARGET.fields.maxBufferedBytes,
    frameTimeoutMs: EVENT_TARGET.fields.frameTimeoutMs,
    serializer: { must: 'absent: a message channel carries bytes and takes no serializer', check: () => false },
  },
  { required: "createMessageChannel expects options with role 'open' or 'accept'" },
)

/** `acks`, the same for hub and spoke: acknowledged delivery unless turned off. */
const acks = boolean(true)

/** `connectSpoke` options. */
const SPOKE = table(
  'spoke',
  {
    alpn: string({ required: true, code: 'ERR_IROH_INVALID_ALPN' }),
    initialDelayMs: integer({ default: 250 }),
    maxDelayMs: integer({ default: 30_000 }),
    maxAttempts: integer({ min: 1, orInfinity: true, default: Infinity }),
    connectTimeoutMs: integer({ default: 10_000 }),
    maxPendingBytes: integer({ default: 8 * 1024 * 1024 }),
    heartbeatMs: integer({ min: 1, default: 1_000 }),
    ackTimeoutMs: integer({ default: 2_500 }),
    acks,
    listen: boolean(false),
    onConnect: func('(spoke) => void | Promise<void>'),
    eventTarget: nested(EVENT_TARGET),
  },
  {
    required: 'options must be an object',
    refine: (out) => {
      if (out.ackTimeoutMs <= out.heartbeatMs) throw invalidArgument('options.ackTimeoutMs must be longer than options.heartbeatMs')
      out.eventTarget ??= checkOptions(EVENT_TARGET, undefined)
    },
  },
)

/** A hub's `allow`: a Set (read live), an iterable of node ids, or a function. */
const allow = {
  must: 'a Set or iterable of node ids, or a function (nodeId) => boolean | Promise<boolean>',
  check: (v) => typeof v === 'function' || v instanceof Set || (v !== null && typeof v === 'object' && typeof v[Symbol.iterator] === 'function'),
  convert: (v) => (typeof v === 'function' || v instanceof Set ? v : new Set([...v].map(parseNodeId))),
}

/** `createHub` options. */
const HUB = table(
  'hub',
  {
    alpn: string({ required: true, code: 'ERR_IROH_INVALID_ALPN' }),
    allow,
    deny: { must: 'an iterable of node ids', check: (v) => v !== null && typeof v === 'object' && typeof v[Symbol.iterator] === 'function', convert: (v) => new Set([...v].map(parseNodeId)) },
    acks,
    maxPendingBytes: integer({ min: 1, default: 8 * 1024 * 1024 }),
    sessionTtlMs: integer({ min: 1, default: 5 * 60_000 }),
    eventTarget: nested(EVENT_TARGET),
  },
  {
    required: 'options must be an object',
    refine: (out) => {
      out.allow ??= null
      out.deny ??= new Set()
      out.eventTarget ??= checkOptions(EVENT_TARGET, undefined)
    },
  },
)

/**
 * `listenForHub` options: a spoke the hub dials. What a spoke shares with the reconnecting
 * one, plus whom it lets in; nothing about dialing.
 */
const LISTENING_SPOKE = table(
  'listening spoke',
  {
    alpn: SPOKE.fields.alpn,
    allow: { ...allow, required: true },
    maxPendingBytes: SPOKE.fields.maxPendingBytes,
    heartbeatMs: SPOKE.fields.heartbeatMs,
    ackTimeoutMs: SPOKE.fields.ackTimeoutMs,
    acks,
    onConnect: SPOKE.fields.onConnect,
    eventTarget: nested(EVENT_TARGET),
  },
  {
    required: 'options must be an object with alpn and allow',
    refine: (out) => {
      if (out.ackTimeoutMs <= out.heartbeatMs) throw invalidArgument('options.ackTimeoutMs must be longer than options.heartbeatMs')
      out.eventTarget ??= checkOptions(EVENT_TARGET, undefined)
    },
  },
)

/** `joinTopic` options (`TopicOptions` in Rust). `allow` is read once, at the join. */
const TOPIC = table(
  'topic',
  {
    bootstrap: {
      must: 'an array of node ids, tickets or addr() objects',
      check: (v) => Array.isArray(v),
      convert: (v) => v.map((t) => (typeof t === 'string' ? t : { nodeId: t?.nodeId, relayUrl: t?.relayUrl ?? undefined, directAddresses: t?.directAddresses ?? [] })),
    },
    allow: {
      must: 'a Set or iterable of node ids (a topic checks members in the handshake, before any JS runs)',
      check: (v) => v instanceof Set || (v !== null && typeof v === 'object' && typeof v[Symbol.iterator] === 'function'),
      convert: (v) => [...v].map(parseNodeId),
    },
    maxEventBytes: integer({ min: 1, max: U32 }),
    maxBufferedBytes: integer({ min: 1, max: U32 }),
    receiveBufferBytes: integer({ min: 1, max: U32 }),
    retention: nested(table('topic retention', { maxBytes: integer({ min: 0, max: U32 }), maxAgeMs: integer({ min: 0, max: U32 }) }, { strict: true })),
    headsIntervalMs: integer({ min: 10, max: U32 }),
  },
  { strict: true },
)

/** A relay for `relayMode.relays`: a URL, or `{ url, quicPort }` (say `relayServer.relay`). */
const isRelay = (r) => typeof r === 'string' || (r !== null && typeof r === 'object' && typeof r.url === 'string' && Number.isInteger(r.quicPort))

/** `Endpoint.create` options (`EndpointOptions` in Rust, which checks what is `native()` here). */
const ENDPOINT = table(
  'endpoint',
  {
    alpns: arrayOf('strings', (a) => typeof a === 'string', 'ERR_IROH_INVALID_ALPN'),
    secretKey: native(),
    secretKeyPath: native(),
    relayMode: {
      must: "'default', 'disabled' or { relays: [...] }",
      check: () => true,
      convert: (mode) => {
        const relays = mode?.relays
        if (relays === undefined) return mode
        if (!Array.isArray(relays)) throw invalidArgument('relayMode.relays must be an array')
        if (!relays.every(isRelay)) throw invalidArgument('each relay must be a URL string or { url, quicPort }, e.g. relayServer.relay')
        return mode
      },
    },
    relayCaCertificates: arrayOf('PEM strings', (pem) => typeof pem === 'string', 'ERR_IROH_INVALID_CERTIFICATE'),
    relayOnly: boolean(),
    bindAddr: native(),
    addressLookup: native(),
    idleTimeoutMs: native(),
    keepAliveMs: native(),
  },
  { strict: true },
)

/** `startRelayServer` options (`RelayServerOptions` in Rust). */
const RELAY_SERVER = table(
  'relay server',
  {
    bindAddr: string(),
    quicPort: integer({ max: 65535 }),
    hostname: string(),
    certificatePem: string(),
    privateKeyPem: string(),
    allow: arrayOf('node ids', (id) => typeof id === 'string', 'ERR_IROH_INVALID_NODE_ID'),
  },
  { strict: true },
)

/** The option names of a table. */
const optionNames = (t) => new Set(Object.keys(t.fields))

module.exports = { checkOptions, optionNames, EVENT_TARGET, MESSAGE_CHANNEL, SPOKE, LISTENING_SPOKE, HUB, ENDPOINT, RELAY_SERVER, TOPIC }
