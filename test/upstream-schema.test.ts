import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { clnrmContainers, IMAGE } from './engine.ts'
import { createTestLoader, loadProject } from '../core/index.ts'
import { checkExpectations } from '../core/expect.ts'
import type { ExecResult } from '../core/engine/exec/types.ts'
import { fixture, fixtureLoader, tempDir } from './helpers.ts'
import { spawnCli } from './cli-process.ts'

// Upstream clnrm's own test files, as far as their intent is clear: the spellings its parser
// accepts are accepted here, each proven in-process and through the spawned CLI.

async function cli(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string; pid: number }> {
  const child = spawnCli(args, cwd)
  const exit = await child.exited
  return { code: exit.code, stdout: child.stdout(), stderr: child.stderr(), pid: child.pid }
}

describe('upstream spellings, in-process', () => {
  const loader = fixtureLoader()

  it('`type` beside `plugin`: plugin decides, a label next to type = "generic_container" is kept as a label', async () => {
    const result = await loader.load(fixture('valid', 'upstream-plugin-type.clnrm.toml'))
    expect(result.diagnostics.filter(d => d.severity === 'error')).toEqual([])
    const services = result.spec!.services
    expect(services.both).toMatchObject({ plugin: 'generic_container' })
    expect(services.both!.label).toBeUndefined()
    expect(services.labelled).toMatchObject({ plugin: 'generic_container', label: 'alpine' })
    expect(services.ignored_type).toMatchObject({ plugin: 'generic_container' })
    expect(services.ignored_type!.label).toBeUndefined()
  })

  it('a scenario with run and nested steps keeps both, its own run first', async () => {
    const result = await loader.load(fixture('valid', 'scenario-run-and-steps.clnrm.toml'))
    expect(result.diagnostics.filter(d => d.severity === 'error')).toEqual([])
    expect(result.spec!.steps.map(s => [s.name, s.run, s.scenario])).toEqual([
      ['setup', 'echo one > order', 'setup'],
      ['setup › check', 'cat order', 'setup'],
    ])
    expect(result.spec!.steps[1]!.expectedOutputRegex).toEqual(['one'])
  })

  it('expected_output_contains (one or many) and should_fail normalize; should_fail beside expected_exit_code is a conflict', async () => {
    const result = await loader.load(fixture('valid', 'step-contains-should-fail.clnrm.toml'))
    expect(result.diagnostics).toEqual([])
    const [greets, fails] = result.spec!.steps
    expect(greets).toMatchObject({ expectedOutputContains: ['(world) [1]'], shouldFail: false })
    expect(fails).toMatchObject({ expectedOutputContains: [], shouldFail: true, expectedStderrRegex: ['no'] })
  })

  it('judges contains literally on the whole stdout, and should_fail on any non-zero exit only', async () => {
    const { spec } = await loader.load(fixture('valid', 'step-contains-should-fail.clnrm.toml'))
    const [greets, fails] = spec!.steps
    const exec = (exitCode: number, stdout: string, stderr = ''): ExecResult => ({
      exitCode, stdout: stdout.slice(-10), stderr, truncated: { stdout: stdout.length > 10, stderr: false },
      bytes: { stdout: stdout.length, stderr: stderr.length }, whole: { stdout, stderr }, durationMs: 1, timedOut: false, aborted: false,
    })
    // The excerpt holds only the end; the needle sits at the start of the whole output.
    expect(checkExpectations(greets!, exec(0, `hello (world) [1]${'x'.repeat(50)}`))).toBeUndefined()
    // Pattern characters are literal: "(world) [1]" as a regex would match "world 1".
    expect(checkExpectations(greets!, exec(0, 'hello world 1'))).toMatchObject({ expectation: 'expected_output_contains = "(world) [1]"' })
    expect(checkExpectations({ ...greets!, expectedOutputContains: ['a', 'b'] }, exec(0, 'a'))).toMatchObject({ expectation: 'expected_output_contains = "b"' })
    expect(checkExpectations(fails!, exec(3, '', 'no'))).toBeUndefined()
    expect(checkExpectations(fails!, exec(1, '', 'no'))).toBeUndefined()
    expect(checkExpectations(fails!, exec(0, '', 'no'))).toMatchObject({ expectation: 'should_fail = true', message: 'exited with 0' })
    // Its other expectations still hold it: a failure for the wrong reason is not the failure declared.
    expect(checkExpectations(fails!, exec(2, '', 'other'))).toMatchObject({ expectation: 'expected_stderr_regex = "no"' })
    expect(checkExpectations(fails!, { ...exec(137, ''), timedOut: true })?.expectation).toMatch(/^timeout/)
  })

  it('descriptions on tests, services, steps and scenarios, and version/tags/author, are accepted without a warning', async () => {
    const result = await loader.load(fixture('valid', 'upstream-descriptions.clnrm.toml'))
    expect(result.diagnostics).toEqual([])
    expect(result.spec!.description).toBe('Proves the greeting')
    expect(result.spec!.services.app!.description).toBe('The box that greets')
    expect(result.spec!.steps.map(s => s.description)).toEqual(['Says hello', 'Says hello twice'])
  })

  it('a plugin clnrm cannot start stays an error unless type says it is a generic container', () => {
    const file = fixture('valid', 'x.clnrm.toml')
    const source = (service: string) => `[meta]\nname = "t"\n[services.db]\nimage = "busybox:1.36"\n${service}[[steps]]\nrun = "true"\n`
    const errors = (service: string) => loader.loadSource(file, source(service)).diagnostics.filter(d => d.severity === 'error').map(d => [d.code, d.line, d.column])
    // Upstream's own plugins are a feature clnrm lacks (not supported); one letter off is a typo.
    expect(errors('plugin = "surrealdb"\n')).toEqual([['CLNRM_NOT_SUPPORTED', 5, 10]])
    expect(errors('plugin = "surrealdb"\ntype = "surrealdb"\n')).toEqual([['CLNRM_NOT_SUPPORTED', 5, 10]])
    expect(errors('plugin = "generic_containr"\n')).toEqual([['CLNRM_INVALID_VALUE', 5, 10]])
    expect(errors('type = "surrealdb"\n')).toEqual([['CLNRM_INVALID_VALUE', 5, 8]])
    expect(errors('type = "generic_container"\n')).toEqual([])
    expect(errors('plugin = "postgres"\ntype = "generic_container"\n')).toEqual([])
  })
})

