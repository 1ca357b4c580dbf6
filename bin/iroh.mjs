#!/usr/bin/env node
// The command line of @alkdev/iroh (`npx @alkdev/iroh <command>`): a relay of your own,
// this node's ticket, a stdin/stdout pipe that speaks dumbpipe's protocol, and a ping that
// shows the path. Built on the package's public API alone.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { Endpoint, startRelayServer } from '../lib/index.mjs'

/** dumbpipe's ALPN, and the bytes its dialing side writes first so the stream exists. */
const DUMBPIPE_ALPN = 'DUMBPIPEV0'
const DUMBPIPE_HANDSHAKE = Buffer.from('hello')
/**
 * dumbpipe's protocol byte for byte, under an ALPN that tells this CLI's two ends apart from
 * dumbpipe: the dialer tries it first. Between two of ours only the listener holds back its
 * end of the stream (see pipeStdio); facing dumbpipe, which exits as soon as its own two
 * directions are done, without waiting for its last bytes to arrive, our side holds back too.
 */
const PIPE_ALPN = 'alkdev-iroh/pipe/0'
/** The ping protocol of this CLI: one stream, 8-byte probes echoed back. `listen` answers it. */
const PING_ALPN = 'alkdev-iroh/ping/0'
/** Set in tests (and by anyone who wants it): using n0's public relays and DNS is an error. */
const NO_N0_ENV = 'ALKDEV_IROH_CLI_NO_N0'
const DEFAULT_QUIC_PORT = 7842
const ONLINE_TIMEOUT_MS = 10_000
const CONNECT_TIMEOUT_MS = 15_000
/** How long a side that is done waits for the peer to close before it closes itself. */
const LINGER_MS = 3_000

const COMMON_USAGE = `Options of every command:
  --relay URL        use this relay (repeatable); turns n0's relays and DNS lookup off.
                     URL#quic=PORT: its QUIC address discovery is on UDP PORT, not 7842
  --relay-ca FILE    trust this CA (PEM) for the relays, e.g. the one \`relay --self-signed\` prints
  --relay-only       send through the relay only (no direct UDP paths)
  --no-relay         no relay at all: only direct addresses (from the ticket) work
  --bind ADDR        bind this endpoint's UDP socket to ADDR (e.g. 0.0.0.0:4433)
  --json             print one JSON object per line
  --help             show this help
With neither --relay nor --no-relay, n0's public relays and DNS address lookup are used
(as dumbpipe does); setting ${NO_N0_ENV}=1 makes that an error instead.`

