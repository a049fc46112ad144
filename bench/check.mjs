// Compares bench/results.json with the committed bench/baseline.json. Only gated results can fail:
// medians of our own work in the dev loop (the fixed debounce excluded) and our ratio to the peer
// measured in the same run. Each gated result carries the spread of its samples; its threshold is
// twice the larger spread of the two runs (at least 10%), and changes under its absolute floor are
// noise. Everything else (micro-benchmark means, the peer's own times, Docker's container start,
// memory) is printed for reading, never gated. A gated result missing from this run fails: a
// measurement that broke must not pass as "no regression". Plain JavaScript so Node runs it as is.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const MIN_THRESHOLD = 0.10
const SPREAD_FACTOR = 2
const read = name => JSON.parse(readFileSync(join(here, name), 'utf8'))
if (!existsSync(join(here, 'results.json'))) {
  console.error('bench/results.json is missing: run `npm run bench` first')
  process.exit(2)
}
const baselineFile = read('baseline.json')
const resultsFile = read('results.json')
const baseline = baselineFile.results
const current = resultsFile.results

let failures = 0
const shown = ratio => (Number.isFinite(ratio) ? `×${ratio.toFixed(2)}` : '×∞')
const rows = []
for (const [name, base] of Object.entries(baseline)) {
  const now = current[name]
  const gated = Boolean(base.gate)
  if (!now) {
    if (gated) failures++
    rows.push([name, `${base.value} ${base.unit}`, '—', '', '', gated ? 'MISSING (gated)' : 'missing'])
    continue
  }
  // A ratio above 1 is worse, whichever way the metric improves (0 over 0 is no change).
  const raw = base.better === 'higher' ? base.value / now.value : now.value / base.value
  const ratio = Number.isNaN(raw) ? 1 : raw
  if (!gated) {
    rows.push([name, `${base.value} ${base.unit}`, `${now.value} ${now.unit}`, shown(ratio), '', 'info'])
    continue
  }
  const spreadNow = now.gate?.spread ?? 0
  const threshold = Math.max(MIN_THRESHOLD, SPREAD_FACTOR * Math.max(base.gate.spread, spreadNow))
  const floor = base.gate.floor ?? 0
  const worse = ratio > 1 + threshold && Math.abs(now.value - base.value) > floor
  if (worse) failures++
  const limit = `±${Math.round(Math.max(base.gate.spread, spreadNow) * 100)}% → ${Math.round(threshold * 100)}%${floor ? `, >${floor} ${base.unit}` : ''}`
  rows.push([name, `${base.value} ${base.unit}`, `${now.value} ${now.unit}`, shown(ratio), limit, worse ? 'REGRESSION' : 'ok'])
}
for (const name of Object.keys(current)) if (!baseline[name]) rows.push([name, '—', `${current[name].value} ${current[name].unit}`, '', '', 'new'])

const width = Math.max(...rows.map(r => r[0].length))
console.log(`${'metric'.padEnd(width)}  ${'baseline'.padStart(12)}  ${'now'.padStart(12)}  ${'ratio'.padStart(6)}  ${'spread → threshold'.padEnd(24)}  verdict`)
for (const [name, base, now, ratio, limit, note] of rows) console.log(`${name.padEnd(width)}  ${String(base).padStart(12)}  ${String(now).padStart(12)}  ${ratio.padStart(6)}  ${limit.padEnd(24)}  ${note}`)
const load = [baselineFile.machine?.loadAverage, resultsFile.machine?.loadAverage].map(l => (l === undefined ? '?' : l))
console.log(`\nload average while measuring: baseline ${load[0]}, now ${load[1]} (numbers taken on a busy machine are noisy)`)
console.log(failures
  ? `${failures} gated result(s) regressed or missing (threshold: ${SPREAD_FACTOR}× the measured spread, at least ${MIN_THRESHOLD * 100}%)`
  : `no gated regressions (threshold: ${SPREAD_FACTOR}× the measured spread, at least ${MIN_THRESHOLD * 100}%)`)
process.exit(failures ? 1 : 0)
