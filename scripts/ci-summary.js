'use strict'
// Adds up cargo's and vitest's counts into the one closing line CI reads:
// "N passed, N failed, N skipped".
const fs = require('node:fs')

const [logPath, vitestJsonPath] = process.argv.slice(2)
let passed = 0
let failed = 0
let skipped = 0
let unallowedSkips = 0

// One line per test: its full name, or a pattern with * for any text, then "# reason".
function readAllowedSkips() {
  let text = ''
  try {
    text = fs.readFileSync(require('node:path').join(__dirname, '..', '.ci', 'allowed-skips'), 'utf8')
  } catch {}
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean)
    .map((name) => new RegExp('^' + name.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$'))
}

const log = fs.readFileSync(logPath, 'utf8')
for (const m of log.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored/g)) {
  passed += Number(m[1])
  failed += Number(m[2])
  skipped += Number(m[3])
}
let vitestRan = false
try {
  const report = JSON.parse(fs.readFileSync(vitestJsonPath, 'utf8'))
  passed += report.numPassedTests
  failed += report.numFailedTests
  // A file that fails to load fails no test but is a failure all the same.
  if (report.numFailedTests === 0) failed += report.numFailedTestSuites ?? 0
  skipped += report.numPendingTests + (report.numTodoTests ?? 0)
  vitestRan = true
  // A test CI means to run that skips (a missing tool, a missing kernel feature) would pass
  // silently; each skip must be named in .ci/allowed-skips with its reason.
  const allowed = readAllowedSkips()
  for (const file of report.testResults ?? []) {
    for (const t of file.assertionResults ?? []) {
      if (t.status !== 'pending' && t.status !== 'skipped' && t.status !== 'todo') continue
      if (allowed.some((re) => re.test(t.fullName))) continue
      console.log(`skipped, not in .ci/allowed-skips: ${t.fullName}`)
      unallowedSkips += 1
    }
  }
} catch {
  console.log('vitest did not produce a report (it did not run, or crashed)')
  failed += 1
}
if (!vitestRan && passed === 0) failed = Math.max(failed, 1)
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
if (unallowedSkips > 0) process.exitCode = 1
