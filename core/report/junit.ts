import type { SpanVerdict } from '../otel/types.ts'
import type { RunReport } from './json.ts'
import type { ReportOptions } from './location.ts'
import { reportPath } from './location.ts'

// XML 1.0 forbids most control characters even when escaped.
// eslint-disable-next-line no-control-regex
const INVALID_XML_RE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g

/** Escapes text for XML attributes and content. */
export function escapeXml(text: string): string {
  return text.replace(INVALID_XML_RE, '').replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\'': '&apos;' })[c]!)
}

const seconds = (ms: number): string => (ms / 1000).toFixed(3)

/**
 * JUnit XML: one `<testsuite>` per test file, one `<testcase>` per step and per span rule. Invalid files and tests
 * that could not run become `<error>`s, tests that `--fail-fast` cancelled or never started a
 * `<skipped>` case, so the file is valid and complete even when things fail.
 */
export function formatJunitReport(report: RunReport, options: string | ReportOptions): string {
  const root = typeof options === 'string' ? options : options.root
  const relative = (from: string, file: string): string => reportPath(file, from)
  const { summary } = report
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="clnrm" tests="${summary.total}" failures="${summary.failed}" errors="${summary.errors + summary.invalid}" skipped="${summary.skipped}" time="${seconds(summary.durationMs)}">`,
  ]
  for (const test of report.tests) {
    const file = escapeXml(relative(root, test.file))
    const failures = test.steps.filter(s => s.status === 'fail').length
    const skipped = test.steps.filter(s => s.status === 'skipped').length
    const errors = test.status === 'error' ? 1 : 0
    const rules = test.spans ? spanRuleCases(test.spans, escapeXml(test.name), file) : { cases: [], tests: 0, failures: 0 }
    lines.push(`  <testsuite name="${escapeXml(test.name)}" file="${file}" tests="${Math.max(test.steps.length, errors) + rules.tests}" failures="${failures + rules.failures}" errors="${errors}" skipped="${skipped}" time="${seconds(test.durationMs)}">`)
    if (test.error) {
      lines.push(`    <testcase name="(setup)" classname="${escapeXml(test.name)}" file="${file}" time="${seconds(test.timings.acquireMs)}">`)
      lines.push(`      <error message="${escapeXml(test.error.message)}" type="${escapeXml(test.error.code ?? 'error')}">${escapeXml(test.error.hint ?? '')}</error>`)
      lines.push('    </testcase>')
    }
    for (const step of test.steps) {
      // `line`: the failing key's line (GitLab and other CI link a failure to it).
      const line = step.failure?.location ? ` line="${step.failure.location.line}"` : ''
      lines.push(`    <testcase name="${escapeXml(step.name)}" classname="${escapeXml(test.name)}" file="${file}"${line} time="${seconds(step.durationMs)}">`)
      if (step.description) lines.push(`      <properties><property name="description" value="${escapeXml(step.description)}"/></properties>`)
      if (step.status === 'skipped') lines.push(`      <skipped message="${step.filtered ? 'filtered out by -t' : 'an earlier step failed'}"/>`)
      if (step.failure) lines.push(`      <failure message="${escapeXml(`${step.failure.expectation}: ${step.failure.message}`)}" type="${escapeXml(step.failure.expectation.split(' ')[0]!)}">${escapeXml(step.failure.excerpt)}</failure>`)
      if (step.stdout) lines.push(`      <system-out>${escapeXml(step.stdout)}</system-out>`)
      if (step.stderr) lines.push(`      <system-err>${escapeXml(step.stderr)}</system-err>`)
      lines.push('    </testcase>')
    }
    lines.push(...rules.cases)
    lines.push('  </testsuite>')
  }
  for (const invalid of report.invalid) {
    const file = escapeXml(relative(root, invalid.file))
    const first = invalid.diagnostics.find(d => d.severity === 'error')
    lines.push(`  <testsuite name="${file}" file="${file}" tests="1" failures="0" errors="1" skipped="0" time="0">`)
    lines.push(`    <testcase name="(load)" classname="${file}" file="${file}" time="0">`)
    lines.push(`      <error message="${escapeXml(first ? `${first.line}:${first.column} ${first.message}` : 'invalid')}" type="${escapeXml(first?.code ?? 'invalid')}">${escapeXml(invalid.diagnostics.map(d => `${d.line}:${d.column} ${d.code} ${d.message}`).join('\n'))}</error>`)
    lines.push('    </testcase>')
    lines.push('  </testsuite>')
  }
  for (const skipped of report.skipped) {
    const file = escapeXml(relative(root, skipped.file))
    const name = escapeXml(skipped.name ?? relative(root, skipped.file))
    lines.push(`  <testsuite name="${name}" file="${file}" tests="1" failures="0" errors="0" skipped="1" time="0">`)
    lines.push(`    <testcase name="(not run)" classname="${name}" file="${file}" time="0">`)
    lines.push(`      <skipped message="${escapeXml(skipped.message)}"/>`)
    lines.push('    </testcase>')
    lines.push('  </testsuite>')
  }
  lines.push('</testsuites>')
  return `${lines.join('\n')}\n`
}

/**
 * A test's span rules as `<testcase>`s of its suite, named by the rule (`expect.span[x].attrs.all`),
 * so CI lists them beside the steps: a failed rule carries expected, actual, the closest candidate
 * and the spans involved; rules that held pass (by name when the verdict lists them, else counted
 * in one case).
 */
function spanRuleCases(verdict: SpanVerdict, classname: string, file: string): { cases: string[]; tests: number; failures: number } {
  const cases: string[] = []
  const byId = new Map(verdict.spans.map(s => [s.spanId, s]))
  const describe = (id: string): string => {
    const span = byId.get(id)
    return span ? `${span.name} (${span.service}, ${span.spanId}, ${(span.endTimeMs - span.startTimeMs).toFixed(1)}ms, ${span.status.code})` : id
  }
  for (const failure of verdict.failures) {
    const body = [
      `expected: ${failure.expected}`,
      `actual: ${failure.actual}`,
      ...(failure.closest ? [`closest: ${failure.closest.name} (${failure.closest.service}, ${failure.closest.spanId})`, ...failure.closest.differences.map(d => `  - ${d}`)] : []),
      ...(failure.spanIds.length ? ['spans:', ...failure.spanIds.map(id => `  ${describe(id)}`)] : []),
    ].join('\n')
    cases.push(`    <testcase name="${escapeXml(failure.rule)}" classname="${classname}" file="${file}" time="0">`)
    cases.push(`      <failure message="${escapeXml(`expected ${failure.expected}; got ${failure.actual}`)}" type="span-rule">${escapeXml(body)}</failure>`)
    cases.push('    </testcase>')
  }
  // `rules` names each rule once (`expect.span[checkout.charge]`); its failure may name the key
  // that failed (`expect.span[checkout.charge].attrs.all`). Each failure accounts for one rule.
  const unmatched = verdict.failures.map(f => f.rule)
  const held: string[] = []
  for (const rule of verdict.rules ?? []) {
    const index = unmatched.findIndex(f => f === rule || f.startsWith(`${rule}.`))
    if (index === -1) held.push(rule)
    else unmatched.splice(index, 1)
  }
  for (const rule of held) cases.push(`    <testcase name="${escapeXml(rule)}" classname="${classname}" file="${file}" time="0"/>`)
  const uncounted = verdict.checked - verdict.failures.length - held.length
  const summarized = !verdict.rules && uncounted > 0
  if (summarized) cases.push(`    <testcase name="${escapeXml(`span rules held (${uncounted})`)}" classname="${classname}" file="${file}" time="0"/>`)
  return { cases, tests: verdict.failures.length + held.length + (summarized ? 1 : 0), failures: verdict.failures.length }
}
