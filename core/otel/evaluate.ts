import { describeBound, describeExpectations } from './describe.ts'
import { evaluateHermeticity, listed } from './hermeticity.ts'
import { indexSpans } from './span-index.ts'
import { evaluateTraceRule } from './trace-rule.ts'
import type { SpanIndex } from './span-index.ts'
import { evaluateSpanRule, MAX_SPAN_IDS } from './span-rules.ts'
import type { CountBound, RulePath, Span, SpanExpectations, SpanRuleFailure, StatusCode } from './types.ts'
import { formatMs, statusOf } from './values.ts'

/** What the runner knows beyond the spec. */
export interface EvaluationContext {
  /** More hosts inside the test for `no_external_services` (container addresses, aliases). */
  internalHosts?: readonly string[]
}

/** The result of one evaluation: rules checked, their names in the file's order, and the failures. */
export interface SpanEvaluation {
  checked: number
  /** Every rule evaluated, as `describeExpectations` names them. */
  rules: string[]
  failures: SpanRuleFailure[]
}

/**
 * Checks spans against a test's expectations. Pure and cheap (spans are indexed once per call,
 * globs compiled once), since the dev loop calls it on every settle tick. A failure names its
 * rule (`expect.span[checkout.charge].attrs.all`), what was expected, what the spans showed and,
 * for span rules, the closest candidate.
 */
export function evaluateSpanExpectations(spans: readonly Span[], expectations: SpanExpectations, context: EvaluationContext = {}): SpanEvaluation {
  const index = indexSpans(spans)
  const failures: SpanRuleFailure[] = []
  const add = (failure: SpanRuleFailure | undefined): void => {
    if (failure) failures.push(failure)
  }
  for (const rule of expectations.spans) add(evaluateSpanRule(rule, index))
  const { graph, counts, order, status, hermeticity } = expectations
  if (graph) {
    graph.mustInclude.forEach((pair, i) => add(mustInclude(pair, index, [...graph.source, 'must_include', i], `expect.graph.must_include[${i}]`)))
    graph.mustNotCross.forEach((pair, i) => add(mustNotCross(pair, index, [...graph.source, 'must_not_cross', i], `expect.graph.must_not_cross[${i}]`)))
    if (graph.acyclic) add(acyclic(index, [...graph.source, 'acyclic']))
  }
  if (counts) {
    const count = (key: string, path: RulePath, what: string, bound: CountBound | undefined, matched: () => readonly Span[], events = false): void => {
      if (!bound) return
      const counted = matched()
      const n = events ? counted.reduce((sum, s) => sum + s.events.length, 0) : counted.length
      if (withinBound(n, bound)) return
      add({
        rule: `expect.counts.${key}`,
        expected: `${what} ${describeBound(bound)}`,
        actual: `${n}`,
        spanIds: ids(events ? counted.filter(s => s.events.length > 0) : counted),
        source: [...counts.source, ...path],
      })
    }
    count('spans_total', ['spans_total'], 'spans', counts.spansTotal, () => spans)
    count('events_total', ['events_total'], 'span events', counts.eventsTotal, () => spans, true)
    count('errors_total', ['errors_total'], 'spans with status ERROR', counts.errorsTotal, () => spans.filter(s => statusOf(s) === 'error'))
    for (const [glob, bound] of Object.entries(counts.byName ?? {})) {
      count(`by_name[${glob}]`, ['by_name', glob], `spans named ${JSON.stringify(glob)}`, bound, () => index.matching(glob))
    }
  }
  for (const window of expectations.windows) add(windowRule(window, index))
  if (order) {
    order.mustPrecede.forEach(([a, b], i) => add(precedes(a, b, index, `expect.order.must_precede[${i}]`, 'ends before', [...order.source, 'must_precede', i])))
    // "a must follow b" is "b must precede a", reported under the rule as written.
    order.mustFollow.forEach(([a, b], i) => add(precedes(b, a, index, `expect.order.must_follow[${i}]`, 'starts after', [...order.source, 'must_follow', i], true)))
  }
  if (status) {
    if (status.all) add(statusRule('expect.status.all', `at least one span, and every span ${status.all.toUpperCase()}`, spans, status.all, [...status.source, 'all']))
    for (const [glob, code] of Object.entries(status.byName ?? {})) {
      add(statusRule(`expect.status.by_name[${glob}]`, `at least one ${JSON.stringify(glob)} span, and every one ${code.toUpperCase()}`, index.matching(glob), code, [...status.source, 'by_name', glob]))
    }
  }
  if (hermeticity) for (const result of evaluateHermeticity(hermeticity, spans, context.internalHosts ?? [])) add(result.failure)
  expectations.traces?.forEach((trace, i) => add(evaluateTraceRule(trace, index, i)))
  const rules = describeExpectations(expectations).map(r => r.rule)
  return { checked: rules.length, rules, failures }
}

