// A/B of addon builds in one session: `node bench/ab.mjs NAME=path/to.node ... -- ROUNDS`.
// Alternates the builds round by round (each copied over iroh.linux-x64-gnu.node), runs
// case A small, A 64 KiB and G 64 KiB, and prints each build's medians and every figure.
// Build each variant with `npm run build` and copy the .node aside first.
import { copyFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { runPair } from './pair.mjs'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const sep = process.argv.indexOf('--')
const variants = process.argv.slice(2, sep === -1 ? undefined : sep).map((a) => a.split('='))
const rounds = Number(sep === -1 ? 3 : process.argv[sep + 1])
const jobs = [
  ['A small ev/s', 'alkdev', { workload: 'small', count: 1_500_000 }, (r) => r.eventsPerSec],
  ['A small cpu us/ev', 'alkdev', { workload: 'small', count: 1_500_000 }, (r) => r.cpuUsPerEvent, 'same'],
  ['A 64KiB MB/s', 'alkdev', { workload: 'large', count: 12_000 }, (r) => r.mbPerSec],
  ['A 64KiB cpu us/ev', 'alkdev', { workload: 'large', count: 12_000 }, (r) => r.cpuUsPerEvent, 'same'],
  ['G 64KiB MB/s', 'msg-channel', { workload: 'msgLarge', count: 16_000 }, (r) => r.mbPerSec],
  ['G 64KiB cpu us/msg', 'msg-channel', { workload: 'msgLarge', count: 16_000 }, (r) => r.cpuUsPerEvent, 'same'],
]
const results = new Map()
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
for (let round = 0; round < rounds; round++) {
  for (const [name, file] of round % 2 ? [...variants].reverse() : variants) {
    copyFileSync(file, path.join(root, 'iroh.linux-x64-gnu.node'))
    let last
    for (const [label, transport, config, pick, same] of jobs) {
      const r = same ? last : await runPair(transport, config)
      last = r
      const key = `${name}\t${label}`
      results.set(key, [...(results.get(key) ?? []), pick(r)])
    }
  }
  console.error(`round ${round + 1} of ${rounds} done`)
}
for (const [key, xs] of results) console.log(`${key}\t${median(xs).toFixed(2)}\t[${xs.map((x) => x.toFixed(1)).join(', ')}]`)
