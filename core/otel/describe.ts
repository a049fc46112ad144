import type { CountBound, RulePath, SpanExpectations, SpanRule } from './types.ts'
import { describeTraceRule, traceRuleName } from './trace-rule.ts'

/** One declared rule: its name (as failures name it) and what it asks for, in words. */
export interface DescribedRule {
  rule: string
  expected: string
  source: RulePath
}

const quote = (text: string): string => JSON.stringify(text)
const map = (attrs: Record<string, string>): string => `{ ${Object.entries(attrs).map(([k, v]) => `${k}=${quote(v)}`).join(', ')} }`

/** `= 1`, `≥ 2`, `≤ 10`, `2..10`. */
export function describeBound(bound: CountBound): string {
  if (bound.eq !== undefined) return `= ${bound.eq}`
  if (bound.gte !== undefined && bound.lte !== undefined) return `${bound.gte}..${bound.lte}`
  if (bound.gte !== undefined) return `≥ ${bound.gte}`
  return `≤ ${bound.lte}`
}

/** The parts of a span rule, keyed by the name a failure of that part carries. */
export function describeSpanRuleParts(rule: SpanRule): Array<{ key: string; expected: string }> {
  const parts: Array<{ key: string; expected: string }> = []
  if (rule.parent !== undefined) parts.push({ key: 'parent', expected: `parent ${quote(rule.parent)}` })
  if (rule.kind !== undefined) parts.push({ key: 'kind', expected: `kind ${rule.kind}` })
  if (rule.attrsAll) parts.push({ key: 'attrs.all', expected: `attrs.all ${map(rule.attrsAll)}` })
  if (rule.attrsAny) parts.push({ key: 'attrs.any', expected: `attrs.any ${map(rule.attrsAny)}` })
  if (rule.attrsPresent) parts.push({ key: 'attrs.present', expected: `attributes ${rule.attrsPresent.join(', ')} present` })
  if (rule.eventsAll) parts.push({ key: 'events.all', expected: `events.all [${rule.eventsAll.join(', ')}]` })
  if (rule.eventsAny) parts.push({ key: 'events.any', expected: `events.any [${rule.eventsAny.join(', ')}]` })
  if (rule.status !== undefined) parts.push({ key: 'status', expected: `status ${rule.status.toUpperCase()}` })
  if (rule.durationMs) {
    const { min, max } = rule.durationMs
    parts.push({ key: 'duration_ms', expected: `duration ${min !== undefined && max !== undefined ? `${min}..${max}` : min !== undefined ? `≥ ${min}` : `≤ ${max}`} ms` })
  }
  return parts
}

/** The name a span rule's failures start with: `expect.span[checkout.charge]`. */
export const spanRuleName = (rule: SpanRule): string => `expect.span[${rule.name}]`

/**
 * Every rule a test declares, in the file's order, with the names failures use. `dry-run`
 * lists these, and the evaluator counts and names its checks by them, so the two never differ.
 */
export function describeExpectations(expect: SpanExpectations): DescribedRule[] {
  const rules: DescribedRule[] = []
  for (const rule of expect.spans) {
    const parts = describeSpanRuleParts(rule).map(p => p.expected)
    const subject = rule.count === undefined ? 'some span' : `exactly ${rule.count} span${rule.count === 1 ? '' : 's'}`
    rules.push({ rule: spanRuleName(rule), expected: `${subject} named ${quote(rule.name)}${parts.length ? ` with ${parts.join(', ')}` : ''}`, source: rule.source })
  }
  const { graph, counts, order, status, hermeticity } = expect
  if (graph) {
    graph.mustInclude.forEach(([parent, child], i) => rules.push({ rule: `expect.graph.must_include[${i}]`, expected: `${quote(parent)} → ${quote(child)}: a direct parent-child edge`, source: [...graph.source, 'must_include', i] }))
    graph.mustNotCross.forEach(([a, b], i) => rules.push({ rule: `expect.graph.must_not_cross[${i}]`, expected: `no ${quote(a)} span is the direct parent of a ${quote(b)} span`, source: [...graph.source, 'must_not_cross', i] }))
    if (graph.acyclic) rules.push({ rule: 'expect.graph.acyclic', expected: 'no span is its own ancestor', source: [...graph.source, 'acyclic'] })
  }
  if (counts) {
    const add = (key: string, what: string, bound: CountBound | undefined, path: RulePath): void => {
      if (bound) rules.push({ rule: `expect.counts.${key}`, expected: `${what} ${describeBound(bound)}`, source: path })
    }
    add('spans_total', 'spans', counts.spansTotal, [...counts.source, 'spans_total'])
    add('events_total', 'span events', counts.eventsTotal, [...counts.source, 'events_total'])
    add('errors_total', 'spans with status ERROR', counts.errorsTotal, [...counts.source, 'errors_total'])
    for (const [name, bound] of Object.entries(counts.byName ?? {})) add(`by_name[${name}]`, `spans named ${quote(name)}`, bound, [...counts.source, 'by_name', name])
  }
  for (const window of expect.windows) {
    rules.push({ rule: `expect.window[${window.outer}]`, expected: `every ${quote(window.outer)} span contains a span of each of ${window.contains.map(quote).join(', ')}`, source: window.source })
  }
  if (order) {
    order.mustPrecede.forEach(([a, b], i) => rules.push({ rule: `expect.order.must_precede[${i}]`, expected: `some ${quote(a)} span ends before some ${quote(b)} span starts`, source: [...order.source, 'must_precede', i] }))
    order.mustFollow.forEach(([a, b], i) => rules.push({ rule: `expect.order.must_follow[${i}]`, expected: `some ${quote(a)} span starts after some ${quote(b)} span ends`, source: [...order.source, 'must_follow', i] }))
  }
  if (status) {
    if (status.all) rules.push({ rule: 'expect.status.all', expected: `at least one span, and every span ${status.all.toUpperCase()}`, source: [...status.source, 'all'] })
    for (const [name, code] of Object.entries(status.byName ?? {})) rules.push({ rule: `expect.status.by_name[${name}]`, expected: `at least one ${quote(name)} span, and every one ${code.toUpperCase()}`, source: [...status.source, 'by_name', name] })
  }
  if (hermeticity) {
    if (hermeticity.noExternalServices) {
      const hosts = ['localhost', ...(hermeticity.internalHosts ?? [])]
      rules.push({ rule: 'expect.hermeticity.no_external_services', expected: `no span reaches a host other than ${hosts.join(', ')}`, source: [...hermeticity.source, 'no_external_services'] })
    }
    if (hermeticity.resourceAttrsMustMatch) rules.push({ rule: 'expect.hermeticity.resource_attrs.must_match', expected: `every resource has ${map(hermeticity.resourceAttrsMustMatch)}`, source: [...hermeticity.source, 'resource_attrs', 'must_match'] })
    if (hermeticity.spanAttrsForbidKeys) rules.push({ rule: 'expect.hermeticity.span_attrs.forbid_keys', expected: `no span has any of the attributes ${hermeticity.spanAttrsForbidKeys.join(', ')}`, source: [...hermeticity.source, 'span_attrs', 'forbid_keys'] })
  }
  expect.traces?.forEach((trace, i) => rules.push({ rule: traceRuleName(i), expected: describeTraceRule(trace), source: trace.source }))
  return rules
}