/**
 * Whether a verdict may change from pass to fail as more spans arrive: exact and upper count
 * bounds, forbidden edges, acyclicity, windows (a new outer span), statuses and hermeticity.
 * Such expectations are only judged passing once the spans have settled (the quiet window).
 */
export function hasNegativeChecks(expectations: SpanExpectations): boolean {
  const { graph, counts, status, hermeticity } = expectations
  const capped = (b: CountBound | undefined): boolean => b !== undefined && (b.eq !== undefined || b.lte !== undefined)
  return Boolean(
    (graph && (graph.mustNotCross.length > 0 || graph.acyclic))
    || (counts && (capped(counts.spansTotal) || capped(counts.eventsTotal) || capped(counts.errorsTotal) || Object.values(counts.byName ?? {}).some(capped)))
    || expectations.windows.length > 0
    || expectations.spans.some(rule => rule.count !== undefined)
    || (status && (status.all !== undefined || Object.keys(status.byName ?? {}).length > 0))
    || (hermeticity && (hermeticity.noExternalServices || hermeticity.resourceAttrsMustMatch || hermeticity.spanAttrsForbidKeys)),
  )
}

function withinBound(n: number, bound: CountBound): boolean {
  return (bound.eq === undefined || n === bound.eq) && (bound.gte === undefined || n >= bound.gte) && (bound.lte === undefined || n <= bound.lte)
}

const q = (text: string): string => JSON.stringify(text)
const ids = (spans: readonly Span[]): string[] => spans.slice(0, MAX_SPAN_IDS).map(s => s.spanId)

function mustInclude([parent, child]: [string, string], index: SpanIndex, source: RulePath, rule: string): SpanRuleFailure | undefined {
  const children = index.matching(child)
  const parents = children.map(c => index.parentOf(c))
  const wanted = new Set(index.matching(parent))
  if (parents.some(p => p !== undefined && wanted.has(p))) return undefined
  const expected = `${q(parent)} → ${q(child)}: a direct parent-child edge`
  if (children.length === 0) return { rule, expected, actual: `no span named ${q(child)}`, spanIds: ids(index.matching(parent)), source }
  if (index.matching(parent).length === 0) return { rule, expected, actual: `no span named ${q(parent)}`, spanIds: ids(children), source }
  const seen = [...new Set(parents.map(p => (p ? q(p.name) : '(root)')))]
  return { rule, expected, actual: `${q(child)} spans have the parents ${seen.join(', ')}`, spanIds: ids(children), source }
}

function mustNotCross([a, b]: [string, string], index: SpanIndex, source: RulePath, rule: string): SpanRuleFailure | undefined {
  const as = new Set(index.matching(a))
  const crossing = index.matching(b).flatMap((child) => {
    const parent = index.parentOf(child)
    return parent && as.has(parent) ? [{ parent, child }] : []
  })
  if (crossing.length === 0) return undefined
  return {
    rule,
    expected: `no ${q(a)} span is the direct parent of a ${q(b)} span`,
    actual: listed(crossing.map(e => `${q(e.parent.name)} (${e.parent.spanId}) → ${q(e.child.name)} (${e.child.spanId})`)),
    spanIds: ids(crossing.flatMap(e => [e.parent, e.child])),
    source,
  }
}

function acyclic(index: SpanIndex, source: RulePath): SpanRuleFailure | undefined {
  // Walk each span's parent chain once: 1 = on the current chain, 2 = known to reach a root.
  const state = new Map<Span, 1 | 2>()
  for (const start of index.spans) {
    const chain: Span[] = []
    let span: Span | undefined = start
    while (span && !state.has(span)) {
      state.set(span, 1)
      chain.push(span)
      span = index.parentOf(span)
    }
    if (span && state.get(span) === 1) {
      const cycle = chain.slice(chain.indexOf(span))
      return {
        rule: 'expect.graph.acyclic',
        expected: 'no span is its own ancestor',
        actual: `a cycle of parent ids: ${[...cycle, span].map(s => `${q(s.name)} (${s.spanId})`).join(' → ')}`,
        spanIds: ids(cycle),
        source,
      }
    }
    for (const s of chain) state.set(s, 2)
  }
  return undefined
}

