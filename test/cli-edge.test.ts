import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { spawnCli } from './cli-process.ts'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'

const cliIndex = resolve(import.meta.dirname, '../dist/cli/index.mjs')
const LOOP = '[meta]\nname = "loop"\n<% for (let i = 0; i < 10; i--) {} %>\n'
const valid = (name: string): string => `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "ok"\nrun = "true"\n`

describe('the CLI edge: exit codes, the exit guard, render deadlines (built CLI)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('exits even when something keeps the event loop alive after the command: says what, and keeps the exit code', async () => {
    // A program embedding runMain leaks an interval; the guard must still end the process.
    await writeFile(join(dir, 'ok.clnrm.toml'), valid('ok'))
    await writeFile(join(dir, 'bad.clnrm.toml'), '[meta]\nname = 1\n')
    const script = (args: string[]): string[] => ['--input-type=module', '-e', `setInterval(() => {}, 1000); const { runMain } = await import(${JSON.stringify(cliIndex)}); await runMain(${JSON.stringify(args)})`]
    const ok = spawnCli([], dir, { script: script(['validate', 'ok.clnrm.toml']) })
    const exit = await ok.exited
    expect(exit.code).toBe(0)
    expect(exit.ms).toBeLessThan(20_000)
    expect(clnrmContainers(ok.pid)).toEqual([])
    // Node lists the stdio pipes too; the leaked interval is the Timeout.
    expect(ok.stderr()).toMatch(/clnrm: still running 2s after finishing \(kept alive by [^)]*\bTimeout\b[^)]*\); exiting with code 0\. DEBUG=clnrm shows more\./)
    const bad = spawnCli([], dir, { script: script(['validate', 'bad.clnrm.toml']), env: { DEBUG: 'clnrm' } })
    expect((await bad.exited).code).toBe(1)
    expect(bad.stderr()).toMatch(/clnrm: active resources: [^\n]*\bTimeout\b/)
  })

  it('a command that ends normally exits without the guard\'s note', async () => {
    await writeFile(join(dir, 'ok.clnrm.toml'), valid('ok'))
    const cli = spawnCli(['run', '.'], dir)
    const exit = await cli.exited
    expect(exit.code).toBe(0)
    expect(cli.stderr()).not.toMatch(/still running/)
    expect(clnrmContainers(cli.pid)).toEqual([])
  })

  it('an internal error exits 70 with a one-line cause; DEBUG=clnrm adds the stack', async () => {
    await writeFile(join(dir, 'afile'), '')
    const plain = spawnCli(['init', 'afile/sub'], dir)
    const exit = await plain.exited
    expect(exit.code).toBe(70)
    expect(exit.ms).toBeLessThan(20_000)
    expect(plain.stderr()).toMatch(/^clnrm: internal error: ENOTDIR: not a directory, mkdir '[^']*afile\/sub'\nRun again with DEBUG=clnrm for the stack, and please report it\.\n$/)
    const debug = spawnCli(['init', 'afile/sub'], dir, { env: { DEBUG: 'clnrm' } })
    expect((await debug.exited).code).toBe(70)
    expect(debug.stderr()).toMatch(/\n\s+at /)
  })

  it('documents the exit codes in --help of the CLI and of each command', async () => {
    for (const args of [['--help'], ['run', '--help'], ['dev', '--help'], ['validate', '--help']]) {
      const help = spawnCli(args, dir)
      expect((await help.exited).code).toBe(0)
      expect(help.stdout()).toMatch(/Exit codes:\n {2}0 {4}every test passed[^\n]*\n {2}1 {4}a test failed, or a test file is invalid\n {2}2 {4}usage error, invalid clnrm\.toml, or no Docker engine\n {2}70 {3}internal error/)
    }
  })

  it('a template that loops forever is a located CLNRM_TEMPLATE_TIMEOUT in validate, render and run, within the deadline', async () => {
    await mkdir(join(dir, 'tests'))
    await writeFile(join(dir, 'tests/loop.clnrm.toml.eta'), LOOP)
    await writeFile(join(dir, 'tests/_spin.eta'), '# a partial\n\n<% while (true) {} %>\n')
    await writeFile(join(dir, 'tests/nested.clnrm.toml.eta'), '[meta]\nname = "nested"\n<%~ include("./_spin") %>\n')
    const validate = spawnCli(['validate', 'tests'], dir)
    const exit = await validate.exited
    expect(exit.code).toBe(1)
    expect(exit.ms).toBeLessThan(30_000)
    expect(validate.stdout()).toMatch(/tests\/loop\.clnrm\.toml\.eta:3:1 error CLNRM_TEMPLATE_TIMEOUT\n {4}Template did not finish rendering within 2s: is a loop endless\?/)
    // In a partial, the partial's line is named.
    expect(validate.stdout()).toMatch(/tests\/_spin\.eta:3:1 error CLNRM_TEMPLATE_TIMEOUT/)

    const render = spawnCli(['render', 'tests/loop.clnrm.toml.eta', '--render-timeout', '300ms'], dir)
    expect((await render.exited).code).toBe(1)
    expect(render.stderr()).toMatch(/loop\.clnrm\.toml\.eta:3:1 error CLNRM_TEMPLATE_TIMEOUT\n {2}Template did not finish rendering within 0\.3s/)
    expect((await spawnCli(['render', 'tests/loop.clnrm.toml.eta', '--render-timeout', 'soon'], dir).exited).code).toBe(2)

    await writeFile(join(dir, 'clnrm.toml'), 'render_timeout = "250ms"\n')
    await writeFile(join(dir, 'tests/ok.clnrm.toml'), valid('ok'))
    const run = spawnCli(['run', 'tests'], dir)
    expect((await run.exited).code).toBe(1)
    expect(run.stderr()).toMatch(/tests\/loop\.clnrm\.toml\.eta:3:1 error CLNRM_TEMPLATE_TIMEOUT\n {2}Template did not finish rendering within 0\.25s/)
    expect(run.stdout()).toMatch(/✓ ok/)
    expect(run.stdout()).toMatch(/Tests: 1 passed, 2 invalid \(3\)/)
    expect(clnrmContainers(run.pid)).toEqual([])
  })
})
