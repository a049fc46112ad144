import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { clnrmContainers, IMAGE } from './engine.ts'
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

  it('a plugin clnrm cannot start stays an error unless type says it is a generic container', () => {
    const file = fixture('valid', 'x.clnrm.toml')
    const source = (service: string) => `[meta]\nname = "t"\n[services.db]\nimage = "busybox:1.36"\n${service}[[steps]]\nrun = "true"\n`
    const errors = (service: string) => loader.loadSource(file, source(service)).diagnostics.filter(d => d.severity === 'error').map(d => [d.code, d.line, d.column])
    expect(errors('plugin = "surrealdb"\n')).toEqual([['CLNRM_INVALID_VALUE', 5, 10]])
    expect(errors('plugin = "surrealdb"\ntype = "surrealdb"\n')).toEqual([['CLNRM_INVALID_VALUE', 5, 10]])
    expect(errors('type = "surrealdb"\n')).toEqual([['CLNRM_INVALID_VALUE', 5, 8]])
    expect(errors('type = "generic_container"\n')).toEqual([])
    expect(errors('plugin = "postgres"\ntype = "generic_container"\n')).toEqual([])
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

  it('an unknown plugin without type = "generic_container" is a located error in validate and run', async () => {
    write('bad.clnrm.toml', `[meta]\nname = "bad"\n[services.db]\nplugin = "surrealdb"\nimage = "${IMAGE}"\n[[steps]]\nrun = "true"\n`)
    const validate = await cli(['validate', '.'], dir)
    expect(validate.code).toBe(1)
    expect(validate.stdout).toContain('bad.clnrm.toml:4:10 error CLNRM_INVALID_VALUE')
    expect(validate.stdout).toContain('type = "generic_container"')
    const run = await cli(['run', '.'], dir)
    expect(run.code).not.toBe(0)
    expect(clnrmContainers(run.pid)).toEqual([])
  })
})
