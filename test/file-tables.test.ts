import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTestLoader, runTest } from '../core/index.ts'
import { clnrmContainers, createRecordingPool } from './engine.ts'
import { fixture, tempDir } from './helpers.ts'
import { node, startDev } from './runtimes/contract.ts'

// Upstream's test-file tables ([vars], [matrix], [report], …) as a user meets them: the built
// CLI spawned on a copy of a fixture project, its exit code and output, and the engine asked
// for what this very process left behind.

const bin = resolve(import.meta.dirname, '../dist/cli/bin.mjs')

interface Spawned { code: number | null; stdout: string; stderr: string; pid: number }

function cli(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Spawned> {
  const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()))
  child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()))
  return new Promise(done => child.once('close', code => done({ code, stdout, stderr, pid: child.pid! })))
}

describe('upstream\'s test-file tables', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir('clnrm-tables-')))
  afterEach(() => cleanup())
  const project = (name: string): void => cpSync(fixture('tables', name), dir, { recursive: true })

  it('[vars] in a test file: its tags see them over clnrm.toml\'s, --var wins over both, and dry-run shows them', async () => {
    project('vars')
    const run = await cli(['run', 'vars.clnrm.toml.eta'], dir)
    expect(run.code, run.stdout + run.stderr).toBe(0)
    expect(run.stdout).toContain('vars file')
    expect(clnrmContainers(run.pid)).toEqual([])

    // The step expects the file's value: --var and the env a [vars] tag reads must reach it, so it fails.
    const overridden = await cli(['run', 'vars.clnrm.toml.eta', '--var', 'greeting=cli'], dir)
    expect(overridden.code).toBe(1)
    expect(overridden.stdout).toContain('vars cli')
    expect(overridden.stdout).toContain('cli/project/none')
    expect(clnrmContainers(overridden.pid)).toEqual([])
    const render = await cli(['render', 'vars.clnrm.toml.eta'], dir, { CLNRM_TABLES_ORIGIN: 'from-env' })
    expect(render.code).toBe(0)
    expect(render.stdout).toContain('run = "echo file/project/from-env"')

    const dry = await cli(['dry-run', 'plain.clnrm.toml'], dir)
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toMatch(/vars \(template data of this file\)\n\s+svc = "clnrm"\n\s+replicas = 3\n/)
    const json = JSON.parse((await cli(['dry-run', 'plain.clnrm.toml', '--reporter', 'json'], dir)).stdout)
    expect(json.plans[0].vars).toEqual({ svc: 'clnrm', replicas: 3 })
    const validate = await cli(['validate', 'plain.clnrm.toml'], dir)
    expect(validate.code, validate.stdout).toBe(0)
  })

  it('upstream\'s [template.matrix] is data for loops and [template.env_defaults] what env() reads when unset; beside [matrix] it is a conflict', async () => {
    project('vars')
    const run = await cli(['run', 'upstream-template.clnrm.toml.eta', '--reporter', 'json'], dir)
    expect(run.code, run.stderr).toBe(0)
    const test = (JSON.parse(run.stdout) as { tests: Array<{ name: string; steps: Array<{ name: string; stdout: string }> }> }).tests
    expect(test.map(t => t.name)).toEqual(['upstream template data'])
    expect(test[0]!.steps.map(s => [s.name, s.stdout])).toEqual([['say alpha', 'hello alpha\n'], ['say beta', 'hello beta\n']])
    expect(clnrmContainers(run.pid)).toEqual([])
    const render = await cli(['render', 'upstream-template.clnrm.toml.eta'], dir, { CLNRM_TABLES_GREETING: 'hi' })
    expect(render.stdout).toContain('run = "echo hi alpha"')
    writeFileSync(`${dir}/both.clnrm.toml`, '[meta]\nname = "b"\n[matrix]\nos = ["a"]\n[template.matrix]\nos = ["b"]\n[services.box]\nimage = "clnrm-examples/busybox:1"\n[[steps]]\nrun = "true"\n')
    const both = await cli(['validate', 'both.clnrm.toml'], dir)
    expect(both.code).toBe(1)
    expect(both.stdout).toContain('both.clnrm.toml:5:11 error CLNRM_CONFLICTING_KEYS')
  })

  it('a tag that prints undefined is a located error naming it, in validate and run; nothing starts', async () => {
    project('vars')
    const validate = await cli(['validate', 'undefined.clnrm.toml.eta'], dir)
    expect(validate.code).toBe(1)
    expect(validate.stdout).toContain('undefined.clnrm.toml.eta:6:13 error CLNRM_TEMPLATE_UNDEFINED')
    expect(validate.stdout).toContain('`it.greting` is undefined')
    const run = await cli(['run', 'undefined.clnrm.toml.eta'], dir)
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('CLNRM_TEMPLATE_UNDEFINED')
    expect(clnrmContainers(run.pid)).toEqual([])
  })
})

