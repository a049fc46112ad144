import type { DevEvents, HotReloadMetrics, TestResult } from '../core/index.ts'
import { formatDuration, truncationNotes } from '../core/index.ts'
import type { CommandContext } from './context.ts'
import { displayPath, formatDiagnostic, printable } from './output.ts'
import { createProgress, formatInvalidFile, formatTestResult } from './run-output.ts'

/** How the dev loop reports: to people, or as NDJSON for tools. */
export interface DevReporter {
  on: { [K in keyof DevEvents]?: (payload: DevEvents[K]) => void }
}

const pct = (rate: number): string => `${Math.round(rate * 100)}%`
const ms = (value: number): string => (value < 10 ? value.toFixed(1) : Math.round(value).toString())

/** One line of phase timings, or the full dashboard with `verbose`. */
export function formatMetrics(ctx: CommandContext, metrics: HotReloadMetrics, verbose: boolean): string {
  const { c } = ctx
  const ran = metrics.tests.some(t => t.status === 'pass' || t.status === 'fail' || t.status === 'error')
  const reusedNote = !ran ? '' : metrics.containerReuseRate === 1 ? ' (reused)' : metrics.containerReuseRate === 0 ? ' (started)' : ''
  if (!verbose) {
    const phases = [
      `detect ${ms(metrics.fileDetectionMs)}`,
      `debounce ${ms(metrics.debounceMs)}`,
      `render ${ms(metrics.templateRenderMs)}`,
      `parse ${ms(metrics.configParseMs)}`,
      `containers ${ms(metrics.containerStartMs)}${reusedNote}`,
      `run ${ms(metrics.testExecutionMs)}`,
      // Only when some test waited for spans: a 0 on every line of a project without [otel] is noise.
      ...(metrics.settleMs ? [`settle ${ms(metrics.settleMs)}`] : []),
      `display ${ms(metrics.resultFormattingMs)}`,
    ].join(' · ')
    return c.dim(`  ${c.bold(`${ms(metrics.totalLatencyMs)}ms`)} ${phases} · cache ${pct(metrics.templateCacheHitRate)}/${pct(metrics.configCacheHitRate)} · reuse ${pct(metrics.containerReuseRate)}\n`)
  }
  const row = (label: string, value: number, note = ''): string => `  ${label.padEnd(18)} ${`${ms(value)}ms`.padStart(8)}${note ? ` ${c.dim(note)}` : ''}`
  return `${[
    c.bold('  Hot reload'),
    row('File detection', metrics.fileDetectionMs),
    row('Debounce', metrics.debounceMs),
    row('Template render', metrics.templateRenderMs),
    row('Config parse', metrics.configParseMs),
    row('Containers', metrics.containerStartMs, reusedNote.trim()),
    row('Test execution', metrics.testExecutionMs),
    // Whenever a test had span expectations, even when its spans were all in before the last step ended (0 ms).
    ...(metrics.settleMs !== undefined ? [row('Span settle', metrics.settleMs, 'waiting for spans after the last step')] : []),
    row('Display', metrics.resultFormattingMs),
    `  ${'Total'.padEnd(18)} ${c.bold(`${ms(metrics.totalLatencyMs)}ms`.padStart(8))} ${c.dim('(change event → results shown)')}`,
    `  Cache: templates ${pct(metrics.templateCacheHitRate)}, configs ${pct(metrics.configCacheHitRate)} hit · containers ${pct(metrics.containerReuseRate)} reused · ${metrics.memoryMb} MB RSS`,
    ...metrics.tests.map(t => c.dim(`  ${t.status.padEnd(10)} ${t.name === undefined ? displayPath(ctx, t.file) : printable(t.name)} (${t.reason})`)),
  ].join('\n')}\n`
}

/** A note for tests slower than the dev budget: what to split. */
export function budgetNote(ctx: CommandContext, result: TestResult, budgetMs: number): string | undefined {
  if (result.durationMs <= budgetMs) return undefined
  const slowest = [...result.timings.steps].sort((a, b) => b.ms - a.ms)[0]
  const starting = result.timings.acquireMs > result.durationMs / 2
  const advice = starting
    ? 'most of it was starting containers: keep service definitions stable between edits so containers are reused'
    : slowest ? `its slowest step is "${printable(slowest.name)}" (${formatDuration(slowest.ms)}): move slow steps into a test file of their own, so edits to the rest rerun fast` : 'split it into smaller test files'
  return ctx.c.yellow(`  note: ${printable(result.name)} took ${formatDuration(result.durationMs)}, over the ${formatDuration(budgetMs)} dev budget; ${advice}\n`)
}