describe('absolute volume host paths', () => {
  let dir: string
  let outsideDir: string
  const cleanups: Array<() => Promise<void>> = []
  beforeEach(async () => {
    const a = await tempDir('clnrm-abs-root-')
    const b = await tempDir('clnrm-abs-outside-')
    dir = a.dir
    outsideDir = b.dir
    cleanups.push(a.cleanup, b.cleanup)
    writeFileSync(join(outsideDir, 'secret.txt'), 'from elsewhere\n')
  })
  afterEach(async () => { await Promise.all(cleanups.splice(0).map(c => c())) })
  const load = (volume: string) => {
    const file = join(dir, 't.clnrm.toml')
    const text = `[meta]\nname = "t"\n[services.app]\nimage = "busybox:1.36"\nvolumes = [{ host_path = "${volume}", container_path = "/x" }]\n[[steps]]\nrun = "true"\n`
    writeFileSync(file, text)
    return createTestLoader({ project: { root: dir, vars: {}, determinism: {} } }).loadSource(file, text)
  }
  const codes = (r: ReturnType<typeof load>) => r.diagnostics.map(d => [d.code, d.severity, d.line, d.column])

  it('are accepted with a located warning, outside the root too, and mount their real path', () => {
    const result = load(outsideDir)
    expect(codes(result)).toEqual([['CLNRM_VOLUME_ABSOLUTE', 'warning', 5, 26]])
    expect(result.diagnostics[0]!.hint).toMatch(/relative/)
    expect(result.spec!.services.app!.volumes[0]!.hostPath).toBe(realpathSync(outsideDir))
    mkdirSync(join(dir, 'data'))
    expect(codes(load(join(dir, 'data')))).toEqual([['CLNRM_VOLUME_ABSOLUTE', 'warning', 5, 26]])
  })

  it('relative paths that climb out, directly or through a symlink, stay errors', () => {
    expect(codes(load(`../${outsideDir.split('/').pop()}`))).toEqual([['CLNRM_VOLUME_OUTSIDE_ROOT', 'error', 5, 26]])
    symlinkSync(outsideDir, join(dir, 'link'))
    expect(codes(load('link'))).toEqual([['CLNRM_VOLUME_OUTSIDE_ROOT', 'error', 5, 26]])
  })

  it('through the CLI: validate warns and exits 0, run mounts it and leaves no container; a missing one is an error', async () => {
    const file = (path: string) => `[meta]\nname = "abs"\n[services.app]\nimage = "${IMAGE}"\nvolumes = [{ host_path = "${path}", container_path = "/host", read_only = true }]\n[[steps]]\nrun = "cat /host/secret.txt"\nexpected_output_contains = "from elsewhere"\n`
    writeFileSync(join(dir, 'abs.clnrm.toml'), file(outsideDir))
    const validate = await cli(['validate', '.'], dir)
    expect(validate.code).toBe(0)
    expect(validate.stdout).toContain('abs.clnrm.toml:5:26 warning CLNRM_VOLUME_ABSOLUTE')
    const run = await cli(['run', '.'], dir)
    expect(run.code, run.stdout + run.stderr).toBe(0)
    expect(clnrmContainers(run.pid)).toEqual([])
    writeFileSync(join(dir, 'abs.clnrm.toml'), file(join(outsideDir, 'missing')))
    const missing = await cli(['run', '.'], dir)
    expect(missing.code).not.toBe(0)
    expect(missing.stderr).toContain('abs.clnrm.toml:5:26 error CLNRM_VOLUME_NOT_FOUND')
    expect(clnrmContainers(missing.pid)).toEqual([])
  })
})

