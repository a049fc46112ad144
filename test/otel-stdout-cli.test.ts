import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'

// Span expectations as a user meets them through `clnrm run`: fake-green attacks in the manner
// of upstream's red-team files (an echo, mimicked logs, OTel env set but nothing emitted) fail
// naming their first rule, and a step's NDJSON stdout (`artifacts.collect`) is judged rule by rule.

const bin = resolve(import.meta.dirname, '../dist/cli/bin.mjs')

interface Spawned { code: number | null; stdout: string; stderr: string; pid: number }

function cli(args: string[], cwd: string): Promise<Spawned> {
  const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', TESTCONTAINERS_RYUK_DISABLED: 'true' } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()))
  child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()))
  return new Promise(resolve => child.once('close', code => resolve({ code, stdout, stderr, pid: child.pid! })))
}

interface JsonTest { name: string; status: string; spans?: { checked: number; failures: Array<{ rule: string; actual: string; closest?: { differences: string[] } }>; spans: Array<{ name: string; source: string }> } }

const head = (name: string, run: string, extra = ''): string =>
  `[meta]\nname = "${name}"\n[service.red]\nimage = "${IMAGE}"\n[[scenario]]\nname = "s"\nservice = "red"\nrun = ${JSON.stringify(run)}\nartifacts.collect = ["spans:default"]\n${extra}`

// A flat span line as upstream's stdout exporter prints it, escaped for a shell `printf '%s\n'`.
const flat = (span: Record<string, unknown>): string => `'${JSON.stringify({ trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', start_time_unix_nano: '1700000000000000000', end_time_unix_nano: '1700000000050000000', attributes: {}, ...span })}'`

