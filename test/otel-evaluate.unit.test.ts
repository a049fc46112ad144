import { describe, expect, it } from 'vitest'
import { describeExpectations, evaluateSpanExpectations, hasNegativeChecks } from '../core/index.ts'
import type { Span, SpanExpectations, SpanRule } from '../core/index.ts'

// The evaluation engine on hand-built spans: every rule kind passing and failing, and what a
// failure says (rule, expected, actual, closest candidate).

let counter = 0
const T0 = 1_700_000_000_000

/** A span: ids are generated, times are ms after T0. */
function span(name: string, extra: Partial<Omit<Span, 'startTimeMs' | 'endTimeMs'>> & { start?: number; end?: number; parent?: Span } = {}): Span {
  const { start = 0, end = 10, parent, ...rest } = extra
  counter += 1
  return {
    traceId: parent?.traceId ?? 'a'.repeat(32),
    spanId: counter.toString(16).padStart(16, '0'),
    ...(parent && { parentSpanId: parent.spanId }),
    name,
    kind: 'internal',
    startTimeMs: T0 + start,
    endTimeMs: T0 + end,
    attributes: {},
    events: [],
    status: { code: 'unset' },
    resource: { 'service.name': 'shop' },
    service: 'shop',
    source: 'otlp',
    receivedAt: 0,
    ...rest,
  }
}

const none: SpanExpectations = { spans: [], windows: [] }
const spanRule = (rule: Omit<SpanRule, 'source'>): SpanExpectations => ({ ...none, spans: [{ ...rule, source: ['expect', 'span', 0] }] })
const evaluate = (spans: Span[], expectations: SpanExpectations, hosts?: string[]) => evaluateSpanExpectations(spans, expectations, { internalHosts: hosts })
const rulesFailed = (spans: Span[], expectations: SpanExpectations): string[] => evaluate(spans, expectations).failures.map(f => f.rule)