describe('[matrix]', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir('clnrm-matrix-')))
  afterEach(() => cleanup())
  const project = (): void => cpSync(fixture('tables', 'matrix'), dir, { recursive: true })

  it('a template runs once per combination, each a test named after it, with the values where its tags put them', async () => {
    project()
    const run = await cli(['run', 'matrix.clnrm.toml.eta', 'one-fails.clnrm.toml.eta', '--reporter', 'json'], dir)
    expect(run.code, run.stderr).toBe(1)
    const report = JSON.parse(run.stdout) as { tests: Array<{ name: string; status: string; steps: Array<{ stdout: string }> }> }
    const byName = Object.fromEntries(report.tests.map(t => [t.name, t]))
    expect(Object.keys(byName).sort()).toEqual([
      'matrix [word=alpha, count=1]', 'matrix [word=alpha, count=2]', 'matrix [word=beta, count=1]', 'matrix [word=beta, count=2]',
      'one fails [word=alpha]', 'one fails [word=beta]',
    ])
    // The service env and the step both got the combination: each container its own.
    expect(byName['matrix [word=beta, count=2]']!.steps[0]!.stdout).toBe('beta-2\n')
    expect(byName['one fails [word=alpha]']!.status).toBe('pass')
    expect(byName['one fails [word=beta]']!.status).toBe('fail')
    expect(clnrmContainers(run.pid)).toEqual([])

    const dry = JSON.parse((await cli(['dry-run', 'one-fails.clnrm.toml.eta', '--reporter', 'json'], dir)).stdout)
    expect(dry.plans.map((p: { name: string; matrix: unknown; steps: Array<{ argv: string[] }> }) => [p.name, p.matrix, p.steps[0]!.argv.at(-1)])).toEqual([
      ['one fails [word=alpha]', { word: 'alpha' }, 'echo alpha'],
      ['one fails [word=beta]', { word: 'beta' }, 'echo beta'],
    ])
    const validate = await cli(['validate', 'matrix.clnrm.toml.eta'], dir)
    expect(validate.stdout).toContain('matrix (4 [matrix] combinations)')
    const render = await cli(['render', 'one-fails.clnrm.toml.eta'], dir)
    expect(render.code).toBe(0)
    expect(render.stdout).toMatch(/^# \[word=alpha\]\n[\s\S]*run = "echo alpha"[\s\S]*\n# \[word=beta\]\n[\s\S]*run = "echo beta"/)
    const renders = JSON.parse((await cli(['render', 'one-fails.clnrm.toml.eta', '--reporter', 'json'], dir)).stdout).renders as Array<{ matrix: unknown; output: string }>
    expect(renders.map(r => r.matrix)).toEqual([{ word: 'alpha' }, { word: 'beta' }])
  })

  it('a plain file runs the same steps per combination, with a warning that nothing reads the values; an empty list is a located error', async () => {
    project()
    const run = await cli(['run', 'plain.clnrm.toml'], dir)
    expect(run.code, run.stdout + run.stderr).toBe(0)
    expect(run.stdout).toContain('plain matrix [os=a]')
    expect(run.stdout).toContain('plain matrix [os=b]')
    expect(run.stdout).toContain('2 passed')
    expect(run.stderr).toContain('plain.clnrm.toml:4:1 warning CLNRM_MATRIX_UNUSED')
    expect(clnrmContainers(run.pid)).toEqual([])
    const empty = await cli(['run', 'empty.clnrm.toml.eta'], dir)
    expect(empty.code).toBe(1)
    expect(empty.stderr).toContain('empty.clnrm.toml.eta:5:6 error CLNRM_INVALID_VALUE')
    expect(empty.stderr).toContain('would run zero times')
    expect(clnrmContainers(empty.pid)).toEqual([])
  })

  it('clnrm dev shows a matrix file as one result: every combination runs, the failing step named after its combination', async () => {
    project()
    const dev = startDev(node, ['one-fails.clnrm.toml.eta'], dir)
    try {
      const result = await dev.waitFor(l => l.type === 'test')
      // The alpha combination passed; the failing step is beta's, located at the template's line.
      expect(result).toMatchObject({ name: 'one fails', status: 'fail', failingStep: { name: '[word=beta] only alpha', excerpt: 'beta\n', location: { line: 13 } } })
    }
    finally {
      dev.kill('SIGINT')
      await dev.exited
    }
    expect(clnrmContainers(dev.pid)).toEqual([])
  })

  it('a problem in some combinations of a template names them; one in every combination is shown once', () => {
    const file = `${dir}/m.clnrm.toml.eta`
    const text = '[meta]\nname = "m"\n[matrix]\nimg = ["busybox:1.36", "Bad Image", "alpine:3"]\n[services.box]\nimage = "<%= it.matrix.img %>"\n[[steps]]\nrun = "true"\nexpected_exit_code = 300\n'
    const loaded = createTestLoader({ project: { root: dir, vars: {}, determinism: {} } }).loadSource(file, text)
    expect(loaded.spec).toBeUndefined()
    expect(loaded.diagnostics.map(d => [d.line, d.column, d.message])).toEqual([
      [6, 9, '[img=Bad Image] services.box.image is "Bad Image", not an image reference'],
      [9, 22, 'steps[0].expected_exit_code is 300, outside 0..255'],
    ])
  })

  it('runTest on a matrix file (the dev loop\'s one result per file) runs every combination and fails when one fails', async () => {
    project()
    const loaded = await createTestLoader({ project: { root: dir, vars: {}, determinism: {} } }).load(`${dir}/one-fails.clnrm.toml.eta`)
    expect(loaded.spec!.steps.map(s => s.name)).toEqual(['[word=alpha] only alpha', '[word=beta] only alpha'])
    const { pool } = await createRecordingPool()
    try {
      const result = await runTest(loaded.spec!, { pool })
      expect(result.name).toBe('one fails')
      expect(result.status).toBe('fail')
      expect(result.steps.map(s => [s.name, s.status, s.stdout])).toEqual([
        ['[word=alpha] only alpha', 'pass', 'alpha\n'],
        ['[word=beta] only alpha', 'fail', 'beta\n'],
      ])
    }
    finally {
      await pool.close()
    }
    expect(clnrmContainers(process.pid)).toEqual([])
  })
})

