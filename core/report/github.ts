import { isAbsolute, relative, sep } from 'node:path'
import type { Diagnostic } from '../format/diagnostics.ts'
import { formatDuration } from '../format/duration.ts'
import type { RunReport } from './json.ts'
import { printable } from './printable.ts'
import type { ReportOptions } from './location.ts'

/**
 * Escapes the message of a GitHub workflow command: `%`, CR and LF, as the runner reads them back.
 * Other control characters (ESC, NUL) from test files and containers are shown escaped (`\x1b`), as
 * in the terminal: an annotation cannot recolor the log or hide text.
 */
export function escapeGithubData(text: string): string {
  return printable(text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A'), true)
}

/** Escapes a property (`file=`, `title=`) of a workflow command: also `:` and `,`, which end a property. */
export function escapeGithubProperty(text: string): string {
  return escapeGithubData(text).replace(/:/g, '%3A').replace(/,/g, '%2C')
}

/** One `::error` or `::warning` workflow command: an annotation on a file's line in the pull request. */
export function githubCommand(kind: 'error' | 'warning' | 'notice', properties: { file?: string; line?: number; col?: number; title?: string }, message: string): string {
  const props = Object.entries(properties)
    .filter(([, value]) => value !== undefined && value !== '')
    .map(([key, value]) => `${key}=${escapeGithubProperty(String(value))}`)
    .join(',')
  return `::${kind}${props ? ` ${props}` : ''}::${escapeGithubData(message)}\n`
}

/**
 * A path as GitHub annotates it: relative to the repository checkout (`GITHUB_WORKSPACE`) when the
 * file lies inside it, else to the project root; always with `/`.
 */
export function githubPath(file: string, root: string, workspace?: string): string {
  const inside = (base: string): string | undefined => {
    const rel = relative(base, file)
    return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : undefined
  }
  return ((workspace && inside(workspace)) ?? inside(root) ?? file).split(sep).join('/')
}

/** Options of the GitHub reporter. */
export interface GithubReportOptions extends ReportOptions {
  /** `GITHUB_WORKSPACE`: annotation paths are relative to it. */
  workspace?: string
  /** Warnings of valid files, annotated as `::warning`. */
  warnings?: readonly Diagnostic[]
}

/**
 * The `github` reporter: one `::error` annotation per failing step (on the failing key's line), per
 * test that could not run, per failed span rule and per error of an invalid file; `::warning` for
 * warnings. GitHub shows them on the pull request's diff and in the job's summary.
 */
export function formatGithubAnnotations(report: RunReport, options: GithubReportOptions): string {
  const path = (file: string): string => githubPath(file, options.root, options.workspace)
  const out: string[] = []
  for (const test of report.tests) {
    if (test.error) {
      out.push(githubCommand('error', { file: path(test.file), line: 1, title: test.name }, [test.error.message, test.error.hint].filter(Boolean).join('\n')))
    }
    test.steps.forEach((step) => {
      if (!step.failure) return
      const at = step.failure.location
      out.push(githubCommand('error', { file: path(test.file), line: at?.line, col: at?.column, title: `${test.name} › ${step.name}` }, `${step.failure.expectation}: ${step.failure.message}`))
    })
    for (const failure of test.spans?.failures ?? []) {
      out.push(githubCommand('error', { file: path(test.file), title: `${test.name} › ${failure.rule}` }, `expected ${failure.expected}; got ${failure.actual}`))
    }
  }
  const diagnostic = (d: Diagnostic): string => githubCommand(d.severity === 'error' ? 'error' : 'warning', { file: path(d.file), line: d.line, col: d.column, title: d.code }, [d.message, d.hint].filter(Boolean).join('\n'))
  for (const invalid of report.invalid) for (const d of invalid.diagnostics) out.push(diagnostic(d))
  for (const d of options.warnings ?? []) out.push(diagnostic(d))
  return out.join('')
}

const cell = (text: string): string => printable(text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' '))

/** The Markdown job summary (`$GITHUB_STEP_SUMMARY`): the counts, then a table of what failed. */
export function formatGithubSummary(report: RunReport, options: GithubReportOptions): string {
  const { summary } = report
  const path = (file: string): string => githubPath(file, options.root, options.workspace)
  const counts = [
    ['passed', summary.passed],
    ['failed', summary.failed],
    ['errored', summary.errors],
    ['invalid', summary.invalid],
    ['skipped', summary.skipped],
  ].filter(([, n]) => n).map(([label, n]) => `${n} ${label}`)
  const ok = !summary.failed && !summary.errors && !summary.invalid
  const lines = [`## clnrm ${ok ? '✅' : '❌'} ${counts.join(', ') || 'no tests'} (${summary.total}) in ${formatDuration(summary.durationMs)}`, '']
  const rows: string[] = []
  for (const test of report.tests) {
    if (test.error) rows.push(`| ${cell(test.name)} | \`${cell(path(test.file))}\` | ${cell(test.error.message)} |`)
    test.steps.forEach((step) => {
      if (!step.failure) return
      const at = step.failure.location
      rows.push(`| ${cell(`${test.name} › ${step.name}`)} | \`${cell(path(test.file))}${at ? `:${at.line}` : ''}\` | ${cell(`${step.failure.expectation}: ${step.failure.message}`)} |`)
    })
    for (const failure of test.spans?.failures ?? []) rows.push(`| ${cell(`${test.name} › ${failure.rule}`)} | \`${cell(path(test.file))}\` | ${cell(`expected ${failure.expected}; got ${failure.actual}`)} |`)
  }
  for (const invalid of report.invalid) {
    const first = invalid.diagnostics.find(d => d.severity === 'error')
    rows.push(`| (invalid file) | \`${cell(path(invalid.file))}${first ? `:${first.line}` : ''}\` | ${cell(first ? `${first.code} ${first.message}` : 'invalid')} |`)
  }
  if (rows.length) lines.push('| Test | Where | Failure |', '| --- | --- | --- |', ...rows, '')
  return `${lines.join('\n')}\n`
}
