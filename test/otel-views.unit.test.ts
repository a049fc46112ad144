import { XMLValidator, XMLParser } from 'fast-xml-parser'
import { createColors } from 'picocolors'
import { describe, expect, it } from 'vitest'
import { formatMetrics, ndjsonDevReporter } from '../cli/dev-output.ts'
import type { CommandContext } from '../cli/context.ts'
import { formatTestResult } from '../cli/run-output.ts'
import { SPAN_TREE_LIMIT } from '../cli/span-output.ts'
import { formatJsonReport, formatJunitReport, spanTree, summarize } from '../core/index.ts'
import type { HotReloadMetrics, SpanVerdict, TestResult } from '../core/index.ts'
import { reloadView, spansView } from '../plugin-vite/views.ts'
import { failing, held, span, spanIdOf, spans } from './otel-fixtures.ts'

const id = spanIdOf

const result = (verdict: SpanVerdict | undefined, status: TestResult['status'] = verdict?.failures.length ? 'fail' : 'pass'): TestResult => ({
  file: '/p/tests/checkout.clnrm.toml',
  name: 'checkout',
  status,
  durationMs: 80,
  aborted: false,
  steps: [{ name: 'buy', service: 'client', status: 'pass', stdout: '', stderr: '', truncated: { stdout: false, stderr: false }, durationMs: 10, timedOut: false }],
  timings: { acquireMs: 1, reused: {}, steps: [], totalMs: 80 },
  ...(verdict && { spans: verdict }),
})

function context(): CommandContext & { out: string[] } {
  const out: string[] = []
  return { cwd: '/p', env: {}, stdout: text => out.push(text), stderr: () => {}, isTTY: false, c: createColors(false), out }
}

describe('spanTree', () => {
  it('orders spans root first, children by start time under their parent, and keeps orphans', () => {
    expect(spanTree(spans).map(r => `${'  '.repeat(r.depth)}${r.span.name}`)).toEqual([
      'GET /checkout',
      '  checkout.validate',
      '  checkout.charge',
      '    db\u001B[2Jquery',
      'late.flush',
    ])
  })
  it('shows every span once, even in a parent cycle', () => {
    const cycle = [span('a', 'x', 's', 0, 1, { parentSpanId: id('b') }), span('b', 'y', 's', 1, 2, { parentSpanId: id('a') })]
    expect(spanTree(cycle).map(r => r.span.name).sort()).toEqual(['x', 'y'])
  })
})

describe('clnrm run human output of span verdicts', () => {
  it('names the failed rule, what was expected, the closest candidate and its differences, then the span tree', () => {
    const text = formatTestResult(context(), result(failing))
    const lines = text.split('\n')
    expect(lines[0]).toMatch(/^✗ checkout /)
    expect(text).toContain('    ✗ expect.span[checkout.charge].attrs.all\n      expected payment.method = "card"\n      actual   no checkout.charge span has payment.method = "card"\n')
    expect(text).toContain(`      closest  checkout.charge in payments (${id('3')})\n        ≠ payment.method is "cash", not "card"\n`)
    expect(text).toContain('1 of 3 span rules failed over 5 spans')
    expect(text).toContain('spans: 5 from 3 services, settled in 52ms')
    // The tree: indentation by parent, name, service, duration, status; the span a rule names is marked.
    const tree = lines.slice(lines.findIndex(l => l.includes('spans: 5')) + 1).filter(Boolean).map(l => l.replace(/\s+/g, ' ').trim())
    expect(tree).toEqual([
      'GET /checkout web 12ms ok',
      'checkout.validate web 2.0ms ok',
      '▸ checkout.charge payments 5.5ms error: card declined',
      'db\\x1b[2Jquery payments 0.40ms ok',
      'late.flush worker 2.0ms ok',
    ])
    expect(lines.find(l => l.includes('checkout.validate'))).toMatch(/^ {7} {2}checkout\.validate/)
    expect(lines.find(l => l.includes('db\\x1b'))).toMatch(/^ {7} {4}db/)
    // Control characters from a span name never reach the terminal raw.
    expect(text).not.toContain('\u001B')
  })

  it('under a passing test, says how many rules held over how many spans, without the tree', () => {
    const text = formatTestResult(context(), result(held))
    expect(text).toContain('✓ 3 span rules held over 5 spans')
    expect(text).not.toContain('GET /checkout')
  })

  it('cuts a long tree with "… N more", counting the marked spans it hides', () => {
    const many = Array.from({ length: 30 }, (_, i) => span(String(i + 1), `op.${i + 1}`, 'web', i, i + 1))
    const verdict: SpanVerdict = { ...failing, spans: many, failures: [{ ...failing.failures[0]!, closest: undefined, spanIds: [id('30')] }] }
    const text = formatTestResult(context(), result(verdict))
    expect(text.split('\n').filter(l => /op\.\d+/.test(l))).toHaveLength(SPAN_TREE_LIMIT)
    expect(text).toContain(`… ${30 - SPAN_TREE_LIMIT} more (1 named by a failed rule)`)
  })

  it('colours the marks when colours are on', () => {
    const ctx = { ...context(), c: createColors(true) }
    const text = formatTestResult(ctx, result(failing))
    expect(text).toContain('\u001B[31m▸\u001B[39m')
  })
})