describe('scenario keys', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir('clnrm-scenario-')))
  afterEach(() => cleanup())

  it('timeout_ms kills the step running at the scenario\'s deadline and fails the rest unstarted, located at the key; concurrent = false runs', async () => {
    cpSync(fixture('tables', 'scenario'), dir, { recursive: true })
    const started = Date.now()
    const run = await cli(['run', 'deadline.clnrm.toml', '--reporter', 'json'], dir)
    // The step sleeps 20 s: the scenario's 1.5 s deadline, not the sleep, ends the run.
    expect(Date.now() - started).toBeLessThan(15_000)
    expect(run.code, run.stderr).toBe(1)
    const steps = (JSON.parse(run.stdout) as { tests: Array<{ steps: Array<{ name: string; status: string; timedOut: boolean; failure?: { message: string; key: string; location?: { line: number } } }> }> }).tests[0]!.steps
    expect(steps.map(s => [s.name, s.status])).toEqual([
      ['in time', 'pass'], ['slow › quick', 'pass'], ['slow › sleeps past the deadline', 'fail'], ['slow › never starts', 'fail'],
    ])
    expect(steps[2]!.timedOut).toBe(true)
    expect(steps[2]!.failure).toMatchObject({ key: 'timeout_ms', message: 'scenario "slow" ran past its timeout_ms and the step was killed', location: { line: 16 } })
    expect(steps[3]!.failure).toMatchObject({ key: 'timeout_ms', message: 'scenario "slow" ran out of its timeout_ms before this step started' })
    expect(clnrmContainers(run.pid)).toEqual([])
  })

  it('concurrent = true and policy keys are CLNRM_NOT_SUPPORTED naming the key; nothing starts', async () => {
    cpSync(fixture('invalid', 'unsupported-scenario-concurrent.clnrm.toml'), `${dir}/concurrent.clnrm.toml`)
    cpSync(fixture('invalid', 'unsupported-scenario-policy.clnrm.toml'), `${dir}/policy.clnrm.toml`)
    const run = await cli(['run', '.'], dir)
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('concurrent.clnrm.toml:8:14 error CLNRM_NOT_SUPPORTED')
    expect(run.stderr).toContain('scenario[0].concurrent = true is not supported')
    expect(run.stderr).toContain('policy.clnrm.toml:9:12 error CLNRM_NOT_SUPPORTED')
    expect(run.stderr).toContain('scenario[0].policy.security_level is not supported')
    expect(clnrmContainers(run.pid)).toEqual([])
  })
})

