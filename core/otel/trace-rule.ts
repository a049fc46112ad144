import { matchesGlob } from './glob.ts'
import type { SpanIndex } from './span-index.ts'
import type { Span, SpanExpectations, SpanRuleFailure } from './types.ts'

/** As many span ids as a span rule's failure highlights (span-rules.ts imports describe.ts, which imports this). */
const MAX_SPAN_IDS = 50

type TraceRule = NonNullable<SpanExpectations['traces']>[number]

/** The name a trace rule's failures and `dry-run` use. */
export const traceRuleName = (index: number): string => `otel_validation.expected_traces[${index}]`

/** What a trace rule asks for, in words. */
export function describeTraceRule(rule: TraceRule): string {
  const edges = rule.parentChild.map(([p, c]) => `${JSON.stringify(p)} → ${JSON.stringify(c)}`)
  return `one trace with spans named ${rule.spanNames.map(n => JSON.stringify(n)).join(', ')}${edges.length ? ` and the edges ${edges.join(', ')}` : ''}`
}

/**
 * Upstream's expected trace: some trace holds a span of each name and, within it, each
 * `[parent, child]` as a direct edge. A failure names what the closest trace lacks.
 */
export function evaluateTraceRule(rule: TraceRule, index: SpanIndex, position: number): SpanRuleFailure | undefined {
  const byTrace = new Map<string, Span[]>()
  for (const span of index.spans) {
    let list = byTrace.get(span.traceId)
    if (!list) byTrace.set(span.traceId, list = [])
    list.push(span)
  }
  let closest: { traceId: string; spans: Span[]; missing: string[] } | undefined
  for (const [traceId, spans] of byTrace) {
    const missing = [
      ...rule.spanNames.filter(name => !spans.some(s => matchesGlob(name, s.name))).map(name => `a span named ${JSON.stringify(name)}`),
      ...rule.parentChild.filter(([parent, child]) => !spans.some((s) => {
        const up = matchesGlob(child, s.name) ? index.parentOf(s) : undefined
        return up !== undefined && matchesGlob(parent, up.name)
      })).map(([p, c]) => `the edge ${JSON.stringify(p)} → ${JSON.stringify(c)}`),
    ]
    if (missing.length === 0) return undefined
    if (!closest || missing.length < closest.missing.length) closest = { traceId, spans, missing }
  }
  return {
    rule: traceRuleName(position),
    expected: describeTraceRule(rule),
    actual: closest ? `no trace holds them all; the closest, trace ${closest.traceId.slice(0, 8)}… (${closest.spans.length} spans), lacks ${closest.missing.join(', ')}` : 'no spans',
    spanIds: (closest?.spans ?? []).slice(0, MAX_SPAN_IDS).map(s => s.spanId),
    source: rule.source,
  }
}
