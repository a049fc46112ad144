import type { Diagnostic, RunSummary, SkippedTest, TestResult } from '../core/index.ts'
import { formatDuration, truncationNotes } from '../core/index.ts'
import type { CommandContext } from './context.ts'
import { displayPath, formatDiagnostic, printable } from './output.ts'
import { formatSpanVerdict } from './span-output.ts'

/** One test's result as the human reporter prints it: a line, and for a failure the step and output. */
export function formatTestResult(ctx: CommandContext, test: TestResult): string {
  const { c } = ctx
  const mark = test.status === 'pass' ? c.green('✓') : c.red('✗')
  const reused = Object.values(test.timings.reused)
  const note = reused.length && reused.every(Boolean) ? c.dim(' (warm)') : ''
  // A partial run must not read as a full pass: say how much of the test ran.
  const filtered = test.steps.filter(s => s.filtered).length
  const ran = test.steps.filter(s => !s.filtered && s.status !== 'skipped').length
  const partial = filtered ? c.yellow(` (${ran} of ${test.steps.length} steps ran; ${filtered} filtered out by -t)`) : ''
  // Names, messages and output come from test files and containers: escaped, never raw (see printable).
  const lines = [`${mark} ${printable(test.name)} ${c.dim(displayPath(ctx, test.file))} ${c.dim(formatDuration(test.durationMs))}${note}${partial}`]
  // A failure is read by someone who may not have written the test: say what it was meant to prove.
  if (test.status !== 'pass' && test.description) lines.push(`    ${c.dim(printable(test.description))}`)
  if (test.error) {
    lines.push(`    ${c.red('error')} ${printable(test.error.message)}`)
    if (test.error.hint) lines.push(`    ${c.cyan('hint:')} ${printable(test.error.hint)}`)
  }
  for (const step of test.steps) {
    if (!step.failure) continue
    lines.push(`    ${c.red('✗')} step "${printable(step.name)}" ${c.dim(`in ${printable(step.service)}`)}: ${printable(step.failure.message)}`)
    if (step.description) lines.push(`      ${c.dim('checks')} ${printable(step.description)}`)
    // The expectation as written, and where: `file:line:col` opens at its key in editors and terminals.
    const at = step.failure.location ? ` ${c.dim('at')} ${displayPath(ctx, test.file)}:${step.failure.location.line}:${step.failure.location.column}` : ''
    lines.push(`      ${printable(step.failure.expectation)}${at}`)
    if (step.failure.excerpt.trim()) {
      lines.push(`      ${c.dim(`${step.failure.stream ?? 'output'} (last lines):`)}`)
      // A CRLF line ending is not worth a visible \r; any other control character is.
      for (const line of step.failure.excerpt.replace(/\n$/, '').split('\n')) lines.push(`      ${c.dim('│')} ${printable(line.replace(/\r$/, ''))}`)
    }
  }
  // Span rules after the steps: a failed step usually explains a missing span, not the reverse.
  if (test.spans) lines.push(...formatSpanVerdict(ctx, test.spans, test.status !== 'pass'))
  // Shown on a pass too: a report must never look as if it held the whole output.
  for (const note of truncationNotes(test.steps)) lines.push(`    ${c.yellow('note:')} ${printable(note)}`)
  const skipped = test.steps.filter(s => s.status === 'skipped' && !s.filtered).length
  if (skipped) lines.push(`    ${c.dim(`${skipped} later step${skipped === 1 ? '' : 's'} skipped`)}`)
  return `${lines.join('\n')}\n`
}

/** An invalid test file, shown as a failed file with its diagnostics. */
export function formatInvalidFile(ctx: CommandContext, file: string, diagnostics: readonly Diagnostic[]): string {
  const lines = [`${ctx.c.red('✗')} ${displayPath(ctx, file)} ${ctx.c.red('invalid')}\n`]
  for (const d of diagnostics) lines.push(formatDiagnostic(ctx, d).replace(/^(?=.)/gm, '    '))
  return lines.join('')
}

/** A test that was cancelled (`--fail-fast`): not run, so neither passed nor failed. */
export function formatSkippedTest(ctx: CommandContext, skipped: SkippedTest): string {
  return ctx.c.dim(`↓ ${printable(skipped.name ?? '')} ${displayPath(ctx, skipped.file)} ${printable(skipped.message)}\n`)
}

/**
 * The closing summary line; as Vitest's, it names only the counts that are not zero. `notes` follow
 * it: steps a filter left out, files a `--bail` never ran.
 */
export function formatSummary(ctx: CommandContext, summary: RunSummary, notes: readonly string[] = []): string {
  const { c } = ctx
  const parts: string[] = []
  if (summary.passed) parts.push(c.green(`${summary.passed} passed`))
  if (summary.failed) parts.push(c.red(`${summary.failed} failed`))
  if (summary.errors) parts.push(c.red(`${summary.errors} errored`))
  if (summary.invalid) parts.push(c.red(`${summary.invalid} invalid`))
  if (summary.skipped) parts.push(c.yellow(`${summary.skipped} skipped`))
  return `\nTests: ${parts.join(', ') || 'none'} (${summary.total}) in ${formatDuration(summary.durationMs)}\n${notes.map(n => `       ${c.yellow(n)}\n`).join('')}`
}

export { createProgress } from './progress.ts'