describe('service keys', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir('clnrm-service-keys-')))
  afterEach(() => cleanup())

  it('username, password and strict stay CLNRM_NOT_SUPPORTED, and no output shows the password', async () => {
    writeFileSync(`${dir}/db.clnrm.toml`, '[meta]\nname = "db"\n[services.db]\nimage = "clnrm-examples/busybox:1"\nusername = "root"\npassword = "s3cr3t-value"\nstrict = true\n[[steps]]\nrun = "true"\n')
    for (const args of [['validate', '.'], ['validate', '.', '--reporter', 'json'], ['run', '.'], ['run', '.', '--reporter', 'json'], ['dry-run', '.']]) {
      const out = await cli(args, dir)
      expect(out.code, args.join(' ')).toBe(1)
      expect(out.stdout + out.stderr).toContain('CLNRM_NOT_SUPPORTED')
      expect(out.stdout + out.stderr).not.toContain('s3cr3t-value')
      expect(clnrmContainers(out.pid)).toEqual([])
    }
    const human = await cli(['validate', '.'], dir)
    for (const [line, key] of [[5, 'username'], [6, 'password'], [7, 'strict']] as const) {
      expect(human.stdout).toContain(`db.clnrm.toml:${line}:1 error CLNRM_NOT_SUPPORTED`)
      expect(human.stdout).toContain(`services.db.${key} is not supported`)
    }
    expect(human.stdout).toContain('password = (value hidden)')
  })

  it('wait_for_span holds the steps until the span appears on the service\'s output; a span that never comes errors after its timeout', async () => {
    cpSync(fixture('tables', 'service'), dir, { recursive: true })
    const dry = await cli(['dry-run', 'wait-for-span.clnrm.toml'], dir)
    expect(dry.stdout).toContain('ready when: a span named "app.ready" appears on its output (within 10s)')
    const started = Date.now()
    // The step reads a file the service writes just before printing the span: it exists only if the step waited.
    const run = await cli(['run', 'wait-for-span.clnrm.toml', 'never.clnrm.toml', '--reporter', 'json'], dir)
    expect(Date.now() - started).toBeLessThan(20_000)
    expect(run.code).toBe(1)
    const tests = (JSON.parse(run.stdout) as { tests: Array<{ name: string; status: string; error?: { code: string; message: string } }> }).tests
    expect(tests.find(t => t.name === 'waits for a span')!.status).toBe('pass')
    expect(tests.find(t => t.name === 'never ready')).toMatchObject({ status: 'error', error: { code: 'CLNRM_SERVICE_NOT_READY', message: expect.stringContaining('did not log the span "app.ready" within 2000ms') } })
    expect(clnrmContainers(run.pid)).toEqual([])
  })
})

describe('[otel_validation]', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir('clnrm-otel-validation-')))
  afterEach(() => cleanup())

  it('upstream\'s older span checks run on real spans: a file whose spans hold them passes, one whose do not fails naming each rule and its key', async () => {
    cpSync(fixture('tables', 'otel-validation'), dir, { recursive: true })
    const run = await cli(['run', 'pass.clnrm.toml', 'fail.clnrm.toml', '--reporter', 'json'], dir)
    expect(run.code, run.stderr).toBe(1)
    type Verdict = { checked: number; rules: string[]; failures: Array<{ rule: string; actual: string; source: unknown[] }> }
    const tests = (JSON.parse(run.stdout) as { tests: Array<{ name: string; status: string; spans: Verdict }> }).tests
    const pass = tests.find(t => t.name === 'otel_validation holds')!
    expect(pass.status).toBe('pass')
    expect(pass.spans.rules).toEqual([
      'expect.span[job]', 'expect.span[job.step]', 'expect.counts.spans_total',
      'expect.status.by_name[job]', 'expect.hermeticity.resource_attrs.must_match', 'otel_validation.expected_traces[0]',
    ])
    const fail = tests.find(t => t.name === 'otel_validation fails')!
    expect(fail.status).toBe('fail')
    expect(fail.spans.failures.map(f => [f.rule, f.source])).toEqual([
      ['expect.span[job].attrs.all', ['otel_validation', 'expected_spans', 0]],
      ['otel_validation.expected_traces[0]', ['otel_validation', 'expected_traces', 0]],
    ])
    expect(fail.spans.failures[1]!.actual).toContain('lacks a span named "job.cleanup"')
    expect(clnrmContainers(run.pid)).toEqual([])
  })

  it('keys that map onto no check are CLNRM_NOT_SUPPORTED, a table with no check or turned off beside checks is an error; nothing starts', async () => {
    cpSync(fixture('tables', 'otel-validation', 'unsupported.clnrm.toml'), `${dir}/claims.clnrm.toml`)
    writeFileSync(`${dir}/empty.clnrm.toml`, '[meta]\nname = "e"\n[services.box]\nimage = "clnrm-examples/busybox:1"\n[[steps]]\nrun = "true"\n[otel_validation]\nenabled = true\nvalidate_spans = true\n')
    writeFileSync(`${dir}/off.clnrm.toml`, '[meta]\nname = "o"\n[services.box]\nimage = "clnrm-examples/busybox:1"\n[[steps]]\nrun = "true"\n[otel_validation]\nenabled = false\n[[otel_validation.expected_spans]]\nname = "x"\n')
    const run = await cli(['run', '.'], dir)
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('claims.clnrm.toml:12:1 error CLNRM_NOT_SUPPORTED')
    expect(run.stderr).toContain('claims.clnrm.toml:13:1 error CLNRM_NOT_SUPPORTED')
    expect(run.stderr).toContain('claims.clnrm.toml:17:12 error CLNRM_NOT_SUPPORTED')
    expect(run.stderr).toContain('empty.clnrm.toml:7:1 error CLNRM_MISSING_KEY')
    expect(run.stderr).toContain('off.clnrm.toml:8:11 error CLNRM_CONFLICTING_KEYS')
    expect(run.stdout).toContain('3 invalid')
    expect(clnrmContainers(run.pid)).toEqual([])
  })
})

