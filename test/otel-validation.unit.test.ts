import { describe, expect, it } from 'vitest'
import { evaluateSpanExpectations } from '../core/index.ts'
import type { Span, SpanExpectations } from '../core/index.ts'
import { normalizeOtelValidation } from '../core/format/otel-validation.ts'
import type { PendingDiagnostic } from '../core/format/diagnostics.ts'

// [otel_validation] in-process: what its keys map onto, and the trace rule on hand-built spans
// (the spawned CLI runs it on real spans in file-tables.test.ts).

const T0 = 1_764_000_000_000
function span(trace: string, id: string, name: string, parent?: string): Span {
  return {
    traceId: trace.repeat(32), spanId: id.padStart(16, '0'), ...(parent && { parentSpanId: parent.padStart(16, '0') }), name, kind: 'internal',
    startTimeMs: T0, endTimeMs: T0 + 5, attributes: {}, events: [], status: { code: 'unset' }, resource: { 'service.name': 's' }, service: 's', source: 'otlp', receivedAt: 0,
  }
}
const traceRule = (spanNames: string[], parentChild: Array<[string, string]> = []): SpanExpectations =>
  ({ spans: [], windows: [], traces: [{ spanNames, parentChild, source: ['otel_validation', 'expected_traces', 0] }] })
const failures = (spans: Span[], rule: SpanExpectations) => evaluateSpanExpectations(spans, rule).failures

describe('otel_validation.expected_traces', () => {
  it('passes only when one trace holds every name; names spread over two traces fail, naming what the closest lacks', () => {
    const spread = [span('a', '1', 'job'), span('b', '2', 'job.step')]
    expect(failures(spread, traceRule(['job', 'job.step']))).toMatchObject([{ rule: 'otel_validation.expected_traces[0]', actual: expect.stringContaining('lacks a span named "job.step"') }])
    const together = [span('a', '1', 'job'), span('a', '2', 'job.step', '1')]
    expect(failures(together, traceRule(['job', 'job.*']))).toEqual([])
    expect(failures([], traceRule(['job']))).toMatchObject([{ actual: 'no spans' }])
  })

  it('checks parent_child as a direct edge within the trace', () => {
    const flat = [span('a', '1', 'job'), span('a', '2', 'job.step')]
    expect(failures(flat, traceRule(['job', 'job.step'], [['job', 'job.step']]))).toMatchObject([{ actual: expect.stringContaining('lacks the edge "job" → "job.step"') }])
    const nested = [span('a', '1', 'job'), span('a', '2', 'job.step', '1')]
    expect(failures(nested, traceRule(['job'], [['job', 'job.step']]))).toEqual([])
  })
})

describe('otel_validation.expected_spans count', () => {
  // Upstream counts spans of a name *with* the entry's attributes: one name, a count per service.
  const counted = (spans: Span[]) => {
    const problems: string[] = []
    const expectations = normalizeOtelValidation({
      enabled: true,
      expected_spans: [
        { name: 'op', count: 2, attributes: { 'service.name': 'a' } },
        { name: 'op', count: 1, attributes: { 'service.name': 'b' } },
      ],
    }, undefined, [], code => void problems.push(code))
    return { problems, failures: failures(spans, expectations!) }
  }
  const op = (id: string, service: string): Span => ({ ...span('a', id, 'op'), attributes: { 'service.name': service } })

  it('checks each count against the spans with its attributes, not against every span of the name', () => {
    expect(counted([op('1', 'a'), op('2', 'a'), op('3', 'b')])).toEqual({ problems: [], failures: [] })
    expect(counted([op('1', 'a'), op('3', 'b'), op('4', 'b')]).failures).toMatchObject([
      { rule: 'expect.span[op].count', expected: expect.stringContaining('exactly 2 "op" spans'), actual: '1 (of 3 named so)', source: ['otel_validation', 'expected_spans', 0, 'count'] },
      { rule: 'expect.span[op].count', expected: expect.stringContaining('exactly 1 "op" span'), actual: '2 (of 3 named so)', source: ['otel_validation', 'expected_spans', 1, 'count'] },
    ])
  })
})

describe('normalizeOtelValidation', () => {
  const run = (raw: Record<string, unknown>, declared?: Record<string, unknown>) => {
    const out: PendingDiagnostic[] = []
    const expectations = normalizeOtelValidation(raw, declared, [], (code, message, path) => void out.push({ code, message, path, severity: 'error', target: 'value' }))
    return { expectations, problems: out.map(d => [d.code, d.path.join('.')]) }
  }

  it('maps expected_spans, expect_* and their sources onto the span checks', () => {
    const { expectations, problems } = run({
      enabled: true,
      expected_spans: [{ name: 'a', attributes: { k: 'v' }, min_duration_ms: 1, max_duration_ms: 5, count: 2 }],
      expect_graph: { must_include: [['a', 'b']] },
      expect_hermeticity: { span_attrs_forbid_keys: ['net.peer.name'] },
    })
    expect(problems).toEqual([])
    expect(expectations!.spans).toEqual([{ name: 'a', attrsAll: { k: 'v' }, durationMs: { min: 1, max: 5 }, count: 2, source: ['otel_validation', 'expected_spans', 0] }])
    expect(expectations!.counts).toBeUndefined()
    expect(expectations!.graph).toMatchObject({ mustInclude: [['a', 'b']], source: ['otel_validation', 'expect_graph'] })
    expect(expectations!.hermeticity).toMatchObject({ spanAttrsForbidKeys: ['net.peer.name'], source: ['otel_validation', 'expect_hermeticity'] })
  })

  it('reports what would go unchecked or twice', () => {
    expect(run({ enabled: true }).problems).toEqual([['CLNRM_MISSING_KEY', 'otel_validation']])
    expect(run({ enabled: true, validate_spans: false, expected_spans: [{ name: 'a' }] }).problems).toEqual([['CLNRM_CONFLICTING_KEYS', 'otel_validation.validate_spans']])
    expect(run({ enabled: true, expect_order: { must_precede: [['a', 'b']] } }, { order: {} }).problems).toEqual([['CLNRM_CONFLICTING_KEYS', 'otel_validation.expect_order']])
    expect(run({ enabled: true, expected_traces: [{ span_names: ['a'], complete: false }] }).problems).toEqual([['CLNRM_NOT_SUPPORTED', 'otel_validation.expected_traces.0.complete']])
    expect(run({ enabled: true, expect_counts: { spans_total: { gte: 3, lte: 1 } } }).problems).toEqual([['CLNRM_INVALID_VALUE', 'otel_validation.expect_counts.spans_total']])
  })
})

describe('expected_spans.required_attributes', () => {
  it('passes when the span carries each key with any value, and names the missing ones', () => {
    const expectations = normalizeOtelValidation({ enabled: true, expected_spans: [{ name: 'job', required_attributes: { attributes: ['http.method', 'http.route'] } }] }, undefined, [], () => {})!
    expect(expectations.spans[0]!.attrsPresent).toEqual(['http.method', 'http.route'])
    const withBoth = { ...span('a', '1', 'job'), attributes: { 'http.method': 'GET', 'http.route': '/x' } }
    expect(failures([withBoth], expectations)).toEqual([])
    const withOne = { ...span('a', '1', 'job'), attributes: { 'http.method': 'POST' } }
    expect(failures([withOne], expectations)).toMatchObject([{ rule: 'expect.span[job].attrs.present', expected: 'attributes http.method, http.route present', actual: 'no attribute http.route' }])
  })
})
