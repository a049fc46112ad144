import { existsSync, readFileSync, rmSync } from 'node:fs'
import { resolve } from 'node:path'
import { record } from './results.ts'

/** Turns `vitest bench --outputJson` into bench/results.json entries (mean time per iteration). */
export default function collect(): void {
  const file = resolve(import.meta.dirname, '.vitest-bench.json')
  if (!existsSync(file)) return
  const report = JSON.parse(readFileSync(file, 'utf8')) as { files: Array<{ groups: Array<{ fullName: string; benchmarks: Array<{ name: string; mean: number }> }> }> }
  const results: Parameters<typeof record>[0] = {}
  for (const group of report.files.flatMap(f => f.groups)) {
    for (const bench of group.benchmarks) {
      const name = `${group.fullName.split(' > ').slice(1).join(' › ')} › ${bench.name}`
      results[name] = { value: Math.round(bench.mean * 1000) / 1000, unit: 'ms', better: 'lower' }
    }
  }
  console.log('micro-benchmarks (mean per iteration):')
  record(results)
  rmSync(file)
}
