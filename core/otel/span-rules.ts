import { closest } from 'fastest-levenshtein'
import { describeSpanRuleParts, spanRuleName } from './describe.ts'
import { matchesGlob } from './glob.ts'
import type { SpanIndex } from './span-index.ts'
import type { Span, SpanRule, SpanRuleFailure } from './types.ts'
import { attributeEquals, durationMs, formatMs, statusOf, stringForm } from './values.ts'

/** At most this many span ids are listed in one failure (the waterfall highlights them). */
export const MAX_SPAN_IDS = 50

/** One key of a span rule the span does not satisfy, with what the span has instead. */
interface Difference { key: string; text: string }

/**
 * `[[expect.span]]`: passes when some span whose name matches satisfies every key. Otherwise
 * the failure names the first key the closest candidate (fewest differing keys) misses.
 */
export function evaluateSpanRule(rule: SpanRule, index: SpanIndex): SpanRuleFailure | undefined {
  const name = spanRuleName(rule)
  const candidates = index.matching(rule.name)
  if (rule.count !== undefined) return countedRule(rule, candidates, index)
  if (candidates.length === 0) {
    const near = index.names.length ? closest(rule.name, index.names) : undefined
    const nearSpan = near === undefined ? undefined : index.matching(near)[0]
    return {
      rule: `${name}.existence`,
      expected: `a span named ${JSON.stringify(rule.name)}`,
      actual: index.spans.length ? `no span name matches among ${index.spans.length} spans (${index.names.length} names)` : 'no spans at all',
      ...(nearSpan && { closest: { spanId: nearSpan.spanId, name: nearSpan.name, service: nearSpan.service, differences: [`name ${JSON.stringify(nearSpan.name)}`] } }),
      spanIds: nearSpan ? [nearSpan.spanId] : [],
      source: rule.source,
    }
  }
  let best: { span: Span; differences: Difference[] } | undefined
  for (const span of candidates) {
    const differences = spanDifferences(rule, span, index)
    if (differences.length === 0) return undefined
    if (!best || differences.length < best.differences.length) best = { span, differences }
  }
  const first = best!.differences[0]!
  const parts = describeSpanRuleParts(rule)
  return {
    rule: `${name}.${first.key}`,
    expected: parts.find(p => p.key === first.key)!.expected,
    actual: candidates.length === 1 ? first.text : `no ${JSON.stringify(rule.name)} span satisfies it (${candidates.length} candidates); the closest has ${first.text}`,
    closest: { spanId: best!.span.spanId, name: best!.span.name, service: best!.span.service, differences: best!.differences.map(d => d.text) },
    spanIds: candidates.slice(0, MAX_SPAN_IDS).map(s => s.spanId),
    source: rule.source,
  }
}

/** A rule with a count: exactly that many spans of the name satisfy every other part of it. */
function countedRule(rule: SpanRule, candidates: readonly Span[], index: SpanIndex): SpanRuleFailure | undefined {
  const satisfying = candidates.filter(span => spanDifferences(rule, span, index).length === 0)
  if (satisfying.length === rule.count) return undefined
  const parts = describeSpanRuleParts(rule).map(p => p.expected)
  return {
    rule: `${spanRuleName(rule)}.count`,
    expected: `exactly ${rule.count} ${JSON.stringify(rule.name)} span${rule.count === 1 ? '' : 's'}${parts.length ? ` with ${parts.join(', ')}` : ''}`,
    actual: `${satisfying.length} (of ${candidates.length} named so)`,
    spanIds: (satisfying.length ? satisfying : candidates).slice(0, MAX_SPAN_IDS).map(s => s.spanId),
    source: [...rule.source, 'count'],
  }
}

function spanDifferences(rule: SpanRule, span: Span, index: SpanIndex): Difference[] {
  const out: Difference[] = []
  if (rule.parent !== undefined) {
    const parent = index.parentOf(span)
    if (!parent || !matchesGlob(rule.parent, parent.name)) {
      out.push({
        key: 'parent',
        text: parent ? `parent ${JSON.stringify(parent.name)}` : span.parentSpanId === undefined ? 'no parent (a root span)' : `parent ${span.parentSpanId}, which is not among the spans`,
      })
    }
  }
  if (rule.kind !== undefined && span.kind !== rule.kind) out.push({ key: 'kind', text: `kind ${span.kind}` })
  if (rule.attrsAll) {
    const wrong = Object.entries(rule.attrsAll).filter(([k, v]) => !attributeEquals(span.attributes[k], v))
    if (wrong.length) out.push({ key: 'attrs.all', text: `attrs ${wrong.map(([k]) => describeAttribute(span, k)).join(', ')}` })
  }
  if (rule.attrsAny) {
    const entries = Object.entries(rule.attrsAny)
    if (!entries.some(([k, v]) => attributeEquals(span.attributes[k], v))) {
      out.push({ key: 'attrs.any', text: `attrs ${entries.map(([k]) => describeAttribute(span, k)).join(', ')}` })
    }
  }
  if (rule.attrsPresent) {
    const missing = rule.attrsPresent.filter(k => !(k in span.attributes))
    if (missing.length) out.push({ key: 'attrs.present', text: `no attribute ${missing.join(', ')}` })
  }
  if (rule.eventsAll || rule.eventsAny) {
    const names = new Set(span.events.map(e => e.name))
    const shown = names.size ? `events [${[...names].join(', ')}]` : 'no events'
    const missing = (rule.eventsAll ?? []).filter(e => !names.has(e))
    if (missing.length) out.push({ key: 'events.all', text: `${shown}, missing ${missing.join(', ')}` })
    if (rule.eventsAny && !rule.eventsAny.some(e => names.has(e))) out.push({ key: 'events.any', text: shown })
  }
  if (rule.status !== undefined && statusOf(span) !== rule.status) {
    out.push({ key: 'status', text: `status ${statusOf(span).toUpperCase()}${span.status.message ? ` (${span.status.message})` : ''}` })
  }
  if (rule.durationMs) {
    const ms = durationMs(span)
    const { min, max } = rule.durationMs
    if ((min !== undefined && ms < min) || (max !== undefined && ms > max)) out.push({ key: 'duration_ms', text: `duration ${formatMs(ms)}` })
  }
  return out
}

function describeAttribute(span: Span, key: string): string {
  return key in span.attributes ? `${key}=${JSON.stringify(stringForm(span.attributes[key]))}` : `${key} missing`
}