describe('span expectations through clnrm run', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir('clnrm-otel-stdout-')))
  afterEach(() => cleanup())

  it('fake-green attacks fail, each naming expect.span[clnrm.run].existence first', async () => {
    const rootRule = '[[expect.span]]\nname = "clnrm.run"\nkind = "internal"\nattrs.all = { "result" = "pass" }\n'
    writeFileSync(join(dir, 'echo.clnrm.toml'), head('echo', 'echo "All tests passed"; exit 0', rootRule))
    writeFileSync(join(dir, 'logs.clnrm.toml'), head('logs', 'echo "Executing test: t1"; echo "t1 - PASS (12ms)"; echo "1 passed, 0 failed"', `${rootRule}[[expect.span]]\nname = "clnrm.step:t1"\nparent = "clnrm.run"\n[expect.counts]\nspans_total = { gte = 2 }\n`))
    writeFileSync(join(dir, 'empty-otel.clnrm.toml'), head('empty-otel', 'export OTEL_TRACES_EXPORTER=otlp; echo "OTel configured"', `${rootRule}[expect.graph]\nmust_include = [["clnrm.run", "clnrm.plugin.registry"]]\n`))
    const run = await cli(['run', '.', '--reporter', 'json'], dir)
    expect(run.code).toBe(1)
    const tests = (JSON.parse(run.stdout) as { tests: JsonTest[] }).tests
    expect(tests.map(t => [t.name, t.status, t.spans?.failures[0]?.rule]).sort()).toEqual([
      ['echo', 'fail', 'expect.span[clnrm.run].existence'],
      ['empty-otel', 'fail', 'expect.span[clnrm.run].existence'],
      ['logs', 'fail', 'expect.span[clnrm.run].existence'],
    ])
    expect(tests.find(t => t.name === 'logs')!.spans!.failures.map(f => f.rule)).toEqual(['expect.span[clnrm.run].existence', 'expect.span[clnrm.step:t1].existence', 'expect.counts.spans_total'])
    expect(clnrmContainers(run.pid)).toEqual([])
  })

  it('spans printed on stdout are judged: a passing set, and one attribute off names .attrs.all and the closest span', async () => {
    const print = (result: string): string => `printf '%s\\n' starting ${flat({ name: 'clnrm.run', span_id: '00f067aa0ba902b7', kind: 'internal', attributes: { result } })} ${flat({ name: 'clnrm.step:t1', span_id: '00f067aa0ba902b8', parent_span_id: '00f067aa0ba902b7', events: ['container.start'] })} done`
    const rules = '[[expect.span]]\nname = "clnrm.run"\nkind = "internal"\nattrs.all = { "result" = "pass" }\n[[expect.span]]\nname = "clnrm.step:*"\nparent = "clnrm.run"\nevents.any = ["container.start"]\n[expect.counts]\nspans_total = { eq = 2 }\n[expect.graph]\nmust_include = [["clnrm.run", "clnrm.step:t1"]]\nacyclic = true\n'
    writeFileSync(join(dir, 'good.clnrm.toml'), head('good', print('pass'), rules))
    writeFileSync(join(dir, 'bad.clnrm.toml'), head('bad', print('fail'), rules))
    const run = await cli(['run', '.', '--reporter', 'json'], dir)
    expect(run.code).toBe(1)
    const tests = (JSON.parse(run.stdout) as { tests: JsonTest[] }).tests
    const good = tests.find(t => t.name === 'good')!
    expect(good.status).toBe('pass')
    expect(good.spans).toMatchObject({ checked: 5, failures: [] })
    expect(good.spans!.spans.map(s => [s.name, s.source])).toEqual([['clnrm.run', 'stdout'], ['clnrm.step:t1', 'stdout']])
    const bad = tests.find(t => t.name === 'bad')!
    expect(bad.status).toBe('fail')
    expect(bad.spans!.failures).toHaveLength(1)
    expect(bad.spans!.failures[0]).toMatchObject({ rule: 'expect.span[clnrm.run].attrs.all', actual: 'attrs result="fail"', closest: { differences: ['attrs result="fail"'] } })
    const human = await cli(['run', 'bad.clnrm.toml'], dir)
    expect(human.code).toBe(1)
    expect(human.stdout).toContain('expect.span[clnrm.run].attrs.all')
    expect(clnrmContainers(run.pid)).toEqual([])
    expect(clnrmContainers(human.pid)).toEqual([])
  })

  it('reads spans from the whole stdout, not its shown excerpt; past what it reads whole, a count never passes', async () => {
    const span = flat({ name: 'deep', span_id: '00f067aa0ba902c1' })
    const rule = '[expect.counts]\nspans_total = { eq = 1 }\n'
    // The span sits between 1 MB of filler on each side: outside the 1 MiB excerpt reports show.
    writeFileSync(join(dir, 'middle.clnrm.toml'), head('middle', `yes filler | head -c 1000000; printf '\\n%s\\n' ${span}; yes filler | head -c 1000000`, rule))
    // Past 64 MiB only head and tail are kept: the span is read (it is at the end) but others may be missing.
    writeFileSync(join(dir, 'huge.clnrm.toml'), head('huge', `yes filler | head -c 68000000; printf '\\n%s\\n' ${span}`, rule))
    const run = await cli(['run', '.', '-j', '1', '--reporter', 'json'], dir)
    const tests = (JSON.parse(run.stdout) as { tests: JsonTest[] }).tests
    const middle = tests.find(t => t.name === 'middle')!
    expect(middle.status).toBe('pass')
    expect(middle.spans!.spans.map(s => s.name)).toEqual(['deep'])
    const huge = tests.find(t => t.name === 'huge')!
    expect(huge.status).toBe('fail')
    expect(huge.spans!.failures.map(f => f.rule)).toEqual(['artifacts.collect'])
    expect(huge.spans!.failures[0]!.actual).toMatch(/passed the 64 MiB clnrm reads whole/)
    expect(run.code).toBe(1)
    expect(clnrmContainers(run.pid)).toEqual([])
  }, 120_000)
})
