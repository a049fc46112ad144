import { describe, expect, it } from 'vitest'
import { evaluateSpanExpectations, spansFromStdout, spansFromSteps } from '../core/index.ts'

// `artifacts.collect = ["spans:default"]`: a step's stdout read as NDJSON spans, in the shapes
// upstream clnrm reads (its flat span, snake_case and camelCase) and OTLP-JSON envelopes.

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'

describe('spansFromStdout', () => {
  it('reads upstream\'s flat span between log lines, skipping what is not a span', () => {
    const stdout = [
      'Starting test...',
      JSON.stringify({ name: 'clnrm.run', trace_id: TRACE, span_id: '00f067aa0ba902b7', parent_span_id: null, kind: 'internal', start_time_unix_nano: '1700000000000000000', end_time_unix_nano: '1700000000250000000', attributes: { result: 'pass', count: 3 }, events: ['container.start', { name: 'container.stop' }], resource_attributes: { 'service.name': 'clnrm' } }),
      '{"level":"info","msg":"json log line, not a span"}',
      '{ not json',
      JSON.stringify({ name: 'clnrm.step:hello', trace_id: TRACE, span_id: '00f067aa0ba902b8', parent_span_id: '00f067aa0ba902b7', kind: 1, start_time_unix_nano: 1700000000010000000, end_time_unix_nano: 1700000000020000000, attributes: {} }),
      'Done.',
    ].join('\n')
    const spans = spansFromStdout(stdout, { receivedAt: 42 })
    expect(spans).toHaveLength(2)
    expect(spans[0]).toMatchObject({
      traceId: TRACE,
      spanId: '00f067aa0ba902b7',
      name: 'clnrm.run',
      kind: 'internal',
      startTimeMs: 1_700_000_000_000,
      endTimeMs: 1_700_000_000_250,
      attributes: { result: 'pass', count: 3 },
      resource: { 'service.name': 'clnrm' },
      service: 'clnrm',
      status: { code: 'unset' },
      source: 'stdout',
      receivedAt: 42,
    })
    expect(spans[0]!.parentSpanId).toBeUndefined()
    expect(spans[0]!.events.map(e => e.name)).toEqual(['container.start', 'container.stop'])
    expect(spans[1]).toMatchObject({ parentSpanId: '00f067aa0ba902b7', kind: 'internal', service: 'unknown_service' })
    expect(spans[1]!.endTimeMs - spans[1]!.startTimeMs).toBeCloseTo(10, 3)
  })

  it('reads the camelCase spelling and OTLP AnyValue-wrapped attributes, status and kind names', () => {
    const line = JSON.stringify({
      traceId: TRACE.toUpperCase(), spanId: 'A1B2C3D4E5F60718', parentSpanId: '', name: 'GET /', kind: 'SPAN_KIND_SERVER',
      startTimeUnixNano: '1700000000000123456', endTimeUnixNano: '1700000000001123456',
      attributes: [{ key: 'http.status_code', value: { intValue: '500' } }, { key: 'ok', value: { boolValue: false } }, { key: 'tags', value: { arrayValue: { values: [{ stringValue: 'a' }] } } }],
      status: { code: 'STATUS_CODE_ERROR', message: 'boom' },
    })
    const [s] = spansFromStdout(`${line}\n`)
    expect(s).toMatchObject({ traceId: TRACE, spanId: 'a1b2c3d4e5f60718', kind: 'server', attributes: { 'http.status_code': 500, ok: false, tags: ['a'] }, status: { code: 'error', message: 'boom' } })
    expect(s!.parentSpanId).toBeUndefined()
    // Microseconds survive the nanosecond strings.
    expect(s!.startTimeMs).toBe(1_700_000_000_000.123)
    expect(s!.endTimeMs - s!.startTimeMs).toBeCloseTo(1, 6)
  })

  it('reads OTLP-JSON envelopes, one a line: resource and scope for every span', () => {
    const envelope = {
      resourceSpans: [{
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'checkout' } }, { key: 'env', value: { stringValue: 'ci' } }] },
        scopeSpans: [{
          scope: { name: '@opentelemetry/instrumentation-http', version: '0.52.0' },
          spans: [
            { traceId: TRACE, spanId: '1111111111111111', name: 'POST /pay', kind: 2, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000005000000', attributes: [], events: [{ name: 'charged', timeUnixNano: '1700000000004000000', attributes: [{ key: 'amount', value: { doubleValue: 9.5 } }] }], status: { code: 1 } },
            { traceId: TRACE, spanId: '2222222222222222', parentSpanId: '1111111111111111', name: 'charge', kind: 3, startTimeUnixNano: '1700000000001000000', endTimeUnixNano: '1700000000002000000', status: {} },
          ],
        }],
      }],
    }
    const spans = spansFromStdout(`log\n${JSON.stringify(envelope)}\n`)
    expect(spans.map(s => [s.name, s.kind, s.service, s.status.code])).toEqual([['POST /pay', 'server', 'checkout', 'ok'], ['charge', 'client', 'checkout', 'unset']])
    expect(spans[0]!.resource).toEqual({ 'service.name': 'checkout', env: 'ci' })
    expect(spans[0]!.scope).toEqual({ name: '@opentelemetry/instrumentation-http', version: '0.52.0' })
    expect(spans[0]!.events[0]).toEqual({ name: 'charged', timeMs: 1_700_000_000_004, attributes: { amount: 9.5 } })
    expect(spans[1]!.parentSpanId).toBe('1111111111111111')
  })

  it('skips objects that lack a name, trace id or span id, and never throws on garbage', () => {
    expect(spansFromStdout('{"name":"x","trace_id":"t"}\n{"trace_id":"t","span_id":"s"}\n{"resourceSpans":[null,{"scopeSpans":"no"}]}\n[1,2]\nnull\n{"name":"x","trace_id":"","span_id":"s"}\n')).toEqual([])
    expect(spansFromStdout('')).toEqual([])
  })

  it('upstream\'s red-team attack: an echo of "All tests passed" yields no span, so expect.span[clnrm.run] fails on existence', () => {
    const spans = spansFromStdout('✅ All tests passed\n🚀 Executing test: test_1\n✅ test_1 - PASS (123ms)\n')
    expect(spans).toEqual([])
    const verdict = evaluateSpanExpectations(spans, { spans: [{ name: 'clnrm.run', kind: 'internal', attrsAll: { result: 'pass' }, source: ['expect', 'span', 0] }], windows: [] })
    expect(verdict.failures[0]!.rule).toBe('expect.span[clnrm.run].existence')
  })

  it('spansFromSteps reads only the collecting steps, and names those whose stdout was cut', () => {
    const line = (name: string, id: string) => JSON.stringify({ name, trace_id: TRACE, span_id: id })
    const steps = [{ name: 'a', collectSpans: true }, { name: 'b', collectSpans: false }, { name: 'c', collectSpans: true }]
    const results = [
      { name: 'a', stdout: `${line('from-a', '1')}\n`, truncated: { stdout: false } },
      { name: 'b', stdout: `${line('from-b', '2')}\n`, truncated: { stdout: false } },
      { name: 'c', stdout: `${line('from-c', '3')}\n{"name":"cut`, truncated: { stdout: true } },
    ]
    const { spans, incomplete } = spansFromSteps(steps, results)
    expect(spans.map(s => s.name)).toEqual(['from-a', 'from-c'])
    expect(incomplete).toEqual(['c'])
  })
})
