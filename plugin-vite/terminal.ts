import pc from 'picocolors'
import type { HotReloadMetrics, Diagnostic } from '../core/index.ts'
import { printable } from '../core/index.ts'
import type { SourceLocation, TestView } from './protocol.ts'

// picocolors' default export follows NO_COLOR, FORCE_COLOR and whether stdout is a terminal, as Vite's own logger does.

/** `tests/a.clnrm.toml:12:3`: terminals and editors open it at the line. */
const at = (view: TestView, location: SourceLocation | undefined): string =>
  location ? `${view.relative}:${location.line}:${location.column}` : view.relative

/** The most invalid-file problems printed per file; the panel and `clnrm validate` list them all. */
const PROBLEMS_SHOWN = 3

/**
 * The lines Vite's terminal gets for one test's result: nothing on a pass; one line per failure
 * (a step, a span rule, the error that stopped it) or per problem of an invalid file, each naming
 * `file:line:col`. Text from test files and containers is escaped (see `printable`).
 */
export function resultLines(view: TestView): string[] {
  const cross = pc.red('✗')
  const f = view.failure
  if (view.status === 'fail' && f) {
    return [`${cross} ${at(view, f.location)} ${printable(f.step ? `step "${f.step}": ` : '')}${printable(f.expectation)}: ${printable(f.message)}`]
  }
  if (view.status === 'fail') {
    return (view.spanRules?.failures ?? []).map(r => `${cross} ${at(view, r.location)} span rule ${printable(r.rule)} did not hold: ${printable(r.actual)} (expected ${printable(r.expected)})`)
  }
  if (view.status === 'error') {
    return [`${cross} ${view.relative} ${printable(view.name)} could not run: ${printable(f?.message ?? 'error')}${f?.excerpt ? `\n  ${pc.dim(`hint: ${printable(f.excerpt)}`)}` : ''}`]
  }
  if (view.status === 'invalid') {
    const problems = view.problems ?? []
    const lines = problems.slice(0, PROBLEMS_SHOWN).map(p => `${cross} ${at(view, p.location)} ${pc.dim(p.code)} ${printable(p.message)}`)
    if (problems.length > PROBLEMS_SHOWN) lines.push(`  ${pc.dim(`… ${problems.length - PROBLEMS_SHOWN} more in ${view.relative} (clnrm validate lists them)`)}`)
    return lines
  }
  return []
}

/** A warning of a file that loads: `⚠ tests/a.clnrm.toml:3:1 CLNRM_UNKNOWN_KEY …`, with its hint. */
export function warningLine(relativeFile: string, d: Diagnostic): string {
  return `${pc.yellow('⚠')} ${printable(relativeFile)}:${d.line}:${d.column} ${pc.dim(d.code)} ${printable(d.message)}${d.hint ? `\n  ${pc.dim(`hint: ${printable(d.hint)}`)}` : ''}`
}

/**
 * One reload's summary, as Vitest's names only the counts that are not zero:
 * `3 passed, 1 failed (2 files) in 41 ms`.
 */
export function summaryLine(metrics: HotReloadMetrics): string {
  const count = (status: string): number => metrics.tests.filter(t => t.status === status).length
  const parts = [
    [count('pass'), 'passed', pc.green],
    [count('fail'), 'failed', pc.red],
    [count('error'), 'could not run', pc.red],
    [count('invalid'), 'invalid', pc.red],
  ] as const
  const shown = parts.filter(([n]) => n > 0).map(([n, word, color]) => color(`${n} ${word}`))
  const files = new Set(metrics.tests.filter(t => t.status !== 'superseded').map(t => t.file)).size
  return `${shown.join(', ') || 'nothing ran'} ${pc.dim(`(${files} file${files === 1 ? '' : 's'}) in ${Math.round(metrics.totalLatencyMs)} ms`)}`
}
