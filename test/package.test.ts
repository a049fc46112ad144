import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Runtime } from './runtimes/contract.ts'
import { runCli } from './runtimes/contract.ts'
import { tempDir } from './helpers.ts'

const exec = promisify(execFile)
const root = resolve(import.meta.dirname, '..')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

// What a user gets: the `npm pack` tarball installed into an empty directory.
describe('the npm package', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let files: string[]

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('clnrm-pack-'))
    const { stdout } = await exec(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: root })
    const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>
    files = packed!.files.map(f => f.path)
    await writeFile(join(dir, 'package.json'), '{ "name": "consumer", "private": true, "type": "module" }\n')
    await exec(npm, ['install', '--no-audit', '--no-fund', '--ignore-scripts', join(dir, packed!.filename)], { cwd: dir })
    await exec(process.execPath, [join(dir, 'node_modules/clnrm/dist/cli/bin.mjs'), 'init', '.'], { cwd: dir })
  }, 180_000)
  afterAll(() => cleanup())

  it('ships the build, types and schema, and no tests, fixtures or playground', () => {
    expect(files).toContain('dist/cli/bin.mjs')
    expect(files).toContain('dist/core/index.d.mts')
    expect(files).toContain('dist/plugin-vite/index.d.mts')
    expect(files).toContain('clnrm.schema.json')
    expect(files.filter(f => /^(test|playground|bench|core|cli|plugin-vite)\//.test(f))).toEqual([])
  })

  it('resolves its exports from a consumer', async () => {
    const script = `import('clnrm').then(m => import('clnrm/cli').then(c => import('clnrm/vite').then(v => console.log(typeof m.createTestLoader, typeof c.main, typeof v.clnrm))))`
    const { stdout } = await exec(process.execPath, ['-e', script], { cwd: dir })
    expect(stdout.trim()).toBe('function function function')
  })

  const installed = (runtime: Omit<Runtime, 'prefix'>, prefix: string[]): Runtime => ({ ...runtime, prefix })
  const runtimes: Runtime[] = [
    installed({ name: 'npx (node)', command: npm }, ['exec', '--no', '--', 'clnrm']),
    installed({ name: 'bun', command: join(root, 'node_modules/.bin/bun') }, ['x', 'clnrm']),
    installed({ name: 'deno', command: join(root, 'node_modules/.bin/deno') }, ['run', '-A', 'npm:clnrm']),
  ]
  for (const runtime of runtimes) {
    it(`runs validate, dry-run and render with ${runtime.name}`, async () => {
      const validate = await runCli(runtime, ['validate'], dir)
      expect(validate.stdout + validate.stderr).toMatch(/2 files: 2 valid/)
      expect(validate.code).toBe(0)
      const plan = await runCli(runtime, ['dry-run', 'tests/hello.clnrm.toml'], dir)
      expect(plan.code).toBe(0)
      expect(plan.stdout).toContain('say hello')
      const render = await runCli(runtime, ['render', 'tests/greeting.clnrm.toml.eta', '--var', 'greeting=hej'], dir)
      expect(render.code).toBe(0)
      expect(render.stdout).toMatch(/expected_output_regex = "(\(\?m\))?\^hej, world\$"/)
    }, 120_000)
  }
})

describe('the JSR package', () => {
  it('passes `deno publish --dry-run` (types, no slow types, exports resolve)', async () => {
    const { stdout, stderr } = await exec(join(root, 'node_modules/.bin/deno'), ['publish', '--dry-run', '--allow-dirty'], { cwd: root, env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' }, timeout: 180_000 })
    const output = stdout + stderr
    expect(output).toContain('Success Dry run complete')
    expect(output).toContain('plugin-vite/index.ts')
    expect(output).not.toMatch(/test\/|playground\//)
  }, 200_000)
})