/**
 * Timing tolerance of the window and order rules. SDKs stamp a span's start with a millisecond
 * wall clock and its end as start plus a precise duration (the JS SDK does), so a child can seem
 * to end up to 1 ms after its parent, or a successor to start before its predecessor ends.
 */
export const CLOCK_SLACK_MS = 1

function windowRule(window: SpanExpectations['windows'][number], index: SpanIndex): SpanRuleFailure | undefined {
  const rule = `expect.window[${window.outer}]`
  const expected = `every ${q(window.outer)} span contains a span of each of ${window.contains.map(q).join(', ')}`
  const outers = index.matching(window.outer)
  if (outers.length === 0) return { rule, expected, actual: `no span named ${q(window.outer)}`, spanIds: [], source: window.source }
  const at = (ms: number): string => `+${formatMs(ms - index.originMs)}`
  for (const outer of outers) {
    for (const glob of window.contains) {
      const inner = index.matching(glob).filter(s => s !== outer)
      if (inner.some(s => s.startTimeMs >= outer.startTimeMs - CLOCK_SLACK_MS && s.endTimeMs <= outer.endTimeMs + CLOCK_SLACK_MS)) continue
      const near = inner[0]
      return {
        rule,
        expected,
        actual: `${q(outer.name)} (${outer.spanId}, ${at(outer.startTimeMs)}..${at(outer.endTimeMs)}) contains no ${q(glob)} span${
          near ? `; ${q(near.name)} (${near.spanId}) runs ${at(near.startTimeMs)}..${at(near.endTimeMs)}` : inner.length === 0 ? ` (there is none)` : ''}`,
        spanIds: ids([outer, ...inner]),
        source: window.source,
      }
    }
  }
  return undefined
}

/** Some `first` span ends no later than some `second` span starts (upstream's rule). */
function precedes(first: string, second: string, index: SpanIndex, rule: string, verb: string, source: RulePath, follow = false): SpanRuleFailure | undefined {
  const firsts = index.matching(first)
  const seconds = index.matching(second)
  const [a, b] = follow ? [second, first] : [first, second]
  const expected = `some ${q(a)} span ${verb} some ${q(b)} span ${follow ? 'ends' : 'starts'}`
  if (firsts.length === 0 || seconds.length === 0) {
    const missing = [firsts.length === 0 ? first : undefined, seconds.length === 0 ? second : undefined].filter(x => x !== undefined)
    return { rule, expected, actual: `no span named ${missing.map(q).join(' or ')}`, spanIds: ids([...firsts, ...seconds]), source }
  }
  const earliestEnd = Math.min(...firsts.map(s => s.endTimeMs))
  const latestStart = Math.max(...seconds.map(s => s.startTimeMs))
  if (earliestEnd <= latestStart + CLOCK_SLACK_MS) return undefined
  const at = (ms: number): string => `+${formatMs(ms - index.originMs)}`
  return {
    rule,
    expected,
    actual: `the first ${q(first)} span ends at ${at(earliestEnd)}, after the last ${q(second)} span starts (${at(latestStart)})`,
    spanIds: ids([...firsts, ...seconds]),
    source,
  }
}

// `expected` is worded as describeExpectations words it, so dry-run and failures read alike.
function statusRule(rule: string, expected: string, spans: readonly Span[], code: StatusCode, source: RulePath): SpanRuleFailure | undefined {
  if (spans.length === 0) return { rule, expected, actual: 'no such span', spanIds: [], source }
  const wrong = spans.filter(s => statusOf(s) !== code)
  if (wrong.length === 0) return undefined
  return {
    rule,
    expected,
    actual: `${wrong.length} of ${spans.length} not ${code.toUpperCase()}: ${listed(wrong.map(s => `${q(s.name)} ${statusOf(s).toUpperCase()}${s.status.message ? ` (${s.status.message})` : ''}`))}`,
    closest: { spanId: wrong[0]!.spanId, name: wrong[0]!.name, service: wrong[0]!.service, differences: [`status ${statusOf(wrong[0]!).toUpperCase()}`] },
    spanIds: ids(wrong),
    source,
  }
}
