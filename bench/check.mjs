// Compares bench/results.json with the committed bench/baseline.json, as ratios, and reports every
// metric more than 10% worse. Exits 1 when any is. Plain JavaScript so Node runs it as is.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const THRESHOLD = 1.10
const read = (name) => JSON.parse(readFileSync(join(here, name), 'utf8'))
if (!existsSync(join(here, 'results.json'))) {
  console.error('bench/results.json is missing: run `npm run bench` first')
  process.exit(2)
}
const baseline = read('baseline.json').results
const current = read('results.json').results
let regressions = 0
const rows = []
for (const [name, base] of Object.entries(baseline)) {
  const now = current[name]
  if (!now) {
    rows.push([name, base.value, '—', '', 'missing'])
    continue
  }
  // A ratio above 1 is worse, whichever way the metric improves.
  const ratio = base.better === 'higher' ? base.value / now.value : now.value / base.value
  const worse = ratio > THRESHOLD
  if (worse) regressions++
  rows.push([name, `${base.value} ${base.unit}`, `${now.value} ${now.unit}`, `×${ratio.toFixed(2)}`, worse ? 'REGRESSION' : ''])
}
const width = Math.max(...rows.map(r => r[0].length))
for (const [name, base, now, ratio, note] of rows) console.log(`${name.padEnd(width)}  ${String(base).padStart(12)}  ${String(now).padStart(12)}  ${ratio.padStart(6)}  ${note}`)
console.log(regressions ? `\n${regressions} regression(s) over ${Math.round((THRESHOLD - 1) * 100)}%` : '\nno regressions over 10%')
process.exit(regressions ? 1 : 0)
