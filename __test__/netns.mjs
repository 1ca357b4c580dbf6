// A small simulated internet in Linux network namespaces, made and removed by the tests
// that use it (root and iproute2, nftables and conntrack needed). Addresses come from documentation
// ranges and no namespace has a route to the host, so nothing leaves the machine:
//
//   pub  203.0.113.10 on a bridge: the "internet", where the relay runs
//   r1   203.0.113.11 (WAN) / 192.0.2.1 (LAN)     NAT router of home 1
//   r2   203.0.113.12 (WAN) / 198.51.100.1 (LAN)  NAT router of home 2
//   h1   192.0.2.2, default route via r1
//   h2   198.51.100.2, default route via r2
import { execFileSync } from 'node:child_process'
import { spawnJsonLines } from './helpers.mjs'

export const RELAY_IP = '203.0.113.10'
export const ROUTER_WAN = { r1: '203.0.113.11', r2: '203.0.113.12' }

const run = (...args) => execFileSync(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })

/** Why namespaces cannot be made here, or null if they can. */
export function netnsUnavailable() {
  const probe = `akprobe${process.pid}`
  try {
    run('nft', '--version')
  } catch {
    return 'nft (nftables) is not installed'
  }
  try {
    run('conntrack', '--version')
  } catch {
    return 'conntrack (conntrack-tools) is not installed'
  }
  try {
    run('ip', 'netns', 'add', probe)
    run('ip', 'netns', 'del', probe)
    return null
  } catch (err) {
    return `the kernel or this user may not create network namespaces: ${String(err.stderr || err.message).trim()}`
  }
}

/**
 * How a router maps its LAN to its WAN address:
 * - `endpoint-independent`: one public port per inside socket whatever the destination,
 *   and only replies get in (Linux masquerade keeps the source port; drop rules).
 * - `symmetric`: a new random public port per destination (masquerade fully-random).
 */
function natRules(wan, lan, kind) {
  const masquerade = kind === 'symmetric' ? 'masquerade fully-random' : 'masquerade'
  return `
table ip nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${wan}" ${masquerade}
  }
}
table ip filter {
  # Unsolicited packets to the router are dropped, not answered: a dropped packet leaves
  # no conntrack entry, so it cannot take the tuple a later outgoing mapping needs.
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname { "lo", "${lan}" } accept
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "${lan}" oifname "${wan}" accept
  }
}
`
}

