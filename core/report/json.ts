import type { Diagnostic } from '../format/diagnostics.ts'
import type { PullRecord } from '../engine/images.ts'
import type { TestResult } from '../run.ts'
import type { ReportOptions } from './location.ts'
import { reportPath } from './location.ts'

/**
 * Totals of a run. `errors` are tests that could not run; `skipped` tests did not run (cancelled
 * or never started after `--fail-fast` stopped the run); invalid files are counted apart.
 * `total` is every test file: passed + failed + errors + skipped + invalid.
 */
export interface RunSummary {
  total: number
  passed: number
  failed: number
  errors: number
  skipped: number
  invalid: number
  durationMs: number
}

/**
 * A test that did not run: `cancelled` while it ran, `not-run` (never started after the run was
 * stopped), or `filtered` (no step matched `-t`).
 */
export interface SkippedTest {
  file: string
  name?: string
  reason: 'cancelled' | 'not-run' | 'filtered'
  /** Why it was stopped, e.g. `--fail-fast: an earlier test failed`. */
  message: string
}

/** An invalid test file: reported as a failed file, with its diagnostics. */
export interface InvalidFile {
  file: string
  diagnostics: Diagnostic[]
}

/** Which slice of the files a sharded run ran (`clnrm run --shard index/total`). */
export interface ShardInfo {
  index: number
  total: number
}

/** Everything a run produced, as reporters see it. */
export interface RunReport {
  summary: RunSummary
  tests: TestResult[]
  invalid: InvalidFile[]
  skipped: SkippedTest[]
  /** The shard this run was (`--shard`): `clnrm merge-reports` checks the shards of a run are all there. */
  shard?: ShardInfo
  /** The images this run pulled (start time, duration, layers, bytes, or why it failed); absent when none. */
  pulls?: PullRecord[]
  /** Set by `clnrm merge-reports`: the reports merged, and the wall (longest) and total (summed) time of the shards. */
  merged?: MergeInfo
}

/** What `clnrm merge-reports` merged: each report's file (relative to the root), shard and wall time. */
export interface MergeInfo {
  reports: Array<{ file: string; shard?: ShardInfo; durationMs: number }>
  /** The longest shard's wall time: how long the sharded run took (also `summary.durationMs`). */
  wallMs: number
  /** Every shard's wall time added up: the machine time the run cost. */
  totalMs: number
}

/** Counts results into a summary. */
export function summarize(tests: readonly TestResult[], others: { invalid?: number; skipped?: number }, durationMs: number): RunSummary {
  const invalid = others.invalid ?? 0
  const skipped = others.skipped ?? 0
  return {
    total: tests.length + invalid + skipped,
    passed: tests.filter(t => t.status === 'pass').length,
    failed: tests.filter(t => t.status === 'fail').length,
    errors: tests.filter(t => t.status === 'error').length,
    skipped,
    invalid,
    durationMs,
  }
}

/**
 * The JSON report: stable keys, one object. With `options`, paths are relative to the project root
 * (given as `root`). A failing step's `failure.location` is where its key is written.
 */
export function formatJsonReport(report: RunReport, options?: ReportOptions): string {
  if (!options) return `${JSON.stringify({ version: 1, ...report }, null, 2)}\n`
  const path = (file: string): string => reportPath(file, options.root)
  const tests = report.tests.map(test => ({ ...test, file: path(test.file) }))
  const invalid = report.invalid.map(i => ({ file: path(i.file), diagnostics: i.diagnostics.map(d => ({ ...d, file: path(d.file) })) }))
  const skipped = report.skipped.map(s => ({ ...s, file: path(s.file) }))
  return `${JSON.stringify({ version: 1, root: options.root, ...(report.shard && { shard: report.shard }), summary: report.summary, tests, invalid, skipped, ...(report.pulls?.length ? { pulls: report.pulls } : {}), ...(report.merged && { merged: { ...report.merged, reports: report.merged.reports.map(r => ({ ...r, file: path(r.file) })) } }) }, null, 2)}\n`
}
