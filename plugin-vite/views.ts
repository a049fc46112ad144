import { isAbsolute, relative } from 'node:path'
import type { Diagnostic, HotReloadMetrics, RulePath, SpanVerdict, TestFileState, TestResult } from '../core/index.ts'
import { locateKeyPath, printable, spanTree, truncationNotes } from '../core/index.ts'
import type { Problem, ReloadView, ResultsPayload, SourceLocation, SpanBar, SpanRulesView, TestView } from './protocol.ts'
import { SPAN_BARS_LIMIT } from './protocol.ts'

const problem = (d: Diagnostic): Problem => ({ code: d.code, message: d.message, hint: d.hint, location: { file: d.file, line: d.line, column: d.column } })

/** A loaded file's warnings, for the view; `undefined` when there are none. */
export function warningsOf(diagnostics: readonly Diagnostic[] | undefined): Problem[] | undefined {
  const warnings = (diagnostics ?? []).filter(d => d.severity === 'warning').map(problem)
  return warnings.length ? warnings : undefined
}

/** The browser's view of one finished test, with the failing step's place in the file. */
export async function resultView(root: string, result: TestResult, state: TestFileState | undefined): Promise<TestView> {
  const view: TestView = { file: result.file, relative: relative(root, result.file), name: result.name, status: result.status, durationMs: Math.round(result.durationMs), warnings: warningsOf(state?.diagnostics) }
  const truncated = truncationNotes(result.steps)
  if (truncated.length) view.truncated = truncated
  if (result.error) view.failure = { expectation: result.error.code ?? 'setup', message: result.error.message, excerpt: result.error.hint ?? '' }
  const index = result.steps.findIndex(s => s.failure)
  const failing = result.steps[index]
  if (failing?.failure) {
    const spec = state?.spec
    // The run located the failing key; a result from elsewhere falls back to the step's table.
    // Entries after the steps are the judged [assertions]: located at their key.
    const source = spec && index >= spec.steps.length ? spec.assertions?.find(a => a.path.join('.') === failing.name)?.path : spec?.steps[index]?.source
    const location = failing.failure.location
      ? { file: result.file, ...failing.failure.location }
      : source && state?.toml ? { file: result.file, ...await locateKeyPath(result.file, state.toml, source) } : undefined
    view.failure = { step: failing.name, expectation: failing.failure.expectation, message: failing.failure.message, excerpt: failing.failure.excerpt, location }
  }
  if (result.spans) Object.assign(view, await spansView(result.spans, async source => (state?.toml ? { file: result.file, ...await locateKeyPath(result.file, state.toml, source) } : undefined)))
  return view
}

/**
 * A verdict as the waterfall draws it: spans in tree order with times relative to the first
 * span's start, those a failed rule names highlighted, and each failed rule located in the file.
 */
export async function spansView(verdict: SpanVerdict, locate: (source: RulePath) => Promise<SourceLocation | undefined>): Promise<{ spans: SpanBar[]; spanRules: SpanRulesView }> {
  const involved = new Set(verdict.failures.flatMap(f => [...f.spanIds, ...(f.closest ? [f.closest.spanId] : [])]))
  const origin = Math.min(...verdict.spans.map(s => s.startTimeMs))
  const ids = new Set(verdict.spans.map(s => s.spanId))
  // Rounded to µs: more digits are noise on the wire.
  const round = (ms: number): number => Math.round(ms * 1000) / 1000
  const spans = spanTree(verdict.spans).slice(0, SPAN_BARS_LIMIT).map(({ span, depth }): SpanBar => ({
    id: span.spanId,
    ...(span.parentSpanId !== undefined && ids.has(span.parentSpanId) && { parent: span.parentSpanId }),
    depth,
    // Control characters would be invisible boxes in the page: shown escaped, as in the terminal.
    name: printable(span.name),
    service: printable(span.service),
    startMs: round(span.startTimeMs - origin),
    durationMs: round(Math.max(0, span.endTimeMs - span.startTimeMs)),
    status: span.status.code,
    highlighted: involved.has(span.spanId),
  }))
  const failures = await Promise.all(verdict.failures.map(async f => ({
    rule: f.rule,
    expected: f.expected,
    actual: f.actual,
    ...(f.closest && { closest: f.closest }),
    spanIds: f.spanIds,
    // A rule whose key path cannot be found is still shown, without a link.
    location: f.source.length ? await locate(f.source).catch(() => undefined) : undefined,
  })))
  return { spans, spanRules: { checked: verdict.checked, spans: verdict.spans.length, settleMs: Math.round(verdict.settleMs), failures } }
}

/** The browser's view of a file that does not load. */
export function invalidView(root: string, file: string, diagnostics: readonly Diagnostic[], name?: string): TestView {
  return {
    file,
    relative: relative(root, file),
    name: name ?? relative(root, file),
    status: 'invalid',
    problems: diagnostics.filter(d => d.severity === 'error').map(problem),
    warnings: warningsOf(diagnostics),
  }
}

/** The last reload's timings, as the view lists them. */
export function reloadView(id: number, changed: readonly string[], metrics: HotReloadMetrics, root: string): ReloadView {
  return {
    id,
    changed: changed.map(p => relative(root, p)),
    totalLatencyMs: metrics.totalLatencyMs,
    phases: [
      ['detect', metrics.fileDetectionMs],
      ['debounce', metrics.debounceMs],
      ['render', metrics.templateRenderMs],
      ['parse', metrics.configParseMs],
      ['containers', metrics.containerStartMs],
      ['run', metrics.testExecutionMs],
      // Only when some test waited for spans, as in `clnrm dev`'s timing line.
      ...(metrics.settleMs ? [['settle', metrics.settleMs]] : []),
      ['display', metrics.resultFormattingMs],
    ].map(([name, ms]) => ({ name: name as string, ms: ms as number })),
    templateCacheHitRate: metrics.templateCacheHitRate,
    configCacheHitRate: metrics.configCacheHitRate,
    containerReuseRate: metrics.containerReuseRate,
    // Reasons name the path that changed (`mounts /abs/dir`): shown relative to the root, as files are.
    tests: metrics.tests.map(t => ({ relative: relative(root, t.file), reason: t.reason.replace(/^(includes|watches|mounts) (.+)$/, (all, verb: string, path: string) => (isAbsolute(path) ? `${verb} ${relative(root, path) || '.'}` : all)), status: t.status })),
  }
}

/** Everything the view shows, sorted by file. */
export function snapshot(tests: ReadonlyMap<string, TestView>, lastReload: ReloadView | undefined, ready: boolean): ResultsPayload {
  const list = [...tests.values()].sort((a, b) => a.relative.localeCompare(b.relative))
  return {
    tests: list,
    counts: {
      pass: list.filter(t => t.status === 'pass').length,
      fail: list.filter(t => t.status === 'fail' || t.status === 'error' || t.status === 'invalid').length,
      running: list.filter(t => t.status === 'running').length,
      warned: list.filter(t => t.warnings?.length).length,
    },
    lastReload,
    ready,
  }
}
