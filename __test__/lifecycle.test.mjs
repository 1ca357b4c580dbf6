import { describe, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { runNode } from './helpers.mjs'

const fixture = (name) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

describe('process lifetime', () => {
  for (const mode of ['endpoints', 'connection-first']) {
    it(`exits on its own after close with calls pending (${mode})`, async () => {
      const r = await runNode([fixture('close-with-pending.mjs'), mode], 30_000)
      expect(r.signal, `killed: the process hung\n${r.stderr}`).toBeNull()
      expect(r.code, r.stderr).toBe(0)
      const outcomes = Object.fromEntries(JSON.parse(r.stdout).map((o) => [o.name, o]))
      // The endpoint's own calls: accept() ends its loop with null, the others reject.
      expect(outcomes.online).toMatchObject({ outcome: 'rejected', code: 'ERR_IROH_ENDPOINT_CLOSED' })
      expect(outcomes.accept).toMatchObject({ outcome: 'resolved', value: null })
      expect(outcomes.connect).toMatchObject({ outcome: 'rejected', code: 'ERR_IROH_ENDPOINT_CLOSED' })
      // Calls on its connections say why they ended: the endpoint closed, unless the
      // connection had been closed first.
      const onConnection = mode === 'endpoints' ? 'ERR_IROH_ENDPOINT_CLOSED' : 'ERR_IROH_CONNECTION_CLOSED'
      // The write was stuck on flow control.
      for (const name of ['read', 'write', 'acceptBi', 'readDatagram']) {
        expect(outcomes[name], name).toMatchObject({ outcome: 'rejected', code: onConnection })
      }
    })
  }

  it('unref() lets a script exit with an endpoint and both targets still open', async () => {
    const r = await runNode([fixture('unref-targets.mjs')], 30_000)
    expect(r.signal, `killed: the process hung\n${r.stderr}`).toBeNull()
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('world\n')
  })

  for (const mode of ['closed', 'gives-up']) {
    it(`a spoke that is ${mode === 'closed' ? 'closed' : 'left redialing a closed hub until it gives up'} lets the process exit`, async () => {
      const r = await runNode([fixture('hub-and-spoke-close.mjs'), mode], 30_000)
      expect(r.signal, `killed: the process hung\n${r.stderr}`).toBeNull()
      expect(r.code, r.stderr).toBe(0)
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l))
      expect(lines[0]).toEqual({ got: 'hub' })
      expect(lines[1]).toEqual({ spokeClosed: mode === 'closed' ? 'local' : 'ERR_IROH_CONNECT' })
    })
  }

  it('an open connection keeps the process alive until the peer closes it', async () => {
    // Once set up, the child holds two ends of one connection and nothing else: its timers
    // are unref'd. The connection must hold it past 200 ms, and let go when closed at 400.
    const script = `
      const { Endpoint } = require(process.argv[1])
      const local = { relayMode: 'disabled', bindAddr: '127.0.0.1:0', addressLookup: 'none' }
      ;(async () => {
        const server = await Endpoint.create({ ...local, alpns: ['k/1'] })
        const client = await Endpoint.create(local)
        const accepted = server.accept()
        const conn = await client.connect(server.addr(), 'k/1')
        await accepted
        server.unref()
        setTimeout(() => process.stdout.write('alive;'), 200).unref()
        setTimeout(() => conn.close(7, 'bye'), 400).unref()
        process.on('exit', () => process.stdout.write('exit'))
      })()`
    const r = await runNode(['-e', script, fixture('../../lib/index.js')], 30_000)
    expect(r.signal, `killed: the process hung\n${r.stderr}`).toBeNull()
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('alive;exit')
  })

  /** Runs a fixtures/lifetime.mjs scenario, which must exit on its own: its printed lines. */
  async function scenario(name, limitMs = 15_000) {
    const r = await runNode([fixture('lifetime.mjs'), name], limitMs)
    expect(r.signal, `killed after ${limitMs} ms: the process hung\n${r.stdout}${r.stderr}`).toBeNull()
    expect(r.code, r.stderr).toBe(0)
    return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
  }

  it('leaving a channel\'s for await early leaves it open and holding the process; closing it lets go', async () => {
    // The second and third lines come from an unref'd timer: only an open channel keeps
    // the process alive for it after the loop was left.
    expect(await scenario('channel-break')).toEqual([
      { first: 'one', state: 'open' },
      { afterBreak: 'open', next: 'two' },
      { closed: 'closed' },
    ])
  })

  it('a message channel unref()ed on both ends lets the process exit with it open', async () => {
    expect(await scenario('unref-channel')).toEqual([{ got: 'ping', sender: 'open', receiver: 'open' }])
  })

  it('a hub that is unref()ed lets the process exit while it accepts', async () => {
    expect(await scenario('unref-hub')).toEqual([{ hub: 'open', endpoint: 'open' }])
  })

  it('a hub, its spoke and the hub\'s target for it, all unref()ed, let the process exit connected', async () => {
    expect(await scenario('unref-hub-spoke')).toEqual([{ got: 'hub', spoke: 'connected', spokes: 1 }])
  })

  it('a spoke that is unref()ed lets the process exit while it redials a hub that is gone', async () => {
    expect(await scenario('unref-spoke-redialing')).toEqual([{ spoke: 'disconnected' }])
  })

  it('a relay server keeps the process alive until close()', async () => {
    expect(await scenario('relay-close')).toEqual([{ started: 'open' }, { alive: 'open' }, { closed: 'closed' }])
  })

  it('a relay server that is unref()ed still serves, and lets the process exit', async () => {
    expect(await scenario('relay-unref')).toEqual([{ online: true, relay: 'open' }])
  })

  it('watchPaths does not keep the process alive: a running watch on an unref()ed connection lets it exit', async () => {
    expect(await scenario('watch-paths')).toEqual([{ pathType: 'direct', paths: 1, open: true }])
  })

  it('online() without timeoutMs rejects on its own after the default 15 s', async () => {
    // The relay is a local TCP port that takes the connection and never answers (a relay
    // that is down, not one that refuses): only the default timeout ends the wait.
    const [line, ...rest] = await scenario('online-default', 45_000)
    expect(rest).toEqual([])
    expect(line).toMatchObject({ code: 'ERR_IROH_TIMEOUT', dialed: true })
    // What was seen of the relay follows: it took the connection and never answered.
    expect(line.message).toMatch(/^no relay was reachable within 15000 ms: relay https:\/\/127\.0\.0\.1:\d+\/: not reachable yet/)
    // Timers do not fire early; the margin is for the two clocks (tokio's and JS's).
    expect(line.ms).toBeGreaterThanOrEqual(14_900)
  }, 60_000)

  it('a spoke or hub refused for bad options holds nothing', async () => {
    const script = `
      const { Endpoint, connectSpoke, createHub } = require(process.argv[1])
      Endpoint.create({ relayMode: 'disabled', bindAddr: '127.0.0.1:0', addressLookup: 'none' }).then((ep) => {
        const codes = []
        for (const make of [() => connectSpoke(ep, ep.nodeId(), { alpn: 5 }), () => createHub(ep, { alpn: 'x', acks: 'yes' })]) {
          try { make() } catch (err) { codes.push(err.code) }
        }
        process.stdout.write(codes.join(','))
      })`
    const r = await runNode(['-e', script, fixture('../../lib/index.js')], 30_000)
    expect(r.signal, `killed: the process hung\n${r.stderr}`).toBeNull()
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('ERR_IROH_INVALID_ALPN,ERR_IROH_INVALID_ARGUMENT')
  })

  it('loading the addon and creating nothing keeps nothing alive', async () => {
    const r = await runNode(['-e', "require(process.argv[1]).generateSecretKey()", fixture('../../lib/index.js')], 30_000)
    expect(r.signal).toBeNull()
    expect(r.code, r.stderr).toBe(0)
  })

  it('setLogLevel twice does not crash and logs go to stderr, not stdout', async () => {
    const script = `
      const iroh = require(process.argv[1])
      iroh.setLogLevel('debug')
      iroh.setLogLevel('trace')
      iroh.Endpoint.create({ relayMode: 'disabled', bindAddr: '127.0.0.1:0', addressLookup: 'none' })
        .then((ep) => { iroh.setLogLevel('info'); return ep.close() })
        .then(() => process.stdout.write('ok'))`
    const r = await runNode(['-e', script, fixture('../../lib/index.js')], 30_000)
    expect(r.signal).toBeNull()
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('ok')
    expect(r.stderr).toMatch(/DEBUG|TRACE/)
  })

  it('logs nothing until setLogLevel, follows each change, and passes on what crates log through `log`', async () => {
    // The addon installs its subscriber, all levels off, when it loads (tracing's log bridge
    // is then off the per-packet path); setLogLevel only changes the level.
    const script = `
      const iroh = require(process.argv[1])
      const bind = () => iroh.Endpoint.create({ relayMode: 'disabled', bindAddr: '127.0.0.1:0', addressLookup: 'none' }).then((ep) => ep.close())
      const mark = (m) => new Promise((resolve) => process.stderr.write(m + '\\n', resolve))
      bind()
        .then(() => mark('== debug'))
        .then(() => { iroh.setLogLevel('debug'); return bind() })
        .then(() => mark('== off'))
        .then(() => { iroh.setLogLevel('off'); return bind() })
        .then(() => process.stdout.write('ok'))`
    const r = await runNode(['-e', script, fixture('../../lib/index.js')], 30_000)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('ok')
    const [before, debug, after] = r.stderr.split(/== debug\n|== off\n/)
    expect(before).toBe('')
    expect(after).toBe('')
    expect(debug).toMatch(/DEBUG .*iroh::/)
    // rustls logs through the log crate: its records arrive only if that crate's level follows ours.
    expect(debug).toMatch(/DEBUG .*rustls::/)
  })
})