describe('a default image for steps without a service', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir('clnrm-default-image-')))
  afterEach(() => cleanup())
  const noServices = `[meta]\nname = "bare"\n[[steps]]\nname = "hello"\nrun = "echo hello"\nexpected_output_contains = "hello"\n`
  const twoServices = (image: string) => `[meta]\nname = "two"\n[services.a]\nimage = "${image}"\n[services.b]\nimage = "${image}"\n[[steps]]\nname = "unnamed"\nrun = "true"\n[[steps]]\nname = "named"\nservice = "b"\nrun = "true"\n`

  it('runs them in the service clnrm-default, from clnrm.toml or upstream\'s cleanroom.toml; without one the located errors stay', async () => {
    const load = (defaultImage: string | undefined, text: string) =>
      createTestLoader({ project: { root: dir, vars: {}, determinism: {}, defaultImage } }).loadSource(join(dir, 't.clnrm.toml'), text)
    const bare = load('busybox:1.36', noServices)
    expect(bare.diagnostics).toEqual([])
    expect(bare.spec!.services['clnrm-default']).toMatchObject({ image: 'busybox:1.36', plugin: 'generic_container', reuse: true })
    expect(bare.spec!.steps[0]!.service).toBe('clnrm-default')
    const two = load('busybox:1.36', twoServices('busybox:1.36'))
    expect(two.spec!.steps.map(s => s.service)).toEqual(['clnrm-default', 'b'])
    expect(Object.keys(two.spec!.services).sort()).toEqual(['a', 'b', 'clnrm-default'])
    expect(load(undefined, noServices).diagnostics.map(d => [d.code, d.line])).toEqual([['CLNRM_NO_SERVICES', 3]])
    expect(load(undefined, twoServices('busybox:1.36')).diagnostics.map(d => [d.code, d.line])).toEqual([['CLNRM_AMBIGUOUS_SERVICE', 7]])

    writeFileSync(join(dir, 'cleanroom.toml'), '[project]\nname = "up"\n[containers]\ndefault_image = "alpine:3.20"\nreuse_enabled = true\n')
    expect((await loadProject({ root: dir })).defaultImage).toBe('alpine:3.20')
    writeFileSync(join(dir, 'clnrm.toml'), '[containers]\ndefault_image = "busybox:1.36"\n')
    const project = await loadProject({ root: dir })
    expect(project.defaultImage).toBe('busybox:1.36')
    expect(project.warnings).toEqual([])
    writeFileSync(join(dir, 'clnrm.toml'), '[containers]\ndefault_image = "../not-an-image"\n')
    await expect(loadProject({ root: dir })).rejects.toMatchObject({ diagnostics: [expect.objectContaining({ code: 'CLNRM_PROJECT_FILE', line: 2 })] })
  })

  it('through the CLI: run passes in the default image, reuses its container across tests, and leaves none behind', async () => {
    writeFileSync(join(dir, 'clnrm.toml'), `[containers]\ndefault_image = "${IMAGE}"\n`)
    writeFileSync(join(dir, 'a.clnrm.toml'), noServices)
    writeFileSync(join(dir, 'b.clnrm.toml'), noServices.replace('"bare"', '"bare too"'))
    writeFileSync(join(dir, 'c.clnrm.toml'), twoServices(IMAGE))
    const dry = await cli(['dry-run', 'a.clnrm.toml'], dir)
    expect(dry.code).toBe(0)
    expect(dry.stdout).toContain(`clnrm-default  ${IMAGE}`)
    const run = await cli(['run', '.', '--jobs', '1', '--reporter', 'json'], dir)
    expect(run.code, run.stdout + run.stderr).toBe(0)
    const report = JSON.parse(run.stdout)
    const tests = (report.tests ?? report.results) as Array<{ name: string; status: string; timings: { reused: Record<string, boolean> } }>
    expect(tests.map(t => t.status)).toEqual(['pass', 'pass', 'pass'])
    // One pooled container serves every test that uses the default image, one after another.
    expect(tests.filter(t => t.timings.reused['clnrm-default'] === true).length).toBeGreaterThanOrEqual(1)
    expect(clnrmContainers(run.pid)).toEqual([])
    // Without a default image, the same files keep their located errors.
    writeFileSync(join(dir, 'clnrm.toml'), '')
    const validate = await cli(['validate', '.'], dir)
    expect(validate.code).toBe(1)
    expect(validate.stdout).toContain('a.clnrm.toml:3:1 error CLNRM_NO_SERVICES')
    expect(validate.stdout).toContain('c.clnrm.toml:7:1 error CLNRM_AMBIGUOUS_SERVICE')
  })
})

