// Builds what the benchmark measures, both in release mode: the addon (as `npm run build`)
// and case E's Rust binary, for the host target so it shares napi's build directory.
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const run = (cmd, args, cwd = root) => execFileSync(cmd, args, { cwd, stdio: 'inherit', shell: process.platform === 'win32' })

run('npm', ['install', '--no-audit', '--no-fund'], path.join(root, 'bench'))
run('npm', ['run', 'build'], root)
run('cargo', ['build', '--release', '--example', 'iroh-raw', '--target', hostTarget()])

function hostTarget() {
  return execFileSync('rustc', ['-vV'], { encoding: 'utf8' }).match(/^host: (.+)$/m)[1]
}
