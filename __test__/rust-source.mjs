// The Rust source as text, for the tests that hold a JS list to what Rust defines: every
// .rs file under src/, and under crates/ once the core is a crate of its own. No native
// addon is loaded.
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = fileURLToPath(new URL('../', import.meta.url))

/** `[{ file, text }]` for every .rs file under src/ and crates/. */
export function rustSources() {
  return ['src', 'crates']
    .map((dir) => join(root, dir))
    .filter((dir) => existsSync(dir))
    .flatMap((dir) => readdirSync(dir, { recursive: true }).filter((f) => f.endsWith('.rs')).map((f) => join(dir, f)))
    .map((file) => ({ file, text: readFileSync(file, 'utf8') }))
}
