import { spawn } from 'node:child_process'
import { cpSync } from 'node:fs'
import { resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { clnrmContainers } from './engine.ts'
import { fixture, tempDir } from './helpers.ts'

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