describe('reports carry the rules and the spans', () => {
  const report = (tests: TestResult[]) => ({ summary: summarize(tests, {}, 100), tests, invalid: [], skipped: [] })

  it('JSON: each test\'s spans has checked, failures (rule, expected, actual, closest, spanIds, source), spans and settleMs', () => {
    const json = JSON.parse(formatJsonReport(report([result(failing)])))
    const verdict = json.tests[0].spans
    expect(Object.keys(verdict).sort()).toEqual(['checked', 'failures', 'rules', 'settleMs', 'spans'])
    expect(Object.keys(verdict.failures[0]).sort()).toEqual(['actual', 'closest', 'expected', 'rule', 'source', 'spanIds'])
    expect(verdict.failures[0].rule).toBe('expect.span[checkout.charge].attrs.all')
    expect(verdict.spans).toHaveLength(5)
    expect(verdict.spans[0]).toMatchObject({ spanId: id('3'), name: 'checkout.charge', service: 'payments', status: { code: 'error' } })
  })

  it('JUnit: a failed rule is a failing testcase named by the rule, rules that held pass, counts add up', () => {
    const xml = formatJunitReport(report([result(failing)]), '/p')
    expect(XMLValidator.validate(xml)).toBe(true)
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(xml)
    const suite = doc.testsuites.testsuite
    expect(suite).toMatchObject({ name: 'checkout', tests: '4', failures: '1' })
    const cases = suite.testcase as Array<{ name: string; failure?: { message: string; type: string; '#text': string } }>
    expect(cases.map(c => c.name)).toEqual(['buy', 'expect.span[checkout.charge].attrs.all', 'expect.span[checkout.validate]', 'expect.counts.spans_total'])
    const failure = cases[1]!.failure!
    expect(failure.type).toBe('span-rule')
    expect(failure.message).toBe('expected payment.method = "card"; got no checkout.charge span has payment.method = "card"')
    expect(failure['#text']).toContain(`closest: checkout.charge (payments, ${id('3')})\n  - payment.method is "cash", not "card"`)
    expect(failure['#text']).toContain(`spans:\n  checkout.charge (payments, ${id('3')}, 5.5ms, error)`)
    expect(cases[2]!.failure).toBeUndefined()
    // The span name's ESC is dropped (XML 1.0 cannot carry it), the file stays well-formed.
    expect(xml).not.toContain('\u001B')
  })

  it('JUnit: a failure naming the key that failed accounts for its rule, which is not listed as held too', () => {
    const verdict: SpanVerdict = { ...failing, rules: ['expect.span[checkout.charge]', 'expect.span[checkout.charge.refund]', 'expect.counts.spans_total'] }
    const xml = formatJunitReport(report([result(verdict)]), '/p')
    const names = [...xml.matchAll(/<testcase name="([^"]+)"/g)].map(m => m[1])
    expect(names).toEqual(['buy', 'expect.span[checkout.charge].attrs.all', 'expect.span[checkout.charge.refund]', 'expect.counts.spans_total'])
  })

  it('JUnit: without rule names, the rules that held are one passing case', () => {
    const xml = formatJunitReport(report([result({ ...held, rules: undefined })]), '/p')
    expect(xml).toContain('<testcase name="span rules held (3)" classname="checkout"')
    expect(xml).toMatch(/<testsuite name="checkout" [^>]*tests="2" failures="0"/)
  })
})

