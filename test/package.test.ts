import { execFile, execFileSync, spawn } from 'node:child_process'
import { cp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Runtime } from './runtimes/contract.ts'
import { runCli } from './runtimes/contract.ts'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'

const exec = promisify(execFile)
const root = resolve(import.meta.dirname, '..')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

// What a user gets: the `npm pack` tarball installed into an empty directory.
describe('the npm package', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let files: string[]
  let manifest: { scripts?: Record<string, string>; bin?: Record<string, string>; exports?: Record<string, Record<string, string>> }
  let copyManifest: { before: string; after: string }

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('clnrm-pack-'))
    // `npm pack` as a maintainer runs it, lifecycle scripts included (prepack builds and cleans the
    // manifest, postpack restores it), in a copy of the sources: a build here would empty the dist/
    // that the other suites' CLIs run from.
    const copy = join(dir, 'src')
    await mkdir(copy)
    for (const name of ['package.json', 'tsconfig.json', 'tsdown.config.ts', 'clnrm.schema.json', 'README.md', 'LICENSE', 'core', 'cli', 'plugin-vite', 'plugin-vitest', 'scripts/pack-manifest.mjs']) {
      await cp(join(root, name), join(copy, name), { recursive: true })
    }
    await symlink(join(root, 'node_modules'), join(copy, 'node_modules'))
    const before = await readFile(join(copy, 'package.json'), 'utf8')
    const { stdout } = await exec(npm, ['pack', '--json', '--pack-destination', dir], { cwd: copy, timeout: 120_000 })
    copyManifest = { before, after: await readFile(join(copy, 'package.json'), 'utf8') }
    const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>
    files = packed!.files.map(f => f.path)
    manifest = JSON.parse((await exec('tar', ['-xOzf', join(dir, packed!.filename), 'package/package.json'])).stdout)
    await writeFile(join(dir, 'package.json'), '{ "name": "consumer", "private": true, "type": "module" }\n')
    await exec(npm, ['install', '--no-audit', '--no-fund', '--ignore-scripts', join(dir, packed!.filename)], { cwd: dir })
    await exec(process.execPath, [join(dir, 'node_modules/clnrm/dist/cli/bin.mjs'), 'init', '.'], { cwd: dir })
  }, 180_000)
  afterAll(() => cleanup())

  it('ships the build, types and schema, and no tests, fixtures or playground', () => {
    expect(files).toContain('dist/cli/bin.mjs')
    expect(files).toContain('dist/core/index.d.mts')
    expect(files).toContain('dist/plugin-vite/index.d.mts')
    expect(files).toContain('dist/plugin-vitest/index.d.mts')
    expect(files).toContain('dist/plugin-vitest/runtime.mjs')
    expect(files).toContain('dist/plugin-vitest/global-setup.mjs')
    expect(files).toContain('clnrm.schema.json')
    expect(files.filter(f => /^(test|playground|bench|core|cli|plugin-vite|plugin-vitest)\//.test(f))).toEqual([])
  })

  it('the packed package.json runs nothing on install and names no file outside the tarball; the working copy is restored', () => {
    const scripts = manifest.scripts ?? {}
    for (const hook of ['preinstall', 'install', 'postinstall', 'prepare', 'preprepare', 'postprepare']) expect(scripts).not.toHaveProperty(hook)
    // Every path a script, the bin or an export names ships in the tarball.
    const named = [
      ...Object.values(scripts).flatMap(script => script.match(/(?:\.{0,2}\/)?[\w.@-]+(?:\/[\w.@-]+)+|[\w.-]+\.(?:sh|mjs|cjs|js|ts)\b/g) ?? []),
      ...Object.values(manifest.bin ?? {}),
      ...Object.values(manifest.exports ?? {}).flatMap(conditions => Object.values(conditions)),
    ].map(path => path.replace(/^\.\//, ''))
    expect(named.length).toBeGreaterThan(0)
    expect(named.filter(path => !files.includes(path))).toEqual([])
    // The repository's own scripts run files that do not ship: they stay out of the package.
    const own = JSON.parse(copyManifest.before) as { scripts: Record<string, string> }
    expect(own.scripts.predev).toMatch(/scripts\/setup-docker\.sh/)
    expect(files).not.toContain('scripts/setup-docker.sh')
    expect(copyManifest.after).toBe(copyManifest.before)
  })

  it('resolves its exports from a consumer', async () => {
    const script = `import('clnrm').then(m => import('clnrm/cli').then(c => import('clnrm/vite').then(v => import('clnrm/vitest').then(t => console.log(typeof m.createTestLoader, typeof c.main, typeof v.clnrm, typeof t.clnrm)))))`
    const { stdout } = await exec(process.execPath, ['-e', script], { cwd: dir })
    expect(stdout.trim()).toBe('function function function function')
  })

  it('its public types need neither dockerode nor testcontainers types: a strict consumer without @types/dockerode type-checks them (skipLibCheck off)', async () => {
    const declarations = files.filter(f => f.endsWith('.d.mts'))
    expect(declarations.length).toBeGreaterThan(10)
    const leaking: string[] = []
    for (const file of declarations) {
      const text = await readFile(join(dir, 'node_modules/clnrm', file), 'utf8')
      if (/from ["'](dockerode|testcontainers|docker-modem)["']|import\(["'](dockerode|testcontainers)["']\)/.test(text)) leaking.push(file)
    }
    expect(leaking).toEqual([])
    // What a user with a strict package manager has: clnrm's dependencies, @types/node, no dev types.
    const user = join(dir, 'types-user')
    await mkdir(user, { recursive: true })
    await writeFile(join(user, 'use.ts'), [
      'import { ContainerPool, connectDocker, ClnrmError } from \'clnrm\'',
      'import type { EngineConnection, EngineAdapter } from \'clnrm\'',
      'export const pool: Promise<ContainerPool> = ContainerPool.create()',
      'export const engine: Promise<EngineAdapter> = connectDocker().then((c: EngineConnection) => c.engine)',
      'export const coded = (e: unknown): string | undefined => (e instanceof ClnrmError ? e.code : undefined)',
      '',
    ].join('\n'))
    await writeFile(join(user, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, skipLibCheck: false, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2023', types: ['node'], typeRoots: [join(root, 'node_modules/@types')] },
      files: ['use.ts'],
    }))
    const tsc = await exec(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', user], { cwd: dir }).then(r => r, (e: { stdout: string; code: number }) => e)
    expect(tsc.stdout).toBe('')
  })

  it('clnrm/vitest from the installed package runs clnrm tests under the consumer\'s Vitest (its runtime loaded from node_modules)', async () => {
    const project = join(dir, 'vitest-user')
    await mkdir(join(project, 'tests'), { recursive: true })
    // The consumer's Vitest: this repository's, as if installed beside clnrm.
    await symlink(join(root, 'node_modules/vitest'), join(dir, 'node_modules/vitest')).catch(() => undefined)
    await writeFile(join(project, 'vitest.config.js'), 'import { clnrm } from \'clnrm/vitest\'\nexport default { plugins: [clnrm()] }\n')
    await writeFile(join(project, 'tests/check.clnrm.toml'), `[meta]\nname = "check"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "greets"\nrun = "echo hi"\nexpected_output_regex = "^hi"\n[[steps]]\nname = "fails"\nrun = "echo no"\nexpected_output_regex = "^yes"\n`)
    const result = await exec(process.execPath, [join(dir, 'node_modules/vitest/vitest.mjs'), 'run', '--reporter=json'], { cwd: project, timeout: 60_000 }).catch((error: { code?: number; stdout: string }) => error)
    // The other suites count the consumer's test files.
    await rm(project, { recursive: true, force: true })
    const report = JSON.parse(result.stdout) as { testResults: Array<{ assertionResults: Array<{ fullName: string; status: string; location?: { line: number } }> }> }
    // Only the files below Vitest's root (clnrm.toml, one directory up, names its own tests there).
    expect(report.testResults.map(r => r.assertionResults.map(a => [a.fullName, a.status, a.location?.line]))).toEqual([[['check greets', 'passed', 5], ['check fails', 'failed', 9]]])
    expect('code' in result ? result.code : 0).toBe(1)
  }, 90_000)

  const installed = (runtime: Omit<Runtime, 'prefix'>, prefix: string[]): Runtime => ({ ...runtime, prefix })
  const runtimes: Runtime[] = [
    installed({ name: 'npx (node)', command: npm }, ['exec', '--no', '--', 'clnrm']),
    installed({ name: 'bun', command: join(root, 'node_modules/.bin/bun') }, ['x', 'clnrm']),
    installed({ name: 'deno', command: join(root, 'node_modules/.bin/deno') }, ['run', '-A', 'npm:clnrm']),
  ]
  // bunx honours the bin's node shebang unless given --bun; the bin relaunches itself on Bun.
  const expected: Record<string, RegExp> = { 'npx (node)': /^clnrm: [\d.]+ on node /m, 'bun': /^clnrm: [\d.]+ on bun /m, 'deno': /^clnrm: [\d.]+ on deno /m }
  for (const runtime of runtimes) {
    it(`${runtime.name} runs clnrm on its own runtime (DEBUG=clnrm names it)`, async () => {
      const result = await runCli({ ...runtime, env: { DEBUG: 'clnrm' } }, ['--version'], dir)
      expect(result.code).toBe(0)
      expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
      expect(result.stderr).toMatch(expected[runtime.name]!)
    }, 60_000)
  }

  it('bunx clnrm: Ctrl-C to the terminal\'s process group (bunx, the Node launcher, Bun) removes the containers and exits 130 once', async () => {
    await mkdir(join(dir, 'slow'), { recursive: true })
    await writeFile(join(dir, 'slow/nap.clnrm.toml'), `[meta]\nname = "nap"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "nap"\nrun = "sleep 60"\n`)
    // Its own process group, as a shell gives a foreground job: Ctrl-C reaches every process in it.
    const child = spawn(join(root, 'node_modules/.bin/bun'), ['x', 'clnrm', 'run', 'slow'], { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', DEBUG: 'clnrm' } })
    let output = ''
    child.stdout.on('data', (d: Buffer) => void (output += d.toString()))
    child.stderr.on('data', (d: Buffer) => void (output += d.toString()))
    const exited = new Promise<number | null>(done => child.once('exit', code => done(code)))
    try {
      const deadline = Date.now() + 60_000
      while (!/ready box/.test(output) && Date.now() < deadline) await new Promise(r => setTimeout(r, 50))
      expect(output).toMatch(/^clnrm: [\d.]+ on bun /m)
      expect(output).toMatch(/ready box/)
      // The processes of the group: the Bun one that labels its containers with its pid is among them.
      const group = execFileSync('ps', ['-o', 'pid=', '-g', String(child.pid)], { encoding: 'utf8' }).split('\n').map(Number).filter(Boolean)
      expect(group.flatMap(pid => clnrmContainers(pid))).toHaveLength(1)
      const sent = performance.now()
      process.kill(-child.pid!, 'SIGINT')
      expect(await exited).toBe(130)
      expect(performance.now() - sent).toBeLessThan(30_000)
      expect(output).toMatch(/stopping: removing containers/)
      // One Ctrl-C, seen once: the launcher passes nothing on, so no forced exit.
      expect(output).not.toMatch(/forced exit/)
      expect(group.flatMap(pid => clnrmContainers(pid))).toEqual([])
    }
    finally {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      }
      catch {}
      await rm(join(dir, 'slow'), { recursive: true, force: true })
    }
  }, 120_000)

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
    expect(output).toContain('plugin-vitest/index.ts')
    // Not `plugin-vitest/`: a test or playground folder of its own.
    expect(output).not.toMatch(/\/(?:test|playground)\//)
  }, 200_000)
})