describe('[[expect.span]]', () => {
  const root = span('clnrm.run', { start: 0, end: 100, attributes: { result: 'pass', 'http.status_code': 200, cached: true, ratio: 1 } })
  const step = span('clnrm.step:hello', { parent: root, start: 10, end: 40, events: [{ name: 'container.start', timeMs: T0 + 11, attributes: {} }] })

  it('passes when a span of that name exists; fails as .existence naming the closest name when none does', () => {
    expect(evaluate([root], spanRule({ name: 'clnrm.run' }))).toMatchObject({ checked: 1, failures: [], rules: ['expect.span[clnrm.run]'] })
    const { failures } = evaluate([root, step], spanRule({ name: 'clnrm.rnu' }))
    expect(failures).toHaveLength(1)
    expect(failures[0]).toMatchObject({
      rule: 'expect.span[clnrm.rnu].existence',
      expected: 'a span named "clnrm.rnu"',
      closest: { name: 'clnrm.run', spanId: root.spanId, service: 'shop' },
      source: ['expect', 'span', 0],
    })
    expect(evaluate([], spanRule({ name: 'x' })).failures[0]!.actual).toBe('no spans at all')
  })

  it('matches names by glob: * spans dots, ? is one character, other characters are literal', () => {
    expect(rulesFailed([root, step], spanRule({ name: 'clnrm.*' }))).toEqual([])
    expect(rulesFailed([root, step], spanRule({ name: 'clnrm.step:*' }))).toEqual([])
    expect(rulesFailed([root], spanRule({ name: 'clnrm.ru?' }))).toEqual([])
    expect(rulesFailed([root], spanRule({ name: 'clnrm?run' }))).toEqual([])
    expect(rulesFailed([span('clnrmXrun')], spanRule({ name: 'clnrm.run' }))).toEqual(['expect.span[clnrm.run].existence'])
    expect(rulesFailed([root], spanRule({ name: 'clnrm' }))).toEqual(['expect.span[clnrm].existence'])
    expect(rulesFailed([span('a(b)+c')], spanRule({ name: 'a(b)+c' }))).toEqual([])
  })

  it('passes when SOME matching span satisfies every key, not only the first of that name', () => {
    const first = span('checkout.charge', { attributes: { amount: 5 } })
    const second = span('checkout.charge', { attributes: { amount: 10 }, kind: 'client' })
    expect(rulesFailed([first, second], spanRule({ name: 'checkout.charge', kind: 'client', attrsAll: { amount: '10' } }))).toEqual([])
  })

  it('checks the direct parent by name glob; a root span has none', () => {
    expect(rulesFailed([root, step], spanRule({ name: 'clnrm.step:*', parent: 'clnrm.run' }))).toEqual([])
    expect(rulesFailed([root, step], spanRule({ name: 'clnrm.step:*', parent: 'clnrm.*' }))).toEqual([])
    const failure = evaluate([root, step], spanRule({ name: 'clnrm.run', parent: 'http.request' })).failures[0]!
    expect(failure).toMatchObject({ rule: 'expect.span[clnrm.run].parent', expected: 'parent "http.request"', actual: 'no parent (a root span)' })
    const orphan = span('orphan', { parentSpanId: 'ffffffffffffffff' })
    expect(evaluate([orphan], spanRule({ name: 'orphan', parent: 'x' })).failures[0]!.actual).toContain('not among the spans')
    const grandchild = span('leaf', { parent: step })
    expect(evaluate([root, step, grandchild], spanRule({ name: 'leaf', parent: 'clnrm.run' })).failures[0]!.actual).toBe('parent "clnrm.step:hello"')
  })

  it('checks kind', () => {
    expect(rulesFailed([root], spanRule({ name: 'clnrm.run', kind: 'internal' }))).toEqual([])
    expect(evaluate([root], spanRule({ name: 'clnrm.run', kind: 'server' })).failures[0]).toMatchObject({ rule: 'expect.span[clnrm.run].kind', expected: 'kind server', actual: 'kind internal' })
  })

  it('compares attrs.all as string forms: numbers, booleans, equal numbers written differently', () => {
    expect(rulesFailed([root], spanRule({ name: 'clnrm.run', attrsAll: { result: 'pass', 'http.status_code': '200', cached: 'true', ratio: '1.0' } }))).toEqual([])
    const failure = evaluate([root], spanRule({ name: 'clnrm.run', attrsAll: { result: 'fail', 'http.status_code': '200', missing: 'x' } })).failures[0]!
    expect(failure.rule).toBe('expect.span[clnrm.run].attrs.all')
    expect(failure.expected).toBe('attrs.all { result="fail", http.status_code="200", missing="x" }')
    expect(failure.actual).toBe('attrs result="pass", missing missing')
    expect(failure.closest).toMatchObject({ spanId: root.spanId, differences: ['attrs result="pass", missing missing'] })
    expect(rulesFailed([root], spanRule({ name: 'clnrm.run', attrsAll: { cached: 'false' } }))).toEqual(['expect.span[clnrm.run].attrs.all'])
  })

  it('attrs.any needs one of them', () => {
    expect(rulesFailed([root], spanRule({ name: 'clnrm.run', attrsAny: { result: 'fail', cached: 'true' } }))).toEqual([])
    expect(rulesFailed([root], spanRule({ name: 'clnrm.run', attrsAny: { result: 'fail', cached: 'false' } }))).toEqual(['expect.span[clnrm.run].attrs.any'])
  })

  it('events.all and events.any by event name', () => {
    const events = ['container.start', 'container.exec'].map(name => ({ name, timeMs: T0, attributes: {} }))
    const s = span('step', { events })
    expect(rulesFailed([s], spanRule({ name: 'step', eventsAll: ['container.start', 'container.exec'] }))).toEqual([])
    expect(rulesFailed([s], spanRule({ name: 'step', eventsAny: ['container.stop', 'container.exec'] }))).toEqual([])
    const all = evaluate([s], spanRule({ name: 'step', eventsAll: ['container.start', 'container.stop'] })).failures[0]!
    expect(all).toMatchObject({ rule: 'expect.span[step].events.all', actual: 'events [container.start, container.exec], missing container.stop' })
    expect(evaluate([span('step')], spanRule({ name: 'step', eventsAny: ['a'] })).failures[0]).toMatchObject({ rule: 'expect.span[step].events.any', actual: 'no events' })
  })

  it('duration_ms bounds are inclusive', () => {
    expect(rulesFailed([step], spanRule({ name: 'clnrm.step:hello', durationMs: { min: 30, max: 30 } }))).toEqual([])
    const failure = evaluate([step], spanRule({ name: 'clnrm.step:hello', durationMs: { min: 31 } })).failures[0]!
    expect(failure).toMatchObject({ rule: 'expect.span[clnrm.step:hello].duration_ms', expected: 'duration ≥ 31 ms', actual: 'duration 30ms' })
    expect(rulesFailed([step], spanRule({ name: 'clnrm.step:hello', durationMs: { max: 29.5 } }))).toEqual(['expect.span[clnrm.step:hello].duration_ms'])
  })

  it('status: the OTLP status, else the otel.status_code attribute', () => {
    const failed = span('pay', { status: { code: 'error', message: 'declined' } })
    const byAttribute = span('refund', { attributes: { 'otel.status_code': 'ERROR' } })
    expect(rulesFailed([failed, byAttribute], { ...none, spans: [{ name: 'pay', status: 'error', source: [] }, { name: 'refund', status: 'error', source: [] }] })).toEqual([])
    const failure = evaluate([failed], spanRule({ name: 'pay', status: 'ok' })).failures[0]!
    expect(failure).toMatchObject({ rule: 'expect.span[pay].status', expected: 'status OK', actual: 'status ERROR (declined)' })
  })

  it('names the closest candidate among several: the one with the fewest differing keys', () => {
    const far = span('pay', { kind: 'server', attributes: { amount: 1 } })
    const near = span('pay', { kind: 'client', attributes: { amount: 1 } })
    const failure = evaluate([far, near], spanRule({ name: 'pay', kind: 'client', attrsAll: { amount: '2' } })).failures[0]!
    expect(failure.rule).toBe('expect.span[pay].attrs.all')
    expect(failure.closest).toMatchObject({ spanId: near.spanId, differences: ['attrs amount="1"'] })
    expect(failure.actual).toContain('2 candidates')
    expect(failure.spanIds).toEqual([far.spanId, near.spanId])
  })
})