describe('clnrm dev', () => {
  it('NDJSON: the test line carries spanFailures when a rule failed, and nothing when all held', () => {
    const ctx = context()
    const reporter = ndjsonDevReporter(ctx)
    reporter.on['test:result']!({ id: 1, result: result(failing) })
    reporter.on['test:result']!({ id: 2, result: result(held) })
    const [fail, pass] = ctx.out.map(l => JSON.parse(l))
    expect(fail.spanFailures).toEqual(failing.failures)
    expect(pass).not.toHaveProperty('spanFailures')
  })

  const metrics = (settleMs?: number): HotReloadMetrics => ({
    fileDetectionMs: 1, debounceMs: 30, templateRenderMs: 0.5, configParseMs: 0.4, containerStartMs: 2, testExecutionMs: 40, resultFormattingMs: 1, totalLatencyMs: 80,
    templateCacheHitRate: 1, configCacheHitRate: 1, containerReuseRate: 1, memoryMb: 90, tests: [], ...(settleMs !== undefined && { settleMs }),
  })

  it('the timing line and the dashboard show the settle phase when a test waited for spans', () => {
    expect(formatMetrics(context(), metrics(52), false)).toContain('run 40 · settle 52 · display')
    expect(formatMetrics(context(), metrics(52), true)).toMatch(/Span settle +52ms/)
    expect(formatMetrics(context(), metrics(0), false)).not.toContain('settle')
    expect(formatMetrics(context(), metrics(), true)).not.toContain('settle')
  })
})

describe('the panel\'s view of spans', () => {
  it('sends bars in tree order, relative to the first span, with the failing rule\'s span highlighted and the rule located', async () => {
    const view = await spansView(failing, async source => ({ file: '/p/t.clnrm.toml', line: source.length, column: 1 }))
    expect(view.spans.map(b => [b.name, b.depth, b.startMs, b.durationMs, b.status, b.highlighted])).toEqual([
      ['GET /checkout', 0, 0, 12.25, 'ok', false],
      ['checkout.validate', 1, 1, 2, 'ok', false],
      ['checkout.charge', 1, 4, 5.5, 'error', true],
      ['db\\x1b[2Jquery', 2, 5, 0.4, 'ok', false],
      ['late.flush', 0, 13, 2, 'ok', false],
    ])
    expect(view.spans[1]!.parent).toBe(id('1'))
    // The parent of late.flush was never received: no dangling reference.
    expect(view.spans[4]).not.toHaveProperty('parent')
    expect(view.spanRules).toMatchObject({ checked: 3, spans: 5, settleMs: 52 })
    expect(view.spanRules.failures[0]).toMatchObject({ rule: 'expect.span[checkout.charge].attrs.all', location: { line: 5 } })
  })

  it('lists settle among the footer\'s phases when a test waited for spans', () => {
    const base = { fileDetectionMs: 1, debounceMs: 30, templateRenderMs: 0, configParseMs: 0, containerStartMs: 0, testExecutionMs: 5, resultFormattingMs: 1, totalLatencyMs: 40, templateCacheHitRate: 1, configCacheHitRate: 1, containerReuseRate: 1, memoryMb: 1, tests: [] }
    expect(reloadView(1, [], { ...base, settleMs: 51 }, '/p').phases.map(p => p.name)).toEqual(['detect', 'debounce', 'render', 'parse', 'containers', 'run', 'settle', 'display'])
    expect(reloadView(1, [], base, '/p').phases.map(p => p.name)).not.toContain('settle')
  })
})