const USAGE = {
  main: `Usage: iroh <command> [options]

Commands:
  relay [--hostname H] [--cert FILE --key FILE | --self-signed] [--bind ADDR] [--quic-port P] [--ca-out FILE]
        run a relay until SIGINT/SIGTERM; prints the URL to dial and the CA to trust
  ticket [--key FILE]
        print this node's id and a ticket (creates the key file, mode 0600, when missing)
  listen [--alpn A] [--key FILE]
        accept one connection and pipe stdin/stdout over its first stream (dumbpipe's
        protocol with the default ALPN ${DUMBPIPE_ALPN}); also answers \`ping\`
  connect TICKET [--alpn A] [--key FILE]
        dial TICKET and pipe stdin/stdout over one bidirectional stream
  ping TICKET [--count N] [--interval MS]
        a round trip per second to a \`listen\`ing node: time and path; a summary on exit

${COMMON_USAGE}

Exit codes: 0 done (or stopped by SIGINT/SIGTERM), 1 runtime error (prints its ERR_IROH_* code),
2 bad usage (prints the usage).
Run \`iroh <command> --help\` for a command's own options.`,
  relay: `Usage: iroh relay [--hostname H] [--cert FILE --key FILE | --self-signed] [--bind ADDR] [--quic-port P] [--ca-out FILE] [--json]

Runs an iroh relay until SIGINT or SIGTERM, then closes it and exits 0.
  --hostname H       the host name in the relay URL (default: the bound IP)
  --cert FILE        certificate chain (PEM, leaf first) for H; needs --key
  --key FILE         its private key (PEM)
  --self-signed      generate a throwaway CA and certificate (the default without --cert)
  --bind ADDR        HTTPS address to serve on (default 127.0.0.1:0: a free loopback port)
  --quic-port P      UDP port of QUIC address discovery on the same IP (default: a free port)
  --ca-out FILE      write the generated CA there instead of printing it
  --json             print one JSON object per line
Clients dial it with: --relay URL[#quic=PORT] [--relay-ca CA-FILE], as it prints`,
  ticket: `Usage: iroh ticket [--key FILE] [options]

Prints this node's id and a ticket. The key file keeps the id across runs; it is created
with mode 0600 when missing (default: ${defaultKeyPath()}).
The ticket holds the relay URL and this run's direct addresses: pass the same --key and
--bind to \`listen\` for them to stay valid.

${COMMON_USAGE}`,
  listen: `Usage: iroh listen [--alpn A] [--key FILE] [options]

Prints a ticket on stderr, accepts one connection, pipes stdin to its first bidirectional
stream and the stream to stdout, and exits when both directions have ended. With the
default ALPN (${DUMBPIPE_ALPN}) it expects dumbpipe's 5-byte handshake; with another one, none.
Meanwhile it answers \`iroh ping\`.
  --alpn A           the ALPN to accept (default ${DUMBPIPE_ALPN}, as dumbpipe; "utf8:" prefix allowed)
  --key FILE         secret key file (default: a new key each run)

${COMMON_USAGE}`,
  connect: `Usage: iroh connect TICKET [--alpn A] [--key FILE] [options]

Dials TICKET, opens one bidirectional stream, pipes stdin to it and it to stdout, and exits
when both directions have ended.
  --alpn A           the ALPN to speak (default ${DUMBPIPE_ALPN}, as dumbpipe; "utf8:" prefix allowed)
  --key FILE         secret key file (default: a new key each run)

${COMMON_USAGE}`,
  ping: `Usage: iroh ping TICKET [--count N] [--interval MS] [options]

Dials a node running \`iroh listen\` and measures a round trip each interval, printing its
time and the path (direct or relay) and each change of path. On SIGINT/SIGTERM or after N
round trips, prints a summary and exits 0.
  --count N          stop after N round trips (default: until interrupted)
  --interval MS      time between round trips (default 1000)
  --key FILE         secret key file (default: a new key each run)

${COMMON_USAGE}`,
}

class UsageError extends Error {}

function defaultKeyPath() {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config')
  return join(base, 'alkdev-iroh', 'secret.key')
}

const COMMON_OPTIONS = {
  relay: { type: 'string', multiple: true },
  'relay-ca': { type: 'string' },
  'relay-only': { type: 'boolean' },
  'no-relay': { type: 'boolean' },
  bind: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
}

const COMMANDS = {
  relay: {
    options: {
      hostname: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      'self-signed': { type: 'boolean' },
      bind: { type: 'string' },
      'quic-port': { type: 'string' },
      'ca-out': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    positionals: 0,
    run: runRelay,
  },
  ticket: { options: { ...COMMON_OPTIONS, key: { type: 'string' } }, positionals: 0, run: runTicket },
  listen: { options: { ...COMMON_OPTIONS, key: { type: 'string' }, alpn: { type: 'string' } }, positionals: 0, run: runListen },
  connect: { options: { ...COMMON_OPTIONS, key: { type: 'string' }, alpn: { type: 'string' } }, positionals: 1, run: runConnect },
  ping: {
    options: { ...COMMON_OPTIONS, key: { type: 'string' }, count: { type: 'string' }, interval: { type: 'string' } },
    positionals: 1,
    run: runPing,
  },
}

// ---- output -------------------------------------------------------------------------

/** Prints a record: JSON (one object per line) or its human text. `stream` is stdout or stderr. */
function makeOutput(json) {
  const emit = (stream, record, text) => {
    stream.write(json ? `${JSON.stringify(record)}\n` : `${text}\n`)
  }
  return {
    json,
    out: (record, text) => emit(process.stdout, record, text),
    err: (record, text) => emit(process.stderr, record, text),
    /** What a long wait waits for; always on stderr. */
    wait: (what) => emit(process.stderr, { event: 'waiting', for: what }, `waiting for ${what}...`),
  }
}

// ---- options to endpoint options -------------------------------------------------------

function readText(file, code, what) {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw cliError(code, `cannot read ${what} ${file}: ${err.message}`)
  }
}

