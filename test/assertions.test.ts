import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { XMLValidator } from 'fast-xml-parser'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { judgeAssertions } from '../core/assertions.ts'
import type { ContainerPool, Span, StepResult, TestResult, TestSpec } from '../core/index.ts'
import { resultView } from '../plugin-vite/views.ts'
import { createTestLoader } from '../core/index.ts'
import { clnrmContainers, createRecordingPool, IMAGE, run, specFrom } from './engine.ts'
import { spawnCli } from './cli-process.ts'
import { fixture, tempDir } from './helpers.ts'

const file = (assertions: string, steps = '[[steps]]\nname = "one"\nrun = "echo one"\n[[steps]]\nname = "two"\nrun = "echo two"\n'): string =>
  `[meta]\nname = "asserted"\n[services.box]\nimage = "${IMAGE}"\n${steps}[assertions]\n${assertions}\n`

const load = (dir: string, text: string): ReturnType<ReturnType<typeof createTestLoader>['loadSource']> =>
  createTestLoader({ project: { root: dir, vars: {}, determinism: {} } }).loadSource(join(dir, 'x.clnrm.toml'), text)

const span = (spanId: string, parentSpanId?: string, traceId = 'a'.repeat(32)): Span => ({
  traceId, spanId, parentSpanId, name: `s${spanId}`, kind: 'internal', startTimeMs: 0, endTimeMs: 1, attributes: {}, events: [], status: { code: 'unset' },
} as unknown as Span)

describe('[assertions]: the span graph claims (pure logic)', () => {
  const spec = { steps: [], assertions: [{ key: 'span_graph_is_valid_tree', value: true, path: ['assertions', 'span_graph_is_valid_tree'] }, { key: 'no_orphaned_spans', value: true, path: ['assertions', 'no_orphaned_spans'] }] } as unknown as TestSpec
  const judge = (spans: Span[]): Array<[string, string, string | undefined]> => judgeAssertions(spec, [], spans).map(r => [r.name, r.status, r.failure?.message])

  it('a tree holds both', () => {
    expect(judge([span('1'), span('2', '1'), span('3', '2'), span('4', '1')]).map(r => r[1])).toEqual(['pass', 'pass'])
  })
  it('an orphan fails both, naming it', () => {
    const [tree, orphans] = judge([span('1'), span('2', '9')])
    expect(tree![1]).toBe('fail')
    expect(orphans![2]).toMatch(/1 of 2 spans have a parent that is not among the run's spans: "s2" \(2\)/)
  })
  it('two roots in a trace, no span at all, and a cycle are not a tree; orphans are judged alone', () => {
    expect(judge([span('1'), span('2')])[0]![2]).toMatch(/has 2 root spans/)
    expect(judge([])).toEqual([['assertions.span_graph_is_valid_tree', 'fail', expect.stringMatching(/no span was received/)], ['assertions.no_orphaned_spans', 'pass', undefined]])
    expect(judge([span('1'), span('2', '3'), span('3', '2')])[0]![2]).toMatch(/cycle/)
    // A root per trace: two traces of one root each are two trees.
    expect(judge([span('1'), span('2', undefined, 'b'.repeat(32))]).map(r => r[1])).toEqual(['pass', 'pass'])
  })
})

describe('[assertions] when a file is loaded', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('a claim no tool can check is CLNRM_NOT_SUPPORTED at its key, naming the claim; the checkable key is not', async () => {
    const { spec, diagnostics } = load(dir, await readFile(fixture('assertions', 'claims.clnrm.toml'), 'utf8'))
    expect(spec).toBeUndefined()
    expect(diagnostics.filter(d => d.severity === 'error').map(d => [d.code, d.line, d.column, d.message])).toEqual([
      ['CLNRM_NOT_SUPPORTED', 13, 1, 'assertions.dashboard_renders_correctly = true is a claim this clnrm cannot check'],
      ['CLNRM_NOT_SUPPORTED', 14, 1, 'assertions.premium_shown = "the premium banner is shown" is a claim this clnrm cannot check'],
    ])
  })

  it('[test.assertions] is the same table; false claims nothing; a wrong type and span claims without spans are located errors', () => {
    const spec = load(dir, `[test.metadata]\nname = "t"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nrun = "true"\n[test.assertions]\nall_steps_must_pass = true\nexecution_should_be_hermetic = false\n`).spec!
    expect(spec.assertions).toEqual([{ key: 'all_steps_must_pass', value: true, path: ['test', 'assertions', 'all_steps_must_pass'] }])
    const unhealthy = load(dir, file('require_service_health = true'))
    expect(unhealthy.diagnostics.filter(d => d.severity === 'error').map(d => [d.code, d.line, d.message])).toEqual([['CLNRM_INVALID_VALUE', 12, 'assertions.require_service_health needs every service\'s health checked, but "box" declares neither health_check nor wait_for']])
    const bad = load(dir, file('container_should_have_executed_commands = "many"\nno_orphaned_spans = true'))
    expect(bad.diagnostics.filter(d => d.severity === 'error').map(d => [d.code, d.line])).toEqual([['CLNRM_INVALID_TYPE', 12], ['CLNRM_INVALID_VALUE', 13]])
  })
})

