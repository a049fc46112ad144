import { existsSync, readFileSync, rmSync } from 'node:fs'
import { resolve } from 'node:path'
import { record, startResults } from './results.ts'

/**
 * Global setup of the measuring run: starts a fresh bench/results.json, then adds the
 * micro-benchmarks `vitest bench --outputJson` just wrote (mean per iteration). They are reported,
 * not gated: their run-to-run noise on a busy 2-core machine is larger than the changes that matter;
 * the dev loop's per-phase medians gate the same work in place.
 */
export default function collect(): void {
  startResults()
  const file = resolve(import.meta.dirname, '.vitest-bench.json')
  if (!existsSync(file)) {
    console.log('micro-benchmarks: no bench/.vitest-bench.json (run `npm run bench`); they will show as missing')
    return
  }
  const report = JSON.parse(readFileSync(file, 'utf8')) as { files: Array<{ groups: Array<{ fullName: string; benchmarks: Array<{ name: string; mean: number; rme: number }> }> }> }
  const results: Parameters<typeof record>[0] = {}
  for (const group of report.files.flatMap(f => f.groups)) {
    for (const bench of group.benchmarks) {
      const name = `${group.fullName.split(' > ').slice(1).join(' › ')} › ${bench.name}`
      results[name] = { value: Math.round(bench.mean * 1000) / 1000, unit: 'ms', better: 'lower' }
      console.log(`  ${name}: ±${bench.rme.toFixed(1)}% (relative margin of error of the mean)`)
    }
  }
  console.log('micro-benchmarks (mean per iteration, reported, not gated):')
  record(results)
  rmSync(file)
}