function cliError(code, message) {
  const err = new Error(message)
  err.code = code
  return err
}

function parseAlpn(value) {
  if (value === undefined) return DUMBPIPE_ALPN
  const alpn = value.startsWith('utf8:') ? value.slice(5) : value
  if (alpn === '') throw new UsageError('--alpn must not be empty')
  return alpn
}

/** The relay part of the endpoint options, from --relay, --relay-ca, --relay-only, --no-relay. */
function relayOptions(values, out) {
  const relays = values.relay ?? []
  if (values['no-relay'] && relays.length > 0) throw new UsageError('--no-relay and --relay exclude each other')
  if (values['no-relay'] && values['relay-only']) throw new UsageError('--relay-only needs a relay')
  if (values['no-relay'] && values['relay-ca']) throw new UsageError('--relay-ca needs --relay')
  const options = {}
  if (values['no-relay']) {
    options.relayMode = 'disabled'
    options.addressLookup = 'none'
  } else if (relays.length > 0) {
    options.relayMode = { relays: relays.map(parseRelay) }
    options.addressLookup = 'none'
  } else {
    if (process.env[NO_N0_ENV] === '1') {
      throw new UsageError(`${NO_N0_ENV}=1 forbids n0's public relays and DNS: pass --relay URL or --no-relay`)
    }
    if (values['relay-ca']) throw new UsageError('--relay-ca needs --relay')
    options.relayMode = 'default'
    options.addressLookup = 'n0'
    out.err({ event: 'notice', relays: 'n0' }, "using n0's public relays and DNS address lookup (--relay URL or --no-relay to avoid them)")
  }
  if (values['relay-ca']) options.relayCaCertificates = [readText(values['relay-ca'], 'ERR_IROH_INVALID_CERTIFICATE', 'the relay CA')]
  if (values['relay-only']) {
    if (values.bind) throw new UsageError('--relay-only takes no --bind (it has no UDP socket)')
    options.relayOnly = true
  } else if (values.bind) {
    options.bindAddr = values.bind
  }
  return options
}

/**
 * `URL` or `URL#quic=PORT`: the fragment (never sent to the relay) names the UDP port of
 * its QUIC address discovery when it is not the default 7842, as `relay` prints it.
 */