describe('[expect.graph]', () => {
  const root = span('root')
  const a = span('a', { parent: root })
  const b = span('b', { parent: a })
  const graph = (g: Partial<NonNullable<SpanExpectations['graph']>>): SpanExpectations => ({ ...none, graph: { mustInclude: [], mustNotCross: [], source: ['expect', 'graph'], ...g } })

  it('must_include: a direct edge, by globs', () => {
    expect(rulesFailed([root, a, b], graph({ mustInclude: [['root', 'a'], ['a', 'b'], ['r*', '?']] }))).toEqual([])
    const failure = evaluate([root, a, b], graph({ mustInclude: [['root', 'b']] })).failures[0]!
    expect(failure).toMatchObject({ rule: 'expect.graph.must_include[0]', expected: '"root" → "b": a direct parent-child edge', actual: '"b" spans have the parents "a"', spanIds: [b.spanId], source: ['expect', 'graph', 'must_include', 0] })
    expect(evaluate([root], graph({ mustInclude: [['root', 'x']] })).failures[0]!.actual).toBe('no span named "x"')
    expect(evaluate([a, b], graph({ mustInclude: [['y', 'b']] })).failures[0]!.actual).toBe('no span named "y"')
  })

  it('must_not_cross: no direct edge (an indirect one is fine)', () => {
    expect(rulesFailed([root, a, b], graph({ mustNotCross: [['root', 'b'], ['b', 'a']] }))).toEqual([])
    const failure = evaluate([root, a, b], graph({ mustNotCross: [['a', 'b']] })).failures[0]!
    expect(failure.rule).toBe('expect.graph.must_not_cross[0]')
    expect(failure.spanIds).toEqual([a.spanId, b.spanId])
  })

  it('acyclic: a chain of parent ids that returns to itself fails, naming the cycle', () => {
    expect(rulesFailed([root, a, b], graph({ acyclic: true }))).toEqual([])
    const x = span('x', { parentSpanId: '00000000000000ff' })
    const y = span('y', { parentSpanId: x.spanId })
    x.parentSpanId = y.spanId
    const failure = evaluate([root, x, y], graph({ acyclic: true })).failures[0]!
    expect(failure.rule).toBe('expect.graph.acyclic')
    expect(failure.actual).toContain('"x"')
    expect(failure.spanIds.sort()).toEqual([x.spanId, y.spanId].sort())
    const self = span('self')
    self.parentSpanId = self.spanId
    expect(rulesFailed([self], graph({ acyclic: true }))).toEqual(['expect.graph.acyclic'])
  })
})

