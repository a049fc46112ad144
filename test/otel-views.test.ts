import { cp, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { spawnCli } from './cli-process.ts'
import { clnrmContainers } from './engine.ts'
import { fixture, tempDir } from './helpers.ts'

// How a span verdict reads where users read it: the built CLI on the real engine, with a trace a
// shell posts as OTLP/JSON (exact names and durations). The evaluation itself is tested by
// otel-e2e.test.ts; this file asserts the views.

const RULE = 'expect.span[checkout.charge].attrs.all'
const CHARGE = '00f067aa0ba90203'

describe('clnrm run shows a failing span rule and the run\'s spans', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('clnrm-otel-views-'))
    await cp(fixture('otel-views', 'checkout-trace.clnrm.toml'), join(dir, 'checkout-trace.clnrm.toml'))
  })
  afterEach(() => cleanup())

  const run = async (...args: string[]) => {
    const cli = spawnCli(['run', ...args, '.'], dir)
    const exit = await cli.exited
    return { ...exit, stdout: cli.stdout(), output: cli.output(), pid: cli.pid }
  }

  it('human: the rule, expected, the closest candidate, then the span tree with the candidate marked', async () => {
    const result = await run()
    expect(result.code, result.output).toBe(1)
    const out = result.stdout
    expect(out).toMatch(/^✗ checkout trace /m)
    expect(out).toContain(`    ✗ ${RULE}\n      expected `)
    expect(out).toMatch(/^ {6}expected .*payment\.method.*card/m)
    expect(out).toMatch(/^ {6}actual {3}\S/m)
    expect(out).toContain(`      closest  checkout.charge in payments (${CHARGE})\n        ≠ `)
    expect(out).toMatch(/^ {8}≠ .*payment\.method.*cash/m)
    expect(out).toContain('1 of 2 span rules failed over 4 spans')
    expect(out).toMatch(/^ {4}spans: 4 from 2 services, settled in \d/m)
    const lines = out.split('\n')
    const start = lines.findIndex(l => l.startsWith('    spans: 4'))
    const tree = lines.slice(start + 1, start + 5)
    expect(tree.map(l => l.replace(/\s+/g, ' ').trim())).toEqual([
      'GET /checkout web 12ms ok',
      'checkout.validate web 2.0ms unset',
      '▸ checkout.charge payments 5.5ms error',
      'db\\x1b[2Jquery payments 0.40ms unset',
    ])
    // Indented by parent: the children two columns in, the grandchild four.
    expect(tree[1]).toMatch(/^ {7} {2}checkout\.validate/)
    expect(tree[3]).toMatch(/^ {7} {4}db/)
    expect(out).not.toContain('\u001B')
    expect(clnrmContainers(result.pid)).toEqual([])
  })

  it('--reporter json and junit carry the rule and the spans involved', async () => {
    const json = await run('--reporter', 'json')
    expect(json.code, json.output).toBe(1)
    const verdict = JSON.parse(json.stdout).tests[0].spans
    expect(verdict.checked).toBe(2)
    expect(verdict.failures).toHaveLength(1)
    expect(verdict.failures[0]).toMatchObject({ rule: RULE, closest: { spanId: CHARGE, name: 'checkout.charge', service: 'payments' } })
    expect(verdict.spans.map((s: { name: string }) => s.name).sort()).toEqual(['GET /checkout', 'checkout.charge', 'checkout.validate', 'db\u001B[2Jquery'])

    const out = join(dir, 'junit.xml')
    const junit = await run('--reporter', 'junit', '--output', out)
    expect(junit.code, junit.output).toBe(1)
    const xml = await readFile(out, 'utf8')
    expect(XMLValidator.validate(xml)).toBe(true)
    const suite = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(xml).testsuites.testsuite
    const cases = [suite.testcase].flat() as Array<{ name: string; failure?: { type: string; '#text': string } }>
    const failed = cases.find(c => c.name === RULE)
    expect(failed?.failure?.type).toBe('span-rule')
    expect(failed?.failure?.['#text']).toContain(`spans:\n  checkout.charge (payments, ${CHARGE}, 5.5ms, error)`)
    // The step and both rules are cases; only the rule failed.
    expect(suite).toMatchObject({ tests: '3', failures: '1' })
    expect(cases.filter(c => c.failure)).toHaveLength(1)
    expect(clnrmContainers(junit.pid)).toEqual([])
  })

  it('clnrm dev: the NDJSON test line carries spanFailures; the human loop shows the tree and a settle phase', async () => {
    const ndjson = spawnCli(['dev', '--reporter', 'ndjson'], dir)
    await ndjson.until(/"type":"ready"/, 90_000)
    const line = ndjson.stdout().split('\n').find(l => l.includes('"type":"test"'))!
    const test = JSON.parse(line)
    expect(test.status).toBe('fail')
    expect(test.spanFailures).toHaveLength(1)
    expect(test.spanFailures[0]).toMatchObject({ rule: RULE, spanIds: [CHARGE], closest: { spanId: CHARGE } })
    ndjson.child.stdin.write('q\n')
    expect((await ndjson.exited).code).toBe(0)
    expect(clnrmContainers(ndjson.pid)).toEqual([])

    const human = spawnCli(['dev', '--verbose'], dir)
    await human.until(/ready: 1 test/, 90_000)
    expect(human.stdout()).toContain(`    ✗ ${RULE}`)
    expect(human.stdout()).toMatch(/^ {5}▸ {3}checkout\.charge +payments +5\.5ms +error$/m)
    // A save reruns the test: the dashboard now has the settle phase.
    const file = join(dir, 'checkout-trace.clnrm.toml')
    await writeFile(file, (await readFile(file, 'utf8')).replace('{ "payment.method" = "card" }', '{ "payment.method" = "cash" }'))
    await human.until(/Span settle +[\d.]+ms/, 30_000)
    expect(human.stdout()).toMatch(/✓ 2 span rules held over 4 spans/)
    human.child.stdin.write('q\n')
    expect((await human.exited).code).toBe(0)
    expect(clnrmContainers(human.pid)).toEqual([])
  }, 120_000)
})