describe('[report]', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir('clnrm-report-')))
  afterEach(() => cleanup())

  it('clnrm run writes the file\'s json, junit and the digest of its spans, relative to the project root; dry-run names them', async () => {
    cpSync(fixture('tables', 'report'), dir, { recursive: true })
    const dry = await cli(['dry-run', 'report.clnrm.toml'], dir)
    expect(dry.stdout).toMatch(/reports \(written after clnrm run\)\n\s+json reports\/reported\.json\n\s+junit reports\/reported\.junit\.xml\n\s+digest reports\/reported\.trace\.sha256/)
    expect(existsSync(`${dir}/reports`)).toBe(false)
    const run = await cli(['run', 'report.clnrm.toml'], dir)
    expect(run.code, run.stdout + run.stderr).toBe(0)
    expect(run.stderr).toContain('[report] wrote reports/reported.json')
    const json = JSON.parse(readFileSync(`${dir}/reports/reported.json`, 'utf8')) as { summary: { passed: number }; tests: Array<{ name: string; file: string; spans: { spans: unknown[] } }> }
    expect(json.summary.passed).toBe(1)
    expect(json.tests.map(t => [t.name, t.file])).toEqual([['reported', 'report.clnrm.toml']])
    expect(json.tests[0]!.spans.spans).toHaveLength(2)
    const junit = readFileSync(`${dir}/reports/reported.junit.xml`, 'utf8')
    expect(junit).toMatch(/^<\?xml/)
    expect(junit).toContain('<testsuite name="reported" file="report.clnrm.toml"')
    // The digest is upstream's: SHA-256 of the judged spans as JSON, then a newline.
    const digest = readFileSync(`${dir}/reports/reported.trace.sha256`, 'utf8')
    expect(digest).toBe(`${createHash('sha256').update(JSON.stringify(json.tests[0]!.spans.spans)).digest('hex')}\n`)
    expect(clnrmContainers(run.pid)).toEqual([])
  })

  it('a path outside the project root is a located error, and two files naming one report stop the run before it starts', async () => {
    cpSync(fixture('invalid', 'report-outside-root.clnrm.toml'), `${dir}/outside.clnrm.toml`)
    const outside = await cli(['run', 'outside.clnrm.toml'], dir)
    expect(outside.code).toBe(1)
    expect(outside.stderr).toContain('outside.clnrm.toml:10:8 error CLNRM_INVALID_VALUE')
    const file = (name: string): string => `[meta]\nname = "${name}"\n[services.box]\nimage = "clnrm-examples/busybox:1"\n[[steps]]\nrun = "true"\n[report]\njson = "same.json"\n`
    writeFileSync(`${dir}/a.clnrm.toml`, file('a'))
    writeFileSync(`${dir}/b.clnrm.toml`, file('b'))
    const both = await cli(['run', 'a.clnrm.toml', 'b.clnrm.toml'], dir)
    expect(both.code).toBe(2)
    expect(both.stderr).toContain('same.json is the [report] of both')
    expect(existsSync(`${dir}/same.json`)).toBe(false)
    expect(clnrmContainers(both.pid)).toEqual([])
  })
})