/** Builds the network with the given NAT kind per router; `remove()` takes all of it down. */
export function createNetwork(nat) {
  const id = `ak${process.pid % 100000}`
  const ns = { pub: `${id}pub`, r1: `${id}r1`, r2: `${id}r2`, h1: `${id}h1`, h2: `${id}h2` }
  const created = []
  const rebinds = {}
  const inNs = (name, ...args) => run('ip', 'netns', 'exec', name, ...args)
  const ipIn = (name, ...args) => run('ip', '-n', name, ...args)
  const network = {
    ns,
    /** Drops UDP between the two routers on the "internet": no direct path can form. */
    blockDirect() {
      const rule = `ip saddr { ${ROUTER_WAN.r1}, ${ROUTER_WAN.r2} } ip daddr { ${ROUTER_WAN.r1}, ${ROUTER_WAN.r2} } meta l4proto udp drop`
      execFileSync('ip', ['netns', 'exec', ns.pub, 'nft', '-f', '-'], {
        input: `table bridge between { chain forward { type filter hook forward priority filter; policy accept;\n ${rule}\n }\n}\n`,
      })
    },
    /** Undoes `blockDirect()`. */
    allowDirect() {
      inNs(ns.pub, 'nft', 'delete', 'table', 'bridge', 'between')
    },
    /** Cuts the cable of `router` (`r1` or `r2`): nothing it would forward gets through. */
    cut(router) {
      execFileSync('ip', ['netns', 'exec', ns[router], 'nft', '-f', '-'], {
        input: 'table inet cut {\n chain forward {\n type filter hook forward priority -10; policy drop;\n }\n}\n',
      })
    },
    /** Undoes `cut(router)`. */
    mend(router) {
      inNs(ns[router], 'nft', 'delete', 'table', 'inet', 'cut')
    },
    /** Makes `router` drop `percent` % of what it forwards, at random, until `stopLosing()`. */
    lose(router, percent) {
      execFileSync('ip', ['netns', 'exec', ns[router], 'nft', '-f', '-'], {
        input: `table inet loss {\n chain forward {\n type filter hook forward priority -10; policy accept;\n numgen random mod 100 < ${percent} drop\n }\n}\n`,
      })
    },
    /** Undoes `lose(router)`. */
    stopLosing(router) {
      inNs(ns[router], 'nft', 'delete', 'table', 'inet', 'loss')
    },
    /**
     * A NAT rebinding at `router`, as when a home router forgets an idle UDP mapping: its
     * UDP mappings are dropped and new ones come from another port range, so every UDP
     * flow from the home reappears from a new public port. TCP (the relay connection)
     * keeps its mapping. Needs `conntrack` (conntrack-tools).
     */
    rebind(router) {
      rebinds[router] = (rebinds[router] ?? 0) + 1
      const from = 20_000 + rebinds[router] * 1_000
      execFileSync('ip', ['netns', 'exec', ns[router], 'nft', '-f', '-'], {
        input: `flush chain ip nat postrouting\nadd rule ip nat postrouting oifname "wan" meta l4proto udp masquerade to :${from}-${from + 999}\nadd rule ip nat postrouting oifname "wan" masquerade\n`,
      })
      inNs(ns[router], 'conntrack', '-D', '-p', 'udp')
    },
    remove() {
      for (const name of created.splice(0).reverse()) {
        try {
          run('ip', 'netns', 'del', name)
        } catch {
          // Already gone.
        }
      }
    },
  }
  try {
    for (const name of Object.values(ns)) {
      run('ip', 'netns', 'add', name)
      created.push(name)
      ipIn(name, 'link', 'set', 'lo', 'up')
    }
    ipIn(ns.pub, 'link', 'add', 'br0', 'type', 'bridge')
    ipIn(ns.pub, 'addr', 'add', `${RELAY_IP}/24`, 'dev', 'br0')
    ipIn(ns.pub, 'link', 'set', 'br0', 'up')
    const homes = [
      { router: 'r1', home: 'h1', lanNet: '192.0.2' },
      { router: 'r2', home: 'h2', lanNet: '198.51.100' },
    ]
    for (const { router, home, lanNet } of homes) {
      const r = ns[router]
      const h = ns[home]
      // WAN: the router's end in its namespace, the other end on the bridge.
      run('ip', 'link', 'add', 'wan', 'netns', r, 'type', 'veth', 'peer', 'name', `p${router}`, 'netns', ns.pub)
      ipIn(ns.pub, 'link', 'set', `p${router}`, 'master', 'br0')
      ipIn(ns.pub, 'link', 'set', `p${router}`, 'up')
      ipIn(r, 'addr', 'add', `${ROUTER_WAN[router]}/24`, 'dev', 'wan')
      ipIn(r, 'link', 'set', 'wan', 'up')
      // LAN: router to home.
      run('ip', 'link', 'add', 'lan', 'netns', r, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h)
      ipIn(r, 'addr', 'add', `${lanNet}.1/24`, 'dev', 'lan')
      ipIn(r, 'link', 'set', 'lan', 'up')
      ipIn(h, 'addr', 'add', `${lanNet}.2/24`, 'dev', 'eth0')
      ipIn(h, 'link', 'set', 'eth0', 'up')
      ipIn(h, 'route', 'add', 'default', 'via', `${lanNet}.1`)
      inNs(r, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1')
      execFileSync('ip', ['netns', 'exec', r, 'nft', '-f', '-'], { input: natRules('wan', 'lan', nat[router]) })
    }
  } catch (err) {
    network.remove()
    throw err
  }
  return network
}

/**
 * Runs fixtures/nat-peer.mjs as `role` inside namespace `name`. `next(key)` resolves with
 * the value of the next line carrying `key` not yet returned for it; `until(key, predicate)`
 * with the first value of `key` that satisfies `predicate`; `send(line)` writes a command;
 * `lines` has them all.
 */
export function startPeer(name, script, role, config) {
  const peer = spawnJsonLines('ip', ['netns', 'exec', name, process.execPath, script, role, JSON.stringify(config)], role)
  const { child, lines, exited, waitFor, send } = peer
  const returned = {}
  return {
    child,
    lines,
    exited,
    send,
    next: (key) =>
      waitFor(() => {
        const i = lines.findIndex((line, at) => at >= (returned[key] ?? 0) && key in line)
        if (i < 0) return undefined
        returned[key] = i + 1
        return lines[i][key]
      }),
    until: (key, predicate) => waitFor(() => lines.find((line) => key in line && predicate(line[key]))?.[key]),
    stop() {
      child.stdin.end()
      return exited
    },
  }
}
