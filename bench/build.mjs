// Builds what the benchmark measures, both in release mode: the addon (as `npm run build`)
// and case E's Rust binary.
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const run = (cmd, args, cwd = root) => execFileSync(cmd, args, { cwd, stdio: 'inherit', shell: process.platform === 'win32' })

run('npm', ['install', '--no-audit', '--no-fund'], path.join(root, 'bench'))
run('npm', ['run', 'build'], root)
// Case E at full speed: the addon's release profile builds its dependencies for size
// (Cargo.toml), which raw iroh should not pay for. Its own target dir keeps the two apart.
run('cargo', [
  'build', '--release', '--example', 'iroh-raw', '--target', hostTarget(),
  '--config', 'profile.release.package."*".opt-level=3', '--target-dir', path.join(root, 'target', 'bench-e'),
])

function hostTarget() {
  return execFileSync('rustc', ['-vV'], { encoding: 'utf8' }).match(/^host: (.+)$/m)[1]
}
