import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { resolve } from 'node:path'

/** One measured number. `better` says which way is an improvement (bench:check uses it). */
export interface BenchResult {
  value: number
  unit: 'ms' | 'MB' | 'ratio' | 'µs'
  better: 'lower' | 'higher'
}

export const RESULTS_FILE: string = resolve(import.meta.dirname, 'results.json')

/** Adds results to bench/results.json (suites run one after another, so read-modify-write is safe). */
export function record(results: Record<string, BenchResult>): void {
  const current = existsSync(RESULTS_FILE) ? JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) : {}
  const next = {
    machine: { cpus: cpus().length, memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version },
    results: { ...current.results, ...results },
  }
  writeFileSync(RESULTS_FILE, `${JSON.stringify(next, null, 2)}\n`)
  console.log('')
  for (const [name, result] of Object.entries(results)) console.log(`  ${name.padEnd(60)} ${String(result.value).padStart(10)} ${result.unit}`)
}

/** The p-th percentile (0..100) of samples. */
export function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b)
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return Math.round(sorted[index]! * 10) / 10
}