describe('[expect.counts]', () => {
  const counts = (c: Partial<NonNullable<SpanExpectations['counts']>>): SpanExpectations => ({ ...none, counts: { source: ['expect', 'counts'], ...c } })
  const ev = (name: string) => ({ name, timeMs: T0, attributes: {} })
  const spans = [
    span('a', { events: [ev('x'), ev('y'), ev('z')] }),
    span('a', { status: { code: 'error', message: 'boom' } }),
    span('b', { attributes: { 'otel.status_code': 'ERROR' } }),
    span('b.c', { events: [ev('x')] }),
  ]

  it('spans_total with eq, gte, lte', () => {
    expect(rulesFailed(spans, counts({ spansTotal: { eq: 4 } }))).toEqual([])
    expect(rulesFailed(spans, counts({ spansTotal: { gte: 2, lte: 4 } }))).toEqual([])
    const failure = evaluate(spans, counts({ spansTotal: { gte: 5 } })).failures[0]!
    expect(failure).toMatchObject({ rule: 'expect.counts.spans_total', expected: 'spans ≥ 5', actual: '4', source: ['expect', 'counts', 'spans_total'] })
    expect(rulesFailed(spans, counts({ spansTotal: { lte: 3 } }))).toEqual(['expect.counts.spans_total'])
  })

  it('events_total counts events one by one, not spans with events', () => {
    expect(rulesFailed(spans, counts({ eventsTotal: { eq: 4 } }))).toEqual([])
    expect(evaluate(spans, counts({ eventsTotal: { eq: 2 } })).failures[0]).toMatchObject({ rule: 'expect.counts.events_total', actual: '4' })
  })

  it('errors_total counts the OTLP status ERROR and, when unset, the otel.status_code attribute', () => {
    expect(rulesFailed(spans, counts({ errorsTotal: { eq: 2 } }))).toEqual([])
    expect(evaluate(spans, counts({ errorsTotal: { eq: 0 } })).failures[0]).toMatchObject({ rule: 'expect.counts.errors_total', actual: '2', spanIds: [spans[1]!.spanId, spans[2]!.spanId] })
  })

  it('by_name by glob', () => {
    expect(rulesFailed(spans, counts({ byName: { a: { eq: 2 }, 'b*': { eq: 2 }, 'b.?': { eq: 1 } } }))).toEqual([])
    const failure = evaluate(spans, counts({ byName: { 'b*': { eq: 1 } } })).failures[0]!
    expect(failure).toMatchObject({ rule: 'expect.counts.by_name[b*]', actual: '2', source: ['expect', 'counts', 'by_name', 'b*'] })
  })
})

describe('[[expect.window]]', () => {
  const windows = (outer: string, contains: string[]): SpanExpectations => ({ ...none, windows: [{ outer, contains, source: ['expect', 'window', 0] }] })
  const run = span('run', { start: 0, end: 100 })
  const inside = span('step', { start: 10, end: 100 })
  const other = span('other', { start: 50, end: 120 })

  it('every outer span contains at least one span of each name, bounds included', () => {
    expect(rulesFailed([run, inside], windows('run', ['step']))).toEqual([])
    const failure = evaluate([run, inside, other], windows('run', ['step', 'other'])).failures[0]!
    expect(failure.rule).toBe('expect.window[run]')
    expect(failure.actual).toContain('contains no "other" span')
    expect(failure.actual).toContain('+50ms..+120ms')
  })

  it('tolerates the SDKs\' millisecond start stamps (a child ending under 1 ms past its parent), not more', () => {
    const late = span('step', { start: 10, end: 100.8 })
    expect(rulesFailed([run, late], windows('run', ['step']))).toEqual([])
    const later = span('step', { start: 10, end: 101.5 })
    expect(rulesFailed([run, later], windows('run', ['step']))).toEqual(['expect.window[run]'])
  })

  it('every outer span, not only one', () => {
    const second = span('run', { start: 200, end: 300 })
    expect(rulesFailed([run, inside, second], windows('run', ['step']))).toEqual(['expect.window[run]'])
  })

  it('fails when there is no outer span, and a span does not contain itself', () => {
    expect(evaluate([inside], windows('run', ['step'])).failures[0]!.actual).toBe('no span named "run"')
    expect(rulesFailed([run], windows('r*', ['run']))).toEqual(['expect.window[r*]'])
  })
})

