import type { Diagnostic } from '../diagnostics.ts'
import type { TestResult } from '../run.ts'

/** Totals of a run. `errors` are tests that could not run; invalid files are counted apart. */
export interface RunSummary {
  total: number
  passed: number
  failed: number
  errors: number
  invalid: number
  durationMs: number
}

/** Everything a run produced, as reporters see it. */
export interface RunReport {
  summary: RunSummary
  tests: TestResult[]
  invalid: Array<{ file: string; diagnostics: Diagnostic[] }>
}

/** Counts results into a summary. */
export function summarize(tests: readonly TestResult[], invalid: number, durationMs: number): RunSummary {
  return {
    total: tests.length,
    passed: tests.filter(t => t.status === 'pass').length,
    failed: tests.filter(t => t.status === 'fail').length,
    errors: tests.filter(t => t.status === 'error').length,
    invalid,
    durationMs,
  }
}

/** The JSON report: stable keys, one object. */
export function formatJsonReport(report: RunReport): string {
  return `${JSON.stringify({ version: 1, ...report }, null, 2)}\n`
}
