import type { Span, SpanVerdict } from '../core/index.ts'

// Hand-made verdicts: the views are built against the contract, not against one evaluator's output.
const T0 = 1_764_000_000_000
const TRACE = 'a'.repeat(32)
/** A span of the fixture trace; times in ms after T0. */
export function span(id: string, name: string, service: string, start: number, end: number, extra: Partial<Span> = {}): Span {
  return { traceId: TRACE, spanId: id.padStart(16, '0'), name, kind: 'internal', startTimeMs: T0 + start, endTimeMs: T0 + end, attributes: {}, events: [], status: { code: 'ok' }, resource: { 'service.name': service }, service, source: 'otlp', receivedAt: 0, ...extra }
}
/** A span id from a short name: `3` → `0000000000000003`. */
export const spanIdOf = (n: string): string => n.padStart(16, '0')
const id = spanIdOf

/** One trace over three services, out of order, with an error span, a control character and an orphan. */
export const spans: Span[] = [
  // Out of order on purpose: the tree sorts by parent, then start time.
  span('3', 'checkout.charge', 'payments', 4, 9.5, { parentSpanId: id('1'), status: { code: 'error', message: 'card declined' } }),
  span('1', 'GET /checkout', 'web', 0, 12.25),
  span('2', 'checkout.validate', 'web', 1, 3, { parentSpanId: id('1') }),
  span('4', 'db\u001B[2Jquery', 'payments', 5, 5.4, { parentSpanId: id('3') }),
  // Its parent was never received: shown as a root of its own.
  span('5', 'late.flush', 'worker', 13, 15, { parentSpanId: id('99') }),
]

/** One span rule failed, with a closest candidate. */
export const failing: SpanVerdict = {
  checked: 3,
  rules: ['expect.span[checkout.charge].attrs.all', 'expect.span[checkout.validate]', 'expect.counts.spans_total'],
  failures: [{
    rule: 'expect.span[checkout.charge].attrs.all',
    expected: 'payment.method = "card"',
    actual: 'no checkout.charge span has payment.method = "card"',
    closest: { spanId: id('3'), name: 'checkout.charge', service: 'payments', differences: ['payment.method is "cash", not "card"'] },
    spanIds: [id('3')],
    source: ['expect', 'span', 0, 'attrs', 'all'],
  }],
  spans,
  settleMs: 52,
}
/** The same spans, every rule held. */
export const held: SpanVerdict = { checked: 3, rules: failing.rules, failures: [], spans, settleMs: 40 }