describe('[expect.order]', () => {
  const order = (o: Partial<NonNullable<SpanExpectations['order']>>): SpanExpectations => ({ ...none, order: { mustPrecede: [], mustFollow: [], source: ['expect', 'order'], ...o } })
  const registry = span('plugin.registry', { start: 0, end: 10 })
  const step = span('step', { start: 10, end: 30 })

  it('must_precede: some first ends no later than some second starts', () => {
    expect(rulesFailed([registry, step], order({ mustPrecede: [['plugin.registry', 'step']] }))).toEqual([])
    const failure = evaluate([registry, step], order({ mustPrecede: [['step', 'plugin.registry']] })).failures[0]!
    expect(failure).toMatchObject({ rule: 'expect.order.must_precede[0]', expected: 'some "step" span ends before some "plugin.registry" span starts' })
    expect(failure.actual).toContain('ends at +30ms')
  })

  it('tolerates the SDKs\' millisecond start stamps in order too, not more', () => {
    expect(rulesFailed([registry, span('step', { start: 9.2, end: 30 })], order({ mustPrecede: [['plugin.registry', 'step']] }))).toEqual([])
    expect(rulesFailed([registry, span('step', { start: 8.5, end: 30 })], order({ mustPrecede: [['plugin.registry', 'step']] }))).toEqual(['expect.order.must_precede[0]'])
  })

  it('must_follow: some first starts no earlier than some second ends', () => {
    expect(rulesFailed([registry, step], order({ mustFollow: [['step', 'plugin.registry']] }))).toEqual([])
    expect(rulesFailed([registry, step], order({ mustFollow: [['plugin.registry', 'step']] }))).toEqual(['expect.order.must_follow[0]'])
  })

  it('both names must exist', () => {
    expect(evaluate([step], order({ mustPrecede: [['missing', 'step']] })).failures[0]!.actual).toBe('no span named "missing"')
  })
})

describe('[expect.status]', () => {
  const status = (s: Partial<NonNullable<SpanExpectations['status']>>): SpanExpectations => ({ ...none, status: { source: ['expect', 'status'], ...s } })
  const ok = span('a', { status: { code: 'ok' } })
  const okByAttribute = span('b', { attributes: { 'otel.status_code': 'ok' } })
  const failed = span('c', { status: { code: 'error', message: 'card declined' } })
  const failedByAttribute = span('d', { attributes: { 'otel.status_code': 'Error' } })

  it('all: every span, from the OTLP status, falling back to otel.status_code (any case)', () => {
    expect(rulesFailed([ok, okByAttribute], status({ all: 'ok' }))).toEqual([])
    const failure = evaluate([ok, failed, failedByAttribute], status({ all: 'ok' })).failures[0]!
    expect(failure.rule).toBe('expect.status.all')
    expect(failure.actual).toBe('2 of 3 not OK: "c" ERROR (card declined); "d" ERROR')
    expect(failure.spanIds).toEqual([failed.spanId, failedByAttribute.spanId])
  })

  it('all needs at least one span: no spans never proves OK', () => {
    expect(rulesFailed([], status({ all: 'ok' }))).toEqual(['expect.status.all'])
  })

  it('by_name: at least one match, and every match has the status', () => {
    expect(rulesFailed([ok, failed], status({ byName: { a: 'ok', c: 'error' } }))).toEqual([])
    expect(rulesFailed([ok], status({ byName: { 'z*': 'ok' } }))).toEqual(['expect.status.by_name[z*]'])
    expect(rulesFailed([ok, span('a')], status({ byName: { a: 'ok' } }))).toEqual(['expect.status.by_name[a]'])
    expect(rulesFailed([span('u')], status({ byName: { u: 'unset' } }))).toEqual([])
  })
})

