import type { Diagnostic } from '../diagnostics.ts'
import type { TestResult } from '../run.ts'

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

/** A test that did not run: `cancelled` while it ran, or `not-run` (never started). */
export interface SkippedTest {
  file: string
  name?: string
  reason: 'cancelled' | 'not-run'
  /** Why it was stopped, e.g. `--fail-fast: an earlier test failed`. */
  message: string
}

/** An invalid test file: reported as a failed file, with its diagnostics. */
export interface InvalidFile {
  file: string
  diagnostics: Diagnostic[]
}

/** Everything a run produced, as reporters see it. */
export interface RunReport {
  summary: RunSummary
  tests: TestResult[]
  invalid: InvalidFile[]
  skipped: SkippedTest[]
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

/** The JSON report: stable keys, one object. */
export function formatJsonReport(report: RunReport): string {
  return `${JSON.stringify({ version: 1, ...report }, null, 2)}\n`
}
