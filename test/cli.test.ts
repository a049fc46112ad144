import { readFile, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { commands, main } from '../cli/index.ts'
import { createTestLoader, loadProject } from '../core/index.ts'
import { tempDir } from './helpers.ts'

function run(argv: string[], cwd: string, env: Record<string, string> = {}) {
  let stdout = ''
  let stderr = ''
  const result = main(argv, { cwd, env: { NO_COLOR: '1', ...env }, isTTY: false, stdout: t => void (stdout += t), stderr: t => void (stderr += t) })
  return result.then(code => ({ code, stdout, stderr }))
}

describe('clnrm CLI (in-process)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('init writes a project that validates, and never overwrites', async () => {
    const init = await run(['init'], dir)
    expect(init.code).toBe(0)
    expect(init.stdout).toMatch(/created tests\/hello\.clnrm\.toml/)
    await writeFile(join(dir, 'tests/hello.clnrm.toml'), '# mine\n')
    const again = await run(['init'], dir)
    expect(again.stdout).toMatch(/skipped tests\/hello\.clnrm\.toml/)
    expect(await readFile(join(dir, 'tests/hello.clnrm.toml'), 'utf8')).toBe('# mine\n')
    await run(['init', 'fresh'], dir)
    const validate = await run(['validate', 'fresh'], dir)
    expect(validate.code).toBe(0)
    expect(validate.stdout).toMatch(/2 files: 2 valid, 0 invalid/)
  })

  it('validate exits 1 on an invalid file and reports it as JSON', async () => {
    await writeFile(join(dir, 'bad.clnrm.toml'), '[meta]\nname = "b"\n[services.a]\nimage = 1\n[[steps]]\nrun = "true"\n')
    const human = await run(['validate', 'bad.clnrm.toml'], dir)
    expect(human.code).toBe(1)
    expect(human.stdout).toMatch(/bad\.clnrm\.toml:4:9 error CLNRM_INVALID_TYPE/)
    expect(human.stdout).not.toMatch(/\x1B\[/)
    const json = await run(['validate', 'bad.clnrm.toml', '--reporter', 'json'], dir)
    const report = JSON.parse(json.stdout)
    expect(report.summary).toEqual({ files: 1, valid: 0, invalid: 1, errors: 1, warnings: 0 })
    expect(report.files[0].diagnostics[0]).toMatchObject({ code: 'CLNRM_INVALID_TYPE', line: 4, column: 9 })
  })

  it('colors only when asked', async () => {
    await run(['init'], dir)
    expect((await run(['validate', '--no-color'], dir, { NO_COLOR: '', FORCE_COLOR: '1' })).stdout).not.toMatch(/\x1B\[/)
    expect((await run(['validate'], dir, { NO_COLOR: '', FORCE_COLOR: '1' })).stdout).toMatch(/\x1B\[/)
  })

  it('exits 2 on usage errors: unknown command, unknown option, unmatched path, broken project file', async () => {
    expect((await run(['frobnicate'], dir)).code).toBe(2)
    const badOption = await run(['validate', '--nope'], dir)
    expect(badOption.code).toBe(2)
    expect(badOption.stderr).toMatch(/--nope/)
    expect((await run(['validate', 'missing/'], dir)).code).toBe(2)
    expect((await run(['validate', '--reporter', 'xml'], dir)).code).toBe(2)
    await writeFile(join(dir, 'clnrm.toml'), '[vars\n')
    const broken = await run(['validate'], dir)
    expect(broken.code).toBe(2)
    expect(broken.stderr).toMatch(/clnrm\.toml:1:\d+ error CLNRM_TOML_SYNTAX/)
  })

  it('has --help for every command and --version', async () => {
    for (const command of commands) {
      const help = await run([command.name, '--help'], dir)
      expect(help.code).toBe(0)
      expect(help.stdout).toContain(`clnrm ${command.name}`)
      expect(help.stdout).toContain('--help')
    }
    expect((await run(['--help'], dir)).stdout).toMatch(/Commands:/)
    expect((await run(['--version'], dir)).stdout).toMatch(/^\d+\.\d+\.\d+\n$/)
  })

  it('render applies --var over [vars] and reports template errors with their line', async () => {
    await run(['init'], dir)
    const out = await run(['render', 'tests/greeting.clnrm.toml.eta', '--var', 'greeting=howdy'], dir)
    expect(out.code).toBe(0)
    expect(out.stdout).toContain('expected_output_regex = "(?m)^howdy, world$"')
    await writeFile(join(dir, 'tests/broken.clnrm.toml.eta'), '[meta]\nname = <%= it.nope.deeper %>\n')
    const broken = await run(['render', 'tests/broken.clnrm.toml.eta'], dir)
    expect(broken.code).toBe(1)
    expect(broken.stderr).toMatch(/broken\.clnrm\.toml\.eta:2:8 error CLNRM_TEMPLATE_RUNTIME/)
  })

  it('dry-run prints the plan with port env vars, and JSON plans', async () => {
    await writeFile(join(dir, 'web.clnrm.toml'), '[meta]\nname = "web"\n[services.web]\nimage = "busybox:1.36"\nports = [8080]\n[[steps]]\nrun = "true"\n')
    const human = await run(['dry-run', 'web.clnrm.toml'], dir)
    expect(human.code).toBe(0)
    expect(human.stdout).toContain('port 8080 → host port in $SERVICE_WEB_PORT_8080')
    const json = JSON.parse((await run(['dry-run', 'web.clnrm.toml', '--reporter', 'json'], dir)).stdout)
    expect(json.plans[0].steps[0].argv).toEqual(['sh', '-c', 'true'])
  })

  it('fmt --check reports, fmt rewrites, templates are left alone', async () => {
    const messy = '[meta]\ndescription = "d"\nname = "n"\n[services.a]\nimage = "x"\n[[steps]]\nrun = "true"\nname = "s"\n'
    await writeFile(join(dir, 'a.clnrm.toml'), messy)
    await writeFile(join(dir, 'b.clnrm.toml.eta'), '[meta]\nname = "<%= 1 %>"\n')
    const check = await run(['fmt', '--check', '.'], dir)
    expect(check.code).toBe(1)
    expect(check.stdout).toContain('would format a.clnrm.toml')
    expect(check.stderr).toContain('1 template left alone')
    expect(await readFile(join(dir, 'a.clnrm.toml'), 'utf8')).toBe(messy)
    expect((await run(['fmt', '.'], dir)).code).toBe(0)
    expect(await readFile(join(dir, 'a.clnrm.toml'), 'utf8')).toMatch(/^\[meta\]\nname = "n"\ndescription = "d"\n/)
    expect((await run(['fmt', '--check', '.'], dir)).code).toBe(0)
  })
})

describe('config cache', () => {
  it('an unchanged render is a hit even when the file was touched', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      await run(['init'], dir)
      const project = await loadProject({ root: dir })
      const loader = createTestLoader({ project })
      const file = join(dir, 'tests/greeting.clnrm.toml.eta')
      expect((await loader.load(file)).cache).toEqual({ template: 'miss', config: 'miss' })
      await utimes(file, new Date(), new Date(Date.now() + 5000))
      expect((await loader.load(file)).cache).toEqual({ template: 'hit', config: 'hit' })
      await writeFile(file, `${await readFile(file, 'utf8')}\n# changed\n`)
      expect((await loader.load(file)).cache).toEqual({ template: 'miss', config: 'miss' })
      expect(loader.configCache.stats()).toMatchObject({ hits: 1, misses: 2 })
    }
    finally {
      await cleanup()
    }
  })
})
