import { readdirSync, readFileSync, statSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { fixture, fixtureLoader } from './helpers.ts'

describe('valid test files normalize into one model', () => {
  const loader = fixtureLoader({ CLNRM_FIXTURE_USER: 'ci' })

  it('reads the flat schema: [test.metadata], [service.*], type, args, [[scenario]]', async () => {
    const { spec, diagnostics } = await loader.load(fixture('valid/flat-schema.clnrm.toml'))
    expect(diagnostics).toEqual([])
    expect(spec).toMatchObject({ name: 'flat schema', timeoutMs: 120_000 })
    expect(spec!.services.db).toEqual({
      id: 'db',
      plugin: 'generic_container',
      image: 'busybox:1.36',
      command: ['sleep', '3600'],
      env: { MODE: 'test', WORKERS: '4', DEBUG: 'false' },
      ports: [5432],
      volumes: [],
      healthCheck: { cmd: ['sh', '-c', 'test -d /'], intervalMs: 100, timeoutMs: 5000, retries: 3 },
      waitFor: { kind: 'port', port: 5432, timeoutMs: 30_000 },
      reset: ['sh', '-c', 'rm -rf /tmp/state'],
      reuse: true,
    })
    expect(spec!.steps.map(s => [s.name, s.service, s.command, s.scenario])).toEqual([
      ['single', 'db', ['sh', '-c', 'echo one'], 'single'],
      ['grouped › first', 'db', ['echo', 'first'], 'grouped'],
      ['grouped › second', 'db', ['sh', '-c', 'echo second >&2; exit 3'], 'grouped'],
    ])
    const [, first, second] = spec!.steps
    expect(first).toMatchObject({ timeoutMs: 10_000, expectedOutputRegex: ['^first', '(?i)FIRST'] })
    expect(second).toMatchObject({ expectedExitCode: 3, expectedStderrRegex: ['second'], continueOnFailure: true })
  })

  it('reads the modern schema with defaults applied and paths resolved', async () => {
    const { spec, diagnostics } = await loader.load(fixture('valid/modern.clnrm.toml'))
    expect(diagnostics).toEqual([])
    expect(spec!.services.web!.volumes).toEqual([{ hostPath: fixture('valid/data'), containerPath: '/www', readOnly: true }])
    expect(spec!.services.web!.waitFor).toEqual({ kind: 'port', port: 8080, timeoutMs: 10_000 })
    expect(spec!.services.client!.reuse).toBe(false)
    expect(spec!.steps[0]).toEqual({
      name: 'fetch',
      service: 'client',
      command: ['sh', '-c', 'wget -qO- http://web:8080/'],
      run: 'wget -qO- http://web:8080/',
      env: { RETRIES: '2' },
      workdir: '/tmp',
      timeoutMs: 1500,
      expectedExitCode: 0,
      shouldFail: false,
      expectedOutputRegex: ['hello'],
      expectedOutputContains: [],
      expectedOutputRegexNot: ['error', '404'],
      expectedStderrRegex: [],
      continueOnFailure: false,
      collectSpans: false,
      scenario: undefined,
      source: ['steps', 0],
    })
    expect(spec!.determinism).toEqual({ seed: 42, freezeClock: '2025-01-01T00:00:00.000Z' })
    expect(spec!.watch).toEqual({ files: [fixture('valid/data/**')], modules: [fixture('src/main.ts')] })
  })

  it('renders templates with project vars, partials and helpers', async () => {
    const result = await loader.load(fixture('valid/templated.clnrm.toml.eta'))
    expect(result.diagnostics).toEqual([])
    const { spec } = result
    expect(spec!.name).toBe('templated default')
    expect(spec!.description).toBe('rendered at 2025-06-01T12:00:00.000Z by ci')
    expect(spec!.services.app!.env.GREETING).toBe('hi "there"\\')
    expect(spec!.steps.map(s => s.name)).toEqual(['step 1', 'step 2', 'step 3'])
    expect(result.inputs.partials).toEqual([fixture('valid/_service.eta')])
    expect(result.inputs.env).toEqual([{ name: 'CLNRM_FIXTURE_USER', value: 'ci' }])
  })

  it('renders the same output every time under a seed', async () => {
    const a = await fixtureLoader().load(fixture('valid/templated.clnrm.toml.eta'))
    const b = await fixtureLoader().load(fixture('valid/templated.clnrm.toml.eta'))
    expect(a.toml).toBe(b.toml)
    expect(a.toml).toMatch(/echo \\"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12} /)
  })

  it('rejects unknown keys with a suggestion: a typo must never pass unchecked', () => {
    const result = loader.loadSource(fixture('valid/typo.clnrm.toml'), '[meta]\nname = "t"\n[services.app]\nimage = "x"\nimgae = "y"\n[[steps]]\nrun = "true"\nexpected_exit_cod = 1\n')
    expect(result.spec).toBeUndefined()
    expect(result.diagnostics.map(d => [d.code, d.severity, d.line, d.column, d.hint])).toEqual([
      ['CLNRM_UNKNOWN_KEY', 'error', 5, 1, 'Did you mean "image"?'],
      ['CLNRM_UNKNOWN_KEY', 'error', 8, 1, 'Did you mean "expected_exit_code"?'],
    ])
  })

  it('lets free-text metadata extras through with a warning only', () => {
    // tags, author and version are upstream's documented metadata: no warning (upstream-schema.test.ts).
    for (const meta of ['[meta]\nname = "t"\nowner = ["a"]\n', '[test.metadata]\nname = "t"\nauthors = ["a"]\n']) {
      const result = loader.loadSource(fixture('valid/extras.clnrm.toml'), `${meta}[services.app]\nimage = "x"\n[[steps]]\nrun = "true"\n`)
      expect(result.spec?.name).toBe('t')
      expect(result.diagnostics.map(d => [d.code, d.severity, d.line, d.column])).toEqual([['CLNRM_UNKNOWN_KEY', 'warning', 3, 1]])
    }
  })

  it('never changes the files it reads', async () => {
    const files = ['valid', 'invalid'].flatMap(d => readdirSync(fixture(d)).filter(f => f.includes('.')).map(f => fixture(d, f)))
    const before = files.map(f => [readFileSync(f, 'utf8'), statSync(f).mtimeMs])
    for (const file of files) await loader.load(file)
    expect(files.map(f => [readFileSync(f, 'utf8'), statSync(f).mtimeMs])).toEqual(before)
  })
})