describe('[assertions] judged after a run (real engine)', () => {
  let pool: ContainerPool
  let dir: string
  let cleanup: () => Promise<void>
  beforeAll(async () => ({ pool } = await createRecordingPool()))
  afterAll(() => pool.close())
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  const entries = (steps: StepResult[]): Array<[string, string, string | undefined]> => steps.slice(2).map(s => [s.name, s.status, s.failure?.message])

  it('claims that hold pass, each shown as an entry after the steps', async () => {
    const result = await run(pool, specFrom(dir, 'ok', file('container_should_have_executed_commands = 2\nall_steps_should_succeed = true\nall_commands_should_succeed = true\nexecution_should_be_hermetic = true')))
    expect(result.status).toBe('pass')
    expect(entries(result.steps)).toEqual([
      ['assertions.container_should_have_executed_commands', 'pass', undefined],
      ['assertions.all_steps_should_succeed', 'pass', undefined],
      ['assertions.all_commands_should_succeed', 'pass', undefined],
      ['assertions.execution_should_be_hermetic', 'pass', undefined],
    ])
  })

  it('claims that do not hold fail the test, saying what was found', async () => {
    const steps = '[[steps]]\nname = "one"\nrun = "exit 3"\ncontinue_on_failure = true\nworkdir = "/tmp"\n[[steps]]\nname = "two"\nrun = "true"\n'
    const result = await run(pool, specFrom(dir, 'bad', file('container_should_have_executed_commands = 3\nall_steps_should_pass = true\nexecution_should_be_hermetic = true', steps)))
    expect(result.status).toBe('fail')
    expect(entries(result.steps)).toEqual([
      ['assertions.container_should_have_executed_commands', 'fail', 'assertions.container_should_have_executed_commands = 3 does not hold: 2 of 2 steps ran to the end in a container, fewer than 3'],
      ['assertions.all_steps_should_pass', 'fail', 'assertions.all_steps_should_pass = true does not hold: 1 of 2 steps did not pass: "one" (failed)'],
      ['assertions.execution_should_be_hermetic', 'fail', 'assertions.execution_should_be_hermetic = true does not hold: steps ran outside the run\'s fresh workdir: "one" (workdir = "/tmp")'],
    ])
  })

  it('minimum_success_rate counts passed steps; require_service_health holds once declared checks held', async () => {
    const steps = '[[steps]]\nname = "one"\nrun = "exit 3"\ncontinue_on_failure = true\n[[steps]]\nname = "two"\nrun = "true"\n'
    const health = '[services.box.health_check]\ncmd = "true"\n'
    const result = await run(pool, specFrom(dir, 'rate', file('minimum_success_rate = 0.5\nrequire_service_health = true', health + steps).replace('minimum_success_rate = 0.5', 'minimum_success_rate = 0.5\n[test.assertions]\nminimum_success_rate = 0.9').replace('[meta]\nname = "asserted"', '[test.metadata]\nname = "asserted"')))
    expect(result.status).toBe('fail')
    expect(entries(result.steps)).toEqual([
      ['assertions.minimum_success_rate', 'pass', undefined],
      ['test.assertions.minimum_success_rate', 'fail', 'test.assertions.minimum_success_rate = 0.9 does not hold: 1 of 2 steps passed (50%)'],
      ['test.assertions.require_service_health', 'pass', undefined],
    ])
  })

  it('span claims are judged on the spans a step printed', async () => {
    const flat = (spanId: string, parent?: string): string => `'${JSON.stringify({ trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', span_id: spanId, ...(parent && { parent_span_id: parent }), name: `s${spanId}`, start_time_unix_nano: '1700000000000000000', end_time_unix_nano: '1700000000050000000' })}'`
    const steps = (spans: string[]): string => `[[steps]]\nname = "emit"\nrun = ${JSON.stringify(`printf '%s\\n' ${spans.join(' ')}`)}\nartifacts.collect = ["spans:default"]\n[[steps]]\nname = "two"\nrun = "true"\n[otel]\nexporter = "stdout"\n`
    const good = await run(pool, specFrom(dir, 'tree', file('span_graph_is_valid_tree = true\nno_orphaned_spans = true', steps([flat('00f067aa0ba902b7'), flat('00f067aa0ba902b8', '00f067aa0ba902b7')]))))
    expect(good.spans?.spans.length).toBe(2)
    expect([good.status, ...entries(good.steps).map(e => e[1])]).toEqual(['pass', 'pass', 'pass'])
    const orphan = await run(pool, specFrom(dir, 'orphan', file('no_orphaned_spans = true', steps([flat('00f067aa0ba902b7'), flat('00f067aa0ba902b8', '00f067aa0ba90200')]))))
    expect(orphan.status).toBe('fail')
    expect(entries(orphan.steps)[0]![2]).toMatch(/1 of 2 spans have a parent that is not among the run's spans: "s00f067aa0ba902b8"/)
  })
})

describe('[assertions] through clnrm run (built CLI)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('a failing claim fails the run (exit 1) and shows in the terminal, JSON and JUnit; nothing is left behind', async () => {
    await writeFile(join(dir, 'ok.clnrm.toml'), file('container_should_have_executed_commands = 2').replace('"asserted"', '"ok"'))
    await writeFile(join(dir, 'bad.clnrm.toml'), file('container_should_have_executed_commands = 7').replace('"asserted"', '"bad"'))
    const human = spawnCli(['run', '.', '--reporter', 'junit', '--output', 'junit.xml'], dir)
    const exit = await human.exited
    expect(exit.code).toBe(1)
    expect(exit.ms).toBeLessThan(60_000)
    expect(human.stdout()).toMatch(/✓ ok/)
    expect(human.stdout()).toMatch(/✗ bad/)
    expect(human.stdout()).toContain('✗ step "assertions.container_should_have_executed_commands" in clnrm: assertions.container_should_have_executed_commands = 7 does not hold: 2 of 2 steps ran to the end in a container, fewer than 7')
    expect(clnrmContainers(human.pid)).toEqual([])
    const xml = await readFile(join(dir, 'junit.xml'), 'utf8')
    expect(XMLValidator.validate(xml)).toBe(true)
    expect(xml).toMatch(/<testcase name="assertions\.container_should_have_executed_commands" classname="bad"[^>]*>\s*<failure message="[^"]*fewer than 7/)
    const json = spawnCli(['run', '.', '--reporter', 'json'], dir)
    expect((await json.exited).code).toBe(1)
    const report = JSON.parse(json.stdout()) as { tests: Array<{ name: string; status: string; steps: StepResult[] }> }
    const bad = report.tests.find(t => t.name === 'bad')!
    expect(bad.status).toBe('fail')
    expect(bad.steps.at(-1)).toMatchObject({ name: 'assertions.container_should_have_executed_commands', status: 'fail', failure: { expectation: 'assertions.container_should_have_executed_commands = 7' } })
    expect(clnrmContainers(json.pid)).toEqual([])
  })

  it('a claim no tool can check makes the file invalid: exit 1, located, never green', async () => {
    await writeFile(join(dir, 'claims.clnrm.toml'), await readFile(fixture('assertions', 'claims.clnrm.toml'), 'utf8'))
    const cli = spawnCli(['run', '.'], dir)
    const exit = await cli.exited
    expect(exit.code).toBe(1)
    expect(cli.stderr()).toMatch(/claims\.clnrm\.toml:13:1 error CLNRM_NOT_SUPPORTED\n\s*assertions\.dashboard_renders_correctly = true is a claim this clnrm cannot check/)
    expect(cli.stdout()).toMatch(/Tests: 1 invalid \(1\)/)
    expect(clnrmContainers(cli.pid)).toEqual([])
  })
})

describe('[assertions] on the dev page', () => {
  it('a failing claim is the view\'s failure, located at its value', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      const toml = file('all_steps_should_pass = true\ncontainer_should_have_executed_commands = 9')
      const spec = specFrom(dir, 'viewed', toml)
      const steps = spec.steps.map((s): StepResult => ({ name: s.name, service: s.service, status: 'pass', exitCode: 0, stdout: '', stderr: '', truncated: { stdout: false, stderr: false }, durationMs: 1, timedOut: false }))
      const result = { file: spec.file, name: spec.name, status: 'fail', durationMs: 1, steps: [...steps, ...judgeAssertions(spec, steps, undefined)], aborted: false, timings: { acquireMs: 0, reused: {}, steps: [], totalMs: 1 } } as TestResult
      const view = await resultView(dir, result, { file: spec.file, spec, toml, diagnostics: [] })
      expect(view.failure).toMatchObject({ step: 'assertions.container_should_have_executed_commands', expectation: 'assertions.container_should_have_executed_commands = 9', location: { line: 13, column: 43 } })
    }
    finally {
      await cleanup()
    }
  })
})
