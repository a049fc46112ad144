import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { resolve } from 'node:path'

/**
 * One measured number. `better` says which way is an improvement. Only results with `gate` fail
 * `bench:check`: medians of our own work and our ratio to the peer, each with the spread measured
 * alongside it, so the threshold can sit above this machine's noise. The rest is reported.
 */
export interface BenchResult {
  value: number
  unit: 'ms' | 'MB' | 'ratio' | 'µs' | 'spans/s' | 'count'
  better: 'lower' | 'higher'
  gate?: {
    /** Relative spread of the samples behind the value: (p75 − p25) / p50. */
    spread: number
    /** A change smaller than this (in `unit`) is never a regression, whatever the ratio. */
    floor?: number
  }
}

/** The file `npm run bench` writes: this run's results only. */
export interface BenchResults {
  machine: { cpus: number; memoryGb: number; node: string; loadAverage: number }
  startedAt: string
  results: Record<string, BenchResult>
}

export const RESULTS_FILE: string = resolve(import.meta.dirname, 'results.json')

const machine = (): BenchResults['machine'] =>
  ({ cpus: cpus().length, memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version, loadAverage: 0 })

/**
 * Starts this run's results file, replacing the previous run's: a measurement that fails leaves
 * its numbers missing (which `bench:check` reports) instead of silently keeping old ones.
 */
export function startResults(): void {
  const fresh: BenchResults = { machine: machine(), startedAt: new Date().toISOString(), results: {} }
  writeFileSync(RESULTS_FILE, `${JSON.stringify(fresh, null, 2)}\n`)
}

/** Adds results to this run's file (suites run one after another, so read-modify-write is safe). */
export function record(results: Record<string, BenchResult>, load: number = loadAverage()): void {
  if (!existsSync(RESULTS_FILE)) startResults()
  const current = JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as BenchResults
  // The highest load seen while measuring: numbers taken on a busy machine say so.
  const next: BenchResults = { ...current, machine: { ...current.machine, loadAverage: Math.max(current.machine.loadAverage ?? 0, load) }, results: { ...current.results, ...results } }
  writeFileSync(RESULTS_FILE, `${JSON.stringify(next, null, 2)}\n`)
  console.log('')
  for (const [name, result] of Object.entries(results)) {
    const spread = result.gate ? `  ±${Math.round(result.gate.spread * 100)}% spread (gated)` : ''
    console.log(`  ${name.padEnd(78)} ${String(result.value).padStart(10)} ${result.unit}${spread}`)
  }
}

/** The 1-minute load average, rounded (0 where the platform has none). */
export function loadAverage(): number {
  try {
    return Math.round(Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]) * 100) / 100
  }
  catch {
    return 0
  }
}

/** The p-th percentile (0..100) of samples. */
export function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b)
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return Math.round(sorted[index]! * 10) / 10
}

/** Relative spread of samples: the interquartile range over the median (0 when the median is 0). */
export function spread(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
  const median = at(50)
  return median > 0 ? Math.round((at(75) - at(25)) / median * 1000) / 1000 : 0
}

/** A gated median: the p50 of samples, with their spread and an absolute floor. */
export function gatedMedian(samples: readonly number[], unit: BenchResult['unit'], floor: number): BenchResult {
  return { value: percentile(samples, 50), unit, better: 'lower', gate: { spread: spread(samples), floor } }
}