describe('upstream spellings, through the CLI', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir('clnrm-upstream-schema-')))
  afterEach(() => cleanup())
  const write = (name: string, text: string): void => writeFileSync(join(dir, name), text)

  it('plugin + type validate, dry-run notes the label, and run passes in a generic container', async () => {
    write('labels.clnrm.toml', `[meta]\nname = "labels"\n[services.db]\ntype = "generic_container"\nplugin = "postgres"\nimage = "${IMAGE}"\n[services.web]\ntype = "otel_collector"\nplugin = "generic_container"\nimage = "${IMAGE}"\n[[steps]]\nname = "s"\nservice = "db"\nrun = "echo ok"\nexpected_output_regex = "ok"\n`)
    const validate = await cli(['validate', '.'], dir)
    expect(validate.stdout + validate.stderr).not.toMatch(/CLNRM_/)
    expect(validate.code).toBe(0)
    const dry = await cli(['dry-run', '.'], dir)
    expect(dry.code).toBe(0)
    expect(dry.stdout).toMatch(/plugin "postgres" is a label: started as a generic container/)
    expect(dry.stdout.match(/is a label/g)).toHaveLength(1)
    const run = await cli(['run', '.'], dir)
    expect(run.code, run.stdout + run.stderr).toBe(0)
    expect(run.stdout).toMatch(/passed/)
    expect(clnrmContainers(run.pid)).toEqual([])
  })

  it('a scenario with run and nested steps runs both, run first, and a failing nested step fails the test', async () => {
    const scenario = (check: string) => `[meta]\nname = "both"\n[services.app]\nimage = "${IMAGE}"\n[[scenario]]\nname = "setup"\nrun = "echo one > order"\n[[scenario.steps]]\nname = "check"\nrun = "cat order"\nexpected_output_regex = "${check}"\n`
    write('both.clnrm.toml', scenario('one'))
    const dry = await cli(['dry-run', '.'], dir)
    expect(dry.code).toBe(0)
    expect(dry.stdout).toMatch(/1\. setup in app[^]*2\. setup › check in app/)
    const pass = await cli(['run', '.'], dir)
    expect(pass.code, pass.stdout + pass.stderr).toBe(0)
    expect(clnrmContainers(pass.pid)).toEqual([])
    write('both.clnrm.toml', scenario('two'))
    const fail = await cli(['run', '.'], dir)
    expect(fail.code).toBe(1)
    expect(fail.stdout + fail.stderr).toMatch(/setup › check/)
    expect(clnrmContainers(fail.pid)).toEqual([])
  })

  it('expected_output_contains and should_fail pass and fail a real run, shown in dry-run', async () => {
    const steps = (contains: string, failing: string) => `[meta]\nname = "checks"\n[services.app]\nimage = "${IMAGE}"\n[[steps]]\nname = "greets"\nrun = "echo 'a.b (c)'"\nexpected_output_contains = ["a.b", "${contains}"]\n[[steps]]\nname = "refuses"\nrun = "${failing}"\nshould_fail = true\n`
    write('checks.clnrm.toml', steps('(c)', 'exit 4'))
    const validate = await cli(['validate', '.'], dir)
    expect(validate.code, validate.stdout).toBe(0)
    const dry = await cli(['dry-run', '.'], dir)
    expect(dry.stdout).toContain('stdout contains "(c)"')
    expect(dry.stdout).toContain('exit code not 0')
    const pass = await cli(['run', '.'], dir)
    expect(pass.code, pass.stdout + pass.stderr).toBe(0)
    expect(clnrmContainers(pass.pid)).toEqual([])
    write('checks.clnrm.toml', steps('(d)', 'exit 4'))
    const missing = await cli(['run', '.'], dir)
    expect(missing.code).toBe(1)
    expect(missing.stdout + missing.stderr).toContain('expected_output_contains = "(d)"')
    write('checks.clnrm.toml', steps('(c)', 'true'))
    const succeeded = await cli(['run', '.'], dir)
    expect(succeeded.code).toBe(1)
    expect(succeeded.stdout + succeeded.stderr).toContain('should_fail = true')
    expect(clnrmContainers(succeeded.pid)).toEqual([])
  })

  it('descriptions show in dry-run and with a failing step, in the json report, and never warn', async () => {
    const text = (regex: string) => `[meta]\nname = "described"\ndescription = "Proves the greeting"\ntags = ["smoke"]\nauthor = "me"\nversion = "1"\n[services.app]\nimage = "${IMAGE}"\ndescription = "The greeter box"\n[[steps]]\nname = "greets"\ndescription = "Says hello"\nrun = "echo hello"\nexpected_output_regex = "${regex}"\n`
    write('described.clnrm.toml', text('hello'))
    const validate = await cli(['validate', '.'], dir)
    expect(validate.code).toBe(0)
    expect(validate.stdout).toContain('0 errors, 0 warnings')
    expect(validate.stdout + validate.stderr).not.toMatch(/CLNRM_/)
    const dry = await cli(['dry-run', '.'], dir)
    expect(dry.stdout).toContain('The greeter box')
    expect(dry.stdout).toContain('Says hello')
    write('described.clnrm.toml', text('goodbye'))
    const run = await cli(['run', '.'], dir)
    expect(run.code).toBe(1)
    expect(run.stdout).toContain('Proves the greeting')
    expect(run.stdout).toMatch(/✗ step "greets"[^\n]*\n\s+checks Says hello/)
    expect(clnrmContainers(run.pid)).toEqual([])
    const json = await cli(['run', '.', '--reporter', 'json'], dir)
    const report = JSON.parse(json.stdout)
    expect(JSON.stringify(report)).toContain('"description":"Says hello"')
    expect(JSON.stringify(report)).toContain('"description":"Proves the greeting"')
    expect(clnrmContainers(json.pid)).toEqual([])
    const junit = await cli(['run', '.', '--reporter', 'junit'], dir)
    expect(junit.stdout).toContain('<property name="description" value="Says hello"/>')
    expect(clnrmContainers(junit.pid)).toEqual([])
  })

  it('without clnrm.toml the root is the working directory, in validate, dry-run and run alike', async () => {
    mkdirSync(join(dir, 'tests'))
    mkdirSync(join(dir, 'data'))
    writeFileSync(join(dir, 'data', 'beside.txt'), 'beside the tests\n')
    writeFileSync(join(dir, 'tests', 'beside.clnrm.toml'), `[meta]\nname = "beside"\n[services.app]\nimage = "${IMAGE}"\nvolumes = [{ host_path = "../data", container_path = "/data", read_only = true }]\n[[steps]]\nrun = "cat /data/beside.txt"\nexpected_output_contains = "beside the tests"\n`)
    for (const command of ['validate', 'dry-run']) {
      const result = await cli([command, 'tests/beside.clnrm.toml'], dir)
      expect(result.code, result.stdout + result.stderr).toBe(0)
      expect(result.stdout + result.stderr).not.toContain('CLNRM_VOLUME_OUTSIDE_ROOT')
    }
    const run = await cli(['run', 'tests/beside.clnrm.toml'], dir)
    expect(run.code, run.stdout + run.stderr).toBe(0)
    expect(clnrmContainers(run.pid)).toEqual([])
    // From inside tests/, the working directory is the root and ../data leaves it.
    const inside = await cli(['validate', 'beside.clnrm.toml'], join(dir, 'tests'))
    expect(inside.code).toBe(1)
    expect(inside.stdout).toContain('beside.clnrm.toml:5:26 error CLNRM_VOLUME_OUTSIDE_ROOT')
    // A path outside the working directory is its own root: the same error, not a root above it.
    const elsewhere = await cli(['validate', join(dir, 'tests', 'beside.clnrm.toml')], join(dir, 'data'))
    expect(elsewhere.code).toBe(1)
    expect(elsewhere.stdout).toContain('CLNRM_VOLUME_OUTSIDE_ROOT')
  })

  it('an upstream plugin clnrm lacks, without type = "generic_container", is a located CLNRM_NOT_SUPPORTED in validate and run', async () => {
    write('bad.clnrm.toml', `[meta]\nname = "bad"\n[services.db]\nplugin = "surrealdb"\nimage = "${IMAGE}"\n[[steps]]\nrun = "true"\n`)
    const validate = await cli(['validate', '.'], dir)
    expect(validate.code).toBe(1)
    expect(validate.stdout).toContain('bad.clnrm.toml:4:10 error CLNRM_NOT_SUPPORTED')
    expect(validate.stdout).toContain('type = "generic_container"')
    const run = await cli(['run', '.'], dir)
    expect(run.code).not.toBe(0)
    expect(clnrmContainers(run.pid)).toEqual([])
  })
})