/** Human output: results as they come, a timing line per reload, errors with their location. */
export function humanDevReporter(ctx: CommandContext, options: { verbose: boolean; budgetMs: number; filter?: () => string | undefined }): DevReporter {
  const { c } = ctx
  // Which containers are starting: a live line in a terminal, plain lines in logs.
  const progress = createProgress(ctx)
  let ready = false
  // A reload's header waits for its first shown result: a run pre-empted by a newer save (an
  // editor's first write burst) shows nothing at all, not a header with no result.
  const headers = new Map<number, string>()
  const shown = new Set<number>()
  const header = (id: number): void => {
    const text = headers.get(id)
    headers.delete(id)
    shown.add(id)
    if (text) ctx.stdout(text)
  }
  return {
    on: {
      'test:result': ({ id, result }) => {
        progress.clear()
        header(id)
        ctx.stdout(formatTestResult(ctx, result))
        const note = budgetNote(ctx, result, options.budgetMs)
        if (note) ctx.stdout(note)
      },
      'test:invalid': ({ id, file, diagnostics }) => {
        progress.clear()
        header(id)
        ctx.stdout(formatInvalidFile(ctx, file, diagnostics))
      },
      'test:warnings': ({ id, file, diagnostics }) => {
        if (!diagnostics.length) return
        progress.clear()
        header(id)
        ctx.stdout(`${c.yellow('!')} ${displayPath(ctx, file)} ${c.yellow(`${diagnostics.length} warning${diagnostics.length === 1 ? '' : 's'}`)}\n`)
        for (const d of diagnostics) ctx.stdout(formatDiagnostic(ctx, d).replace(/^(?=.)/gm, '    '))
      },
      'test:removed': ({ file }) => ctx.stdout(c.dim(`- ${displayPath(ctx, file)} removed\n`)),
      'project:reloaded': ({ file }) => ctx.stdout(c.dim(`${displayPath(ctx, file)} reloaded: rerunning every test\n`)),
      'reload:start': ({ id, changed, selected }) => {
        if (!ready) return
        const what = changed.length ? changed.map(p => displayPath(ctx, p)).join(', ') : 'rerun'
        // Filters stick across saves: every reload says they are on.
        const filter = options.filter?.()
        headers.set(id, c.cyan(`\n↻ ${what} → ${selected.length} test${selected.length === 1 ? '' : 's'}`) + (filter ? c.yellow(` (filter: ${filter})`) : '') + '\n')
      },
      'reload:done': ({ id, metrics }) => {
        headers.delete(id)
        if (shown.delete(id) && ready) ctx.stdout(formatMetrics(ctx, metrics, options.verbose))
      },
      'session:ready': ({ tests, invalid, durationMs }) => {
        ready = true
        ctx.stdout(c.bold(`\nready: ${tests} test${tests === 1 ? '' : 's'}${invalid ? `, ${invalid} invalid` : ''} in ${formatDuration(durationMs)}; watching for changes`) + c.dim(ctx.isTTY ? '  (h help · p/t filter · r rerun all · f rerun failed · q quit)\n' : '\n'))
      },
      'session:warning': ({ message }) => ctx.stderr(`${c.yellow('warning')} ${printable(message)}\n`),
      'session:error': ({ message }) => ctx.stderr(`${c.red('error')} ${printable(message)}\n`),
      'pool:event': event => progress.onEvent(event),
    },
  }
}

/** `--reporter ndjson`: one JSON object per line. */
export function ndjsonDevReporter(ctx: CommandContext): DevReporter {
  const line = (value: object): void => ctx.stdout(`${JSON.stringify(value)}\n`)
  return {
    on: {
      'session:ready': ({ tests, invalid, durationMs }) => line({ type: 'ready', tests, invalid, durationMs }),
      'test:result': ({ id, result }) => {
        const failing = result.steps.find(s => s.failure)
        const truncated = truncationNotes(result.steps)
        line({
          type: 'test',
          reload: id,
          file: result.file,
          name: result.name,
          status: result.status,
          durationMs: Math.round(result.durationMs * 10) / 10,
          ...(failing && { failingStep: { name: failing.name, service: failing.service, ...failing.failure } }),
          ...(result.error && { error: result.error }),
          ...(truncated.length && { truncated }),
          ...(result.spans?.failures.length && { spanFailures: result.spans.failures }),
        })
      },
      'test:invalid': ({ id, file, diagnostics }) => {
        for (const d of diagnostics) line({ type: 'error', reload: id, file: d.file, testFile: file, severity: d.severity, code: d.code, line: d.line, column: d.column, message: d.message, hint: d.hint })
      },
      'test:warnings': ({ id, file, diagnostics }) => {
        for (const d of diagnostics) line({ type: 'warning', reload: id, file: d.file, testFile: file, severity: d.severity, code: d.code, line: d.line, column: d.column, message: d.message, hint: d.hint })
      },
      'test:removed': ({ file }) => line({ type: 'removed', file }),
      'project:reloaded': ({ file }) => line({ type: 'project', file }),
      'reload:done': ({ id, changed, selected, metrics }) => line({ type: 'reload', id, changed, selected: selected.map(s => ({ file: s.test, reason: s.reason })), metrics }),
      'session:warning': ({ message }) => line({ type: 'warning', message }),
      'session:error': ({ message }) => line({ type: 'session-error', message }),
    },
  }
}