describe('[expect.hermeticity]', () => {
  const hermetic = (h: Partial<NonNullable<SpanExpectations['hermeticity']>>): SpanExpectations => ({ ...none, hermeticity: { source: ['expect', 'hermeticity'], ...h } })
  const client = (attributes: Span['attributes']) => span('call', { kind: 'client', attributes })
  const noExternal = hermetic({ noExternalServices: true, internalHosts: ['api', 'db'] })

  it('no_external_services reads current and older semantic-convention keys', () => {
    for (const attributes of <Array<Span['attributes']>>[
      { 'server.address': 'api.stripe.com' },
      { 'net.peer.name': 'api.stripe.com' },
      { 'url.full': 'https://api.stripe.com/v1/charges' },
      { 'http.url': 'http://api.stripe.com:8080/x' },
      { 'http.host': 'api.stripe.com:443' },
      { 'network.peer.address': '93.184.216.34' },
      { 'net.peer.ip': '93.184.216.34' },
    ]) {
      const result = evaluate([client(attributes)], noExternal)
      expect(result.failures.map(f => f.rule), JSON.stringify(attributes)).toEqual(['expect.hermeticity.no_external_services'])
    }
    expect(evaluate([client({ 'server.address': 'api.stripe.com' })], noExternal).failures[0]!.actual).toBe('span "call" reaches "api.stripe.com" (server.address)')
  })

  it('the test\'s own services (any case), localhost and loopback are inside', () => {
    for (const attributes of <Array<Span['attributes']>>[
      { 'server.address': 'API' },
      { 'url.full': 'http://db:5432/x' },
      { 'http.url': 'http://localhost:8080/' },
      { 'net.peer.name': 'web.localhost' },
      { 'network.peer.address': '127.0.0.1' },
      { 'network.peer.address': '::1' },
      { 'http.host': '[::1]:8080' },
      // A named internal host with its resolved private address: the address is not judged.
      { 'server.address': 'api', 'network.peer.address': '172.18.0.3' },
    ]) {
      expect(rulesFailed([client(attributes)], noExternal), JSON.stringify(attributes)).toEqual([])
    }
  })

  it('addresses the runner knows (context) are inside; SERVER spans are not judged (their peer is the caller)', () => {
    expect(rulesFailed([client({ 'network.peer.address': '172.18.0.3' })], noExternal)).toEqual(['expect.hermeticity.no_external_services'])
    expect(evaluate([client({ 'network.peer.address': '172.18.0.3' })], noExternal, ['172.18.0.3']).failures).toEqual([])
    expect(rulesFailed([span('GET /', { kind: 'server', attributes: { 'network.peer.address': '8.8.8.8' } })], noExternal)).toEqual([])
  })

  it('resource_attrs.must_match on every resource seen', () => {
    const rule = hermetic({ resourceAttrsMustMatch: { 'service.name': 'shop', env: 'ci' } })
    const good = span('a', { resource: { 'service.name': 'shop', env: 'ci' } })
    expect(rulesFailed([good], rule)).toEqual([])
    const bad = span('b', { resource: { 'service.name': 'other', env: 'ci' }, service: 'other' })
    const failure = evaluate([good, bad], rule).failures[0]!
    expect(failure).toMatchObject({ rule: 'expect.hermeticity.resource_attrs.must_match', actual: 'resource of service "other": service.name="other" (expected "shop")', spanIds: [bad.spanId] })
  })

  it('span_attrs.forbid_keys', () => {
    const rule = hermetic({ spanAttrsForbidKeys: ['db.connection_string', 'http.url'] })
    expect(rulesFailed([span('a', { attributes: { 'url.full': 'x' } })], rule)).toEqual([])
    const failure = evaluate([span('a', { attributes: { 'db.connection_string': 'postgres://u:p@h' } })], rule).failures[0]!
    expect(failure).toMatchObject({ rule: 'expect.hermeticity.span_attrs.forbid_keys', actual: 'span "a" has db.connection_string' })
  })
})