function parseRelay(text) {
  const match = /^(https?:\/\/[^#\s]+)(?:#quic=(\d+))?$/.exec(text)
  if (match === null) throw new UsageError(`--relay takes an http(s) URL, optionally with #quic=PORT, got ${text}`)
  return match[2] === undefined ? match[1] : { url: match[1], quicPort: parsePort(match[2], '--relay #quic=') }
}

/** The `--relay` argument that dials `server`. */
function relayArgument(server) {
  return server.quicPort === DEFAULT_QUIC_PORT ? server.url : `${server.url}#quic=${server.quicPort}`
}

function keyOptions(file) {
  if (file === undefined) return {}
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  } catch (err) {
    throw cliError('ERR_IROH_KEY_FILE', `cannot create the directory of ${file}: ${err.message}`)
  }
  return { secretKeyPath: file }
}

/** Creates the endpoint; with relays, waits (bounded) for the home relay so tickets carry it. */
async function createEndpoint(values, out, extra = {}) {
  const options = { ...relayOptions(values, out), ...extra }
  const endpoint = await Endpoint.create(options)
  if (options.relayMode !== 'disabled') {
    out.wait('the home relay')
    try {
      await endpoint.online({ timeoutMs: ONLINE_TIMEOUT_MS })
    } catch (err) {
      if (err.code !== 'ERR_IROH_TIMEOUT') throw err
      out.err({ event: 'warning', code: err.code, message: 'no home relay yet' }, `warning: no relay answered within ${ONLINE_TIMEOUT_MS / 1000} s; going on with direct addresses`)
    }
  }
  return endpoint
}

// ---- commands --------------------------------------------------------------------------

/** Resolves on the first SIGINT or SIGTERM. */
function untilSignal() {
  return new Promise((resolve) => {
    const on = (signal) => {
      process.off('SIGINT', on)
      process.off('SIGTERM', on)
      resolve(signal)
    }
    process.on('SIGINT', on)
    process.on('SIGTERM', on)
  })
}

async function runRelay(values, _positionals, out) {
  if ((values.cert === undefined) !== (values.key === undefined)) throw new UsageError('--cert and --key go together')
  if (values.cert !== undefined && values['self-signed']) throw new UsageError('--self-signed excludes --cert/--key')
  const options = {}
  if (values.bind !== undefined) options.bindAddr = values.bind
  if (values.hostname !== undefined) options.hostname = values.hostname
  if (values['quic-port'] !== undefined) options.quicPort = parsePort(values['quic-port'], '--quic-port')
  if (values.cert !== undefined) {
    options.certificatePem = readText(values.cert, 'ERR_IROH_INVALID_CERTIFICATE', 'the certificate')
    options.privateKeyPem = readText(values.key, 'ERR_IROH_INVALID_CERTIFICATE', 'the private key')
  }
  const stop = untilSignal()
  const server = await startRelayServer(options)
  const ca = server.caCertificatePem
  const dialWith = relayArgument(server)
  const record = { event: 'relay', url: server.url, quicPort: server.quicPort, relayArgument: dialWith }
  const lines = [`relay running: ${server.url}`, `QUIC address discovery: UDP port ${server.quicPort}`]
  if (ca !== null) {
    if (values['ca-out'] !== undefined) {
      try {
        writeFileSync(values['ca-out'], ca, { mode: 0o644 })
      } catch (err) {
        await server.close()
        throw cliError('ERR_IROH_INVALID_CERTIFICATE', `cannot write the CA to ${values['ca-out']}: ${err.message}`)
      }
      record.caFile = values['ca-out']
      lines.push(`self-signed: clients trust the CA written to ${values['ca-out']}`)
      lines.push(`dial it with: --relay ${dialWith} --relay-ca ${values['ca-out']}`)
    } else {
      record.caCertificatePem = ca
      lines.push('self-signed: clients trust this CA (save it to a file for --relay-ca):', ca.trimEnd())
      lines.push(`dial it with: --relay ${dialWith} --relay-ca CA-FILE`)
    }
  } else {
    lines.push(`dial it with: --relay ${dialWith}`)
  }
  out.out(record, lines.join('\n'))
  const signal = await stop
  await server.close()
  out.out({ event: 'closed', signal }, `relay closed (${signal})`)
}

function parsePort(text, name) {
  const n = Number(text)
  if (!/^\d+$/.test(text) || n > 65535) throw new UsageError(`${name} takes a port from 0 to 65535, got ${text}`)
  return n
}

function parsePositive(text, name) {
  const n = Number(text)
  if (!/^\d+$/.test(text) || n < 1) throw new UsageError(`${name} takes a positive integer, got ${text}`)
  return n
}

async function runTicket(values, _positionals, out) {
  const keyPath = values.key ?? defaultKeyPath()
  const endpoint = await createEndpoint(values, out, keyOptions(keyPath))
  try {
    const ticket = endpoint.ticket()
    out.out({ event: 'ticket', nodeId: endpoint.nodeId(), ticket, keyFile: keyPath, addr: endpoint.addr() }, `node id: ${endpoint.nodeId()}\nticket: ${ticket}`)
  } finally {
    await endpoint.close()
  }
}

/** Pipes `stream` both ways with stdin/stdout. Resolves when both directions have ended. */
async function pipeStdio({ send, recv }, { deferFinish }) {
  let recvEnded = false
  let onRecvEnd
  const recvEnd = new Promise((resolve) => (onRecvEnd = resolve))
  const toStdout = (async () => {
    for (;;) {
      const chunk = await recv.read()
      if (chunk === null) break
      if (!process.stdout.write(chunk)) await new Promise((resolve) => process.stdout.once('drain', resolve))
    }
    recvEnded = true
    onRecvEnd()
  })()
  let finishedFirst = false
  const fromStdin = (async () => {
    for await (const chunk of process.stdin) await send.writeAll(chunk)
    // A side that holds back its end until the peer's (our listener; our dialer facing
    // dumbpipe) tells the peer, once it reads that end, that everything it sent has arrived.
    if (deferFinish) await recvEnd
    finishedFirst = !recvEnded
    await send.finish()
  })()
  await Promise.all([toStdout, fromStdin])
  return { finishedFirst }
}

/** Waits up to LINGER_MS for the peer to close (it may still be taking our last bytes). */
async function linger(conn, out) {
  if (conn.isClosed()) return
  out.wait('the peer to take the last bytes and close')
  let timer
  await Promise.race([conn.closed(), new Promise((resolve) => (timer = setTimeout(resolve, LINGER_MS)))])
  clearTimeout(timer)
}

function describeConnection(conn) {
  return { remoteNodeId: conn.remoteNodeId(), alpn: conn.alpn(), pathType: conn.pathType() }
}

async function runListen(values, _positionals, out) {
  const alpn = parseAlpn(values.alpn)
  const handshake = alpn === DUMBPIPE_ALPN
  const endpoint = await createEndpoint(values, out, { ...keyOptions(values.key), alpns: handshake ? [DUMBPIPE_ALPN, PIPE_ALPN, PING_ALPN] : [alpn, PING_ALPN] })
  const stop = untilSignal()
  try {
    const ticket = endpoint.ticket()
    out.err({ event: 'listening', nodeId: endpoint.nodeId(), ticket, alpn }, `listening on ${alpn}. To connect, use:\niroh connect ${ticket}${alpn === DUMBPIPE_ALPN ? '' : ` --alpn ${alpn}`}`)
    out.wait('a connection')
    const session = (async () => {
      for (;;) {
        const conn = await endpoint.accept()
        if (conn === null) return null
        if (conn.alpn() === PING_ALPN) {
          answerPings(conn)
          continue
        }
        out.err({ event: 'connected', ...describeConnection(conn) }, `connected: ${conn.remoteNodeId()} (${conn.pathType()})`)
        let stream
        try {
          stream = await conn.acceptBi()
          if (handshake) {
            const got = await stream.recv.readExact(DUMBPIPE_HANDSHAKE.length)
            if (!got.equals(DUMBPIPE_HANDSHAKE)) throw cliError('ERR_IROH_PROTOCOL', 'the peer sent no dumbpipe handshake')
          }
        } catch (err) {
          // As dumbpipe: a peer that fails before the pipe starts does not end the listener.
          out.err({ event: 'warning', code: err.code, message: err.message }, `warning: ${err.code}: ${err.message}; waiting for another connection`)
          conn.close(1, 'bad handshake')
          continue
        }
        await pipeStdio(stream, { deferFinish: true })
        await linger(conn, out)
        conn.close(0, 'done')
        return conn
      }
    })()
    const done = await Promise.race([session, stop.then(() => 'signal')])
    if (done === 'signal') {
      session.catch(() => {}) // it fails as the endpoint closes under it
      out.err({ event: 'interrupted' }, 'interrupted')
    }
  } finally {
    await endpoint.close()
  }
  process.stdin.destroy()
}

/** The listening side of `ping`: echoes every byte of each stream back. Never rejects. */
function answerPings(conn) {
  ;(async () => {
    try {
      for (;;) {
        const { send, recv } = await conn.acceptBi()
        ;(async () => {
          for (;;) {
            const chunk = await recv.read()
            if (chunk === null) break
            await send.writeAll(chunk)
          }
          await send.finish()
        })().catch(() => {})
      }
    } catch {
      // the connection closed
    }
  })()
}

/** The TLS alert of a peer that takes none of the ALPNs offered. */
const NO_SUCH_ALPN = /no_application_protocol|doesn't support any known protocol|error 120/

/** Dials with the first ALPN of `alpns` that the peer takes. */
async function dial(values, positionals, out, alpns) {
  const ticket = positionals[0]
  const endpoint = await createEndpoint(values, out, keyOptions(values.key))
  try {
    let conn
    for (const [i, alpn] of alpns.entries()) {
      out.wait(`a connection to ${ticket.length > 40 ? `${ticket.slice(0, 40)}...` : ticket} (${alpn})`)
      try {
        conn = await endpoint.connect(ticket, alpn, { timeoutMs: CONNECT_TIMEOUT_MS })
        break
      } catch (err) {
        if (i === alpns.length - 1 || err.code !== 'ERR_IROH_CONNECT' || !NO_SUCH_ALPN.test(err.message)) throw err
      }
    }
    out.err({ event: 'connected', ...describeConnection(conn) }, `connected: ${conn.remoteNodeId()} (${conn.pathType()})`)
    return { endpoint, conn }
  } catch (err) {
    await endpoint.close()
    throw err
  }
}

async function runConnect(values, positionals, out) {
  const alpn = parseAlpn(values.alpn)
  const { endpoint, conn } = await dial(values, positionals, out, alpn === DUMBPIPE_ALPN ? [PIPE_ALPN, DUMBPIPE_ALPN] : [alpn])
  const stop = untilSignal()
  try {
    const stream = await conn.openBi()
    const dumbpipe = conn.alpn() === DUMBPIPE_ALPN
    if (dumbpipe || conn.alpn() === PIPE_ALPN) await stream.send.writeAll(DUMBPIPE_HANDSHAKE)
    // Facing dumbpipe, end our half only after its: it exits once both directions are done.
    const piped = pipeStdio(stream, { deferFinish: dumbpipe }).then(async ({ finishedFirst }) => {
      // Our listener ends its stream only after ours, so its end means it has all we sent;
      // another peer may end first: give it time to take our last bytes.
      if (dumbpipe || !finishedFirst) await linger(conn, out)
      return 'done'
    })
    const how = await Promise.race([piped, stop.then(() => 'signal')])
    if (how === 'signal') {
      piped.catch(() => {}) // it fails as the connection closes under it
      out.err({ event: 'interrupted' }, 'interrupted')
      conn.close(1, 'interrupted')
    } else {
      conn.close(0, 'done')
    }
  } finally {
    await endpoint.close()
  }
  process.stdin.destroy()
}

async function runPing(values, positionals, out) {
  const count = values.count === undefined ? Number.POSITIVE_INFINITY : parsePositive(values.count, '--count')
  const interval = values.interval === undefined ? 1000 : parsePositive(values.interval, '--interval')
  const stop = untilSignal()
  let stopped = false
  stop.then(() => (stopped = true))
  const { endpoint, conn } = await dial(values, positionals, out, [PING_ALPN])
  const times = []
  const paths = {}
  let sent = 0
  let lastPath = conn.pathType()
  const unwatch = conn.watchPaths(({ pathType }) => {
    if (pathType === lastPath || pathType === 'none') return
    out.out({ event: 'pathchange', from: lastPath, to: pathType }, `path: ${lastPath} -> ${pathType}`)
    lastPath = pathType
  })
  try {
    const { send, recv } = await conn.openBi()
    const probe = Buffer.alloc(8)
    while (!stopped && sent < count) {
      const seq = ++sent
      probe.writeUInt32BE(seq, 0)
      const started = performance.now()
      await send.writeAll(probe)
      const timeout = AbortSignal.timeout(5_000)
      let reply
      try {
        // Replies come in order on the one stream: skip any of a probe that timed out.
        do reply = await recv.readExact(8, { signal: timeout })
        while (reply.readUInt32BE(0) < seq)
      } catch (err) {
        if (err.code !== 'ERR_IROH_ABORTED') throw err
        out.out({ event: 'timeout', seq }, `seq=${seq} timeout after 5 s`)
        continue
      }
      const timeMs = performance.now() - started
      const path = conn.pathType()
      times.push(timeMs)
      paths[path] = (paths[path] ?? 0) + 1
      out.out({ event: 'pong', seq, timeMs: round(timeMs), rttMs: round(conn.rtt()), path }, `seq=${seq} time=${timeMs.toFixed(2)} ms path=${path} (quic rtt ${conn.rtt().toFixed(2)} ms)`)
      if (sent < count) await Promise.race([delay(interval), stop])
    }
    await send.finish().catch(() => {})
  } finally {
    unwatch()
    const summary = {
      event: 'summary',
      sent,
      received: times.length,
      minMs: times.length ? round(Math.min(...times)) : null,
      avgMs: times.length ? round(times.reduce((a, b) => a + b, 0) / times.length) : null,
      maxMs: times.length ? round(Math.max(...times)) : null,
      paths,
    }
    const pathText = Object.entries(paths).map(([p, n]) => `${p} ${n}`).join(', ') || 'none'
    out.out(summary, `${sent} sent, ${times.length} received; time min/avg/max = ${summary.minMs ?? '-'}/${summary.avgMs ?? '-'}/${summary.maxMs ?? '-'} ms; paths: ${pathText}`)
    conn.close(0, 'ping done')
    await endpoint.close()
  }
}

const round = (ms) => Math.round(ms * 1000) / 1000
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ---- main ------------------------------------------------------------------------------

async function main(argv) {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' && rest[0] in USAGE ? rest[0] : 'main'
    if (name === undefined) {
      process.stderr.write(`${USAGE.main}\n`)
      return 2
    }
    process.stdout.write(`${USAGE[topic]}\n`)
    return 0
  }
  const command = COMMANDS[name]
  if (command === undefined) return usageFailure('main', `unknown command: ${name}`, argv.includes('--json'))
  let parsed
  try {
    parsed = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true })
  } catch (err) {
    return usageFailure(name, err.message, rest.includes('--json'))
  }
  const { values, positionals } = parsed
  if (values.help) {
    process.stdout.write(`${USAGE[name]}\n`)
    return 0
  }
  const out = makeOutput(Boolean(values.json))
  if (positionals.length !== command.positionals) {
    return usageFailure(name, command.positionals === 0 ? `unexpected argument: ${positionals[0]}` : 'expected a TICKET', values.json)
  }
  try {
    await command.run(values, positionals, out)
    return 0
  } catch (err) {
    if (err instanceof UsageError) return usageFailure(name, err.message, values.json)
    const code = typeof err?.code === 'string' && err.code.startsWith('ERR_IROH_') ? err.code : 'ERR_IROH_INTERNAL'
    out.err({ event: 'error', code, message: err?.message ?? String(err) }, `error ${code}: ${err?.message ?? err}`)
    return 1
  }
}

function usageFailure(name, message, json) {
  if (json) process.stderr.write(`${JSON.stringify({ event: 'error', code: 'usage', message })}\n`)
  process.stderr.write(`iroh: ${message}\n\n${USAGE[name]}\n`)
  return 2
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
    // Nothing of ours is left open; do not wait for stdin or other handles we did not open.
    setImmediate(() => process.exit(code))
  },
  (err) => {
    process.stderr.write(`error ERR_IROH_INTERNAL: ${err?.stack ?? err}\n`)
    process.exit(1)
  },
)
