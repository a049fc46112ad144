import type { Span, SpanVerdict } from '../core/index.ts'
import { formatDuration, formatSpanDuration, spanTree } from '../core/index.ts'
import type { CommandContext } from './context.ts'
import { printable } from './output.ts'

/** Rows of the span tree shown under a failing test; the rest is counted in `… N more`. */
export const SPAN_TREE_LIMIT = 20
/** Failed rules shown in full under a test; the rest are counted. */
export const SPAN_FAILURE_LIMIT = 10
const NAME_WIDTH = 48
const SERVICE_WIDTH = 20

// Cut to a width with an ellipsis, so one long name cannot push every column out of line.
const cut = (text: string, width: number): string => (text.length > width ? `${text.slice(0, width - 1)}…` : text)

/**
 * What a test's span verdict adds to the human report: each failed rule with what was expected,
 * what the spans showed and the closest candidate's differences, then (under a failing test) a
 * compact tree of the run's spans; under a passing test a one-line note. Text from spans is
 * escaped with `printable`: services choose their span names, not the terminal's state.
 */
export function formatSpanVerdict(ctx: CommandContext, verdict: SpanVerdict, testFailed: boolean): string[] {
  const { c } = ctx
  const lines: string[] = []
  const { failures, spans } = verdict
  const held = Math.max(0, verdict.checked - failures.length)
  const services = new Set(spans.map(s => s.service)).size
  const over = `${spans.length} span${spans.length === 1 ? '' : 's'}`
  if (!failures.length) {
    if (verdict.checked) lines.push(`    ${c.dim(`${c.green('✓')} ${held} span rule${held === 1 ? '' : 's'} held over ${over}`)}`)
  }
  else {
    for (const failure of failures.slice(0, SPAN_FAILURE_LIMIT)) {
      lines.push(`    ${c.red('✗')} ${c.bold(printable(failure.rule))}`)
      lines.push(`      ${c.dim('expected')} ${printable(failure.expected)}`)
      lines.push(`      ${c.dim('actual  ')} ${printable(failure.actual)}`)
      const closest = failure.closest
      if (closest) {
        lines.push(`      ${c.dim('closest ')} ${printable(closest.name)} ${c.dim(`in ${printable(closest.service)} (${printable(closest.spanId)})`)}`)
        for (const difference of closest.differences) lines.push(`        ${c.yellow('≠')} ${printable(difference)}`)
      }
    }
    if (failures.length > SPAN_FAILURE_LIMIT) lines.push(`    ${c.dim(`… ${failures.length - SPAN_FAILURE_LIMIT} more span rules failed`)}`)
    lines.push(`    ${c.dim(`${failures.length} of ${verdict.checked} span rule${verdict.checked === 1 ? '' : 's'} failed over ${over}`)}`)
  }
  if (testFailed && spans.length) lines.push(...formatSpanTree(ctx, verdict, services))
  return lines
}

/** The run's spans as an indented tree: name, service, duration, status; spans a failed rule names are marked. */
export function formatSpanTree(ctx: CommandContext, verdict: SpanVerdict, services: number = new Set(verdict.spans.map(s => s.service)).size): string[] {
  const { c } = ctx
  const involved = new Set(verdict.failures.flatMap(f => [...f.spanIds, ...(f.closest ? [f.closest.spanId] : [])]))
  const rows = spanTree(verdict.spans)
  const shown = rows.slice(0, SPAN_TREE_LIMIT)
  const label = (span: Span, depth: number): string => cut(`${'  '.repeat(Math.min(depth, 12))}${printable(span.name)}`, NAME_WIDTH)
  const nameWidth = Math.max(...shown.map(r => label(r.span, r.depth).length))
  const serviceWidth = Math.max(...shown.map(r => cut(printable(r.span.service), SERVICE_WIDTH).length))
  const lines = [`    ${c.dim(`spans: ${rows.length} from ${services} service${services === 1 ? '' : 's'}${verdict.settleMs ? `, settled in ${formatDuration(verdict.settleMs)}` : ''}`)}`]
  for (const { span, depth } of shown) {
    const mark = involved.has(span.spanId) ? c.red('▸') : ' '
    const status = span.status.code === 'error'
      ? c.red(`error${span.status.message ? `: ${cut(printable(span.status.message), 60)}` : ''}`)
      : span.status.code === 'ok' ? c.green('ok') : c.dim('unset')
    const name = label(span, depth).padEnd(nameWidth)
    lines.push(`     ${mark} ${involved.has(span.spanId) ? c.bold(name) : name}  ${c.cyan(cut(printable(span.service), SERVICE_WIDTH).padEnd(serviceWidth))}  ${formatSpanDuration(span.endTimeMs - span.startTimeMs).padStart(7)}  ${status}`)
  }
  if (rows.length > shown.length) {
    const hidden = rows.slice(SPAN_TREE_LIMIT).filter(r => involved.has(r.span.spanId)).length
    lines.push(`       ${c.dim(`… ${rows.length - shown.length} more${hidden ? ` (${hidden} named by a failed rule)` : ''}`)}`)
  }
  return lines
}