describe('the whole verdict', () => {
  const all: SpanExpectations = {
    spans: [{ name: 'a', source: ['expect', 'span', 0] }, { name: 'b', source: ['expect', 'span', 1] }],
    graph: { mustInclude: [['a', 'b']], mustNotCross: [['b', 'a']], acyclic: true, source: ['expect', 'graph'] },
    counts: { spansTotal: { gte: 2 }, byName: { a: { eq: 1 } }, source: ['expect', 'counts'] },
    windows: [{ outer: 'a', contains: ['b'], source: ['expect', 'window', 0] }],
    order: { mustPrecede: [], mustFollow: [['b', 'a']], source: ['expect', 'order'] },
    status: { all: 'ok', source: ['expect', 'status'] },
    hermeticity: { noExternalServices: true, source: ['expect', 'hermeticity'] },
  }

  it('counts every rule once, names them as dry-run lists them, and reports failures in the file\'s order', () => {
    const a = span('a', { start: 0, end: 100, status: { code: 'ok' } })
    const b = span('b', { parent: a, start: 10, end: 20, status: { code: 'ok' } })
    const pass = evaluate([a, b], all)
    // b starts at 10, a ends at 100: "b must follow a" fails; everything else holds.
    expect(pass.failures.map(f => f.rule)).toEqual(['expect.order.must_follow[0]'])
    expect(pass.checked).toBe(11)
    expect(pass.rules).toEqual(describeExpectations(all).map(r => r.rule))
    // A failure's expectation reads as dry-run lists the rule.
    const described = new Map(describeExpectations(all).map(r => [r.rule, r.expected]))
    for (const failure of evaluate([span('x', { status: { code: 'error' } })], all).failures) {
      if (described.has(failure.rule)) expect(failure.expected, failure.rule).toBe(described.get(failure.rule))
    }
    const none = evaluate([], all).failures.map(f => f.rule)
    expect(none.slice(0, 3)).toEqual(['expect.span[a].existence', 'expect.span[b].existence', 'expect.graph.must_include[0]'])
  })

  it('hasNegativeChecks: only eq/lte counts, must_not_cross, acyclic, windows, status and hermeticity wait for the quiet window', () => {
    expect(hasNegativeChecks(all)).toBe(true)
    expect(hasNegativeChecks({ ...none, spans: all.spans, counts: { spansTotal: { gte: 2 }, source: [] }, graph: { mustInclude: [['a', 'b']], mustNotCross: [], source: [] } })).toBe(false)
    expect(hasNegativeChecks({ ...none, counts: { byName: { a: { lte: 2 } }, source: [] } })).toBe(true)
    expect(hasNegativeChecks({ ...none, counts: { errorsTotal: { eq: 0 }, source: [] } })).toBe(true)
    expect(hasNegativeChecks({ ...none, graph: { mustInclude: [], mustNotCross: [['a', 'b']], source: [] } })).toBe(true)
    expect(hasNegativeChecks({ ...none, hermeticity: { spanAttrsForbidKeys: ['x'], source: [] } })).toBe(true)
    expect(hasNegativeChecks(none)).toBe(false)
  })

  it('evaluates 5000 spans against every rule kind within the test timeout (a quadratic engine would not)', () => {
    const spans: Span[] = []
    const root = span('a', { start: 0, end: 10_000, status: { code: 'ok' } })
    spans.push(root)
    for (let i = 0; i < 5000; i++) spans.push(span(i % 2 ? 'b' : `c.${i}`, { parent: root, start: i, end: i + 1, status: { code: 'ok' } }))
    const result = evaluate(spans, { ...all, counts: { byName: { 'c.*': { gte: 1 } }, source: [] } })
    expect(result.checked).toBe(10)
    expect(result.failures.map(f => f.rule)).toEqual(['expect.order.must_follow[0]'])
  })
})
