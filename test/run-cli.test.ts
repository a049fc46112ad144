import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { XMLValidator } from 'fast-xml-parser'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ContainerPool } from '../core/index.ts'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'
import { node, runCli } from './runtimes/contract.ts'

const bin = resolve(import.meta.dirname, '../dist/cli/bin.mjs')
const test = (name: string, run: string, extra = ''): string =>
  `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "${name} step"\nrun = "${run}"\n${extra}`

/** Starts `clnrm run` on a test that sleeps, and waits until its container exists. */
async function runSlowTest(dir: string): Promise<ReturnType<typeof spawn>> {
  // A published port makes testcontainers load signal-exit, which must not cut our cleanup short.
  await writeFile(join(dir, 'slow.clnrm.toml'), test('slow', 'sleep 60').replace('[[steps]]', 'ports = [8080]\n[[steps]]'))
  const child = spawn(process.execPath, [bin, 'run', '.'], { cwd: dir, stdio: 'ignore' })
  const deadline = Date.now() + 20_000
  while (clnrmContainers(child.pid).length === 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 100))
  expect(clnrmContainers(child.pid).length).toBe(1)
  return child
}

describe('clnrm run (built CLI, real engine)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('clnrm init, then clnrm run, passes on a fresh project', async () => {
    expect((await runCli(node, ['init'], dir)).code).toBe(0)
    const result = await runCli(node, ['run'], dir)
    expect(result.stdout).toMatch(/✓ hello/)
    expect(result.stdout).toMatch(/✓ greeting \(a template\)/)
    expect(result.stdout).toMatch(/Tests: 2 passed \(2\)/)
    expect(result.code).toBe(0)
  })

  it('exits 1 on a failing test and writes valid JUnit and JSON reports', async () => {
    await writeFile(join(dir, 'ok.clnrm.toml'), test('ok', 'echo fine'))
    await writeFile(join(dir, 'bad.clnrm.toml'), test('bad', 'echo \\"<&>\\"; exit 3'))
    const junit = await runCli(node, ['run', '.', '--reporter', 'junit', '--output', 'junit.xml'], dir)
    expect(junit.code).toBe(1)
    expect(junit.stdout).toMatch(/✗ bad/)
    const xml = await readFile(join(dir, 'junit.xml'), 'utf8')
    expect(XMLValidator.validate(xml)).toBe(true)
    expect(xml).toMatch(/<testsuites name="clnrm" tests="2" failures="1" errors="0"/)
    expect(xml).toContain('&lt;&amp;&gt;')
    const json = await runCli(node, ['run', '.', '--reporter', 'json'], dir)
    const report = JSON.parse(json.stdout)
    expect(report.summary).toMatchObject({ total: 2, passed: 1, failed: 1 })
    expect(report.tests.find((t: { name: string }) => t.name === 'bad').steps[0].failure.expectation).toBe('expected_exit_code = 0')
  })

  it('exits 2 without starting anything when a file is invalid', async () => {
    await writeFile(join(dir, 'ok.clnrm.toml'), test('ok', 'true'))
    await writeFile(join(dir, 'broken.clnrm.toml'), '[meta]\nname = 1\n')
    const result = await runCli(node, ['run', '.'], dir)
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/broken\.clnrm\.toml:2:8 error CLNRM_INVALID_TYPE/)
    expect(result.stderr).toMatch(/nothing was run/)
  })

  it('exits 2 with one clear error when the engine is unreachable', async () => {
    await writeFile(join(dir, 'ok.clnrm.toml'), test('ok', 'true'))
    const result = await runCli({ ...node, env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' } }, ['run', '.'], dir)
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/No Docker engine is reachable at DOCKER_HOST=unix:\/\/\/nonexistent\/docker\.sock/)
    expect(result.stderr).toMatch(/hint: Start Docker/)
    expect(result.stderr).not.toMatch(/\n\s+at /)
  })

  it('splits files deterministically with --shard', async () => {
    for (const name of ['a', 'b', 'c']) await writeFile(join(dir, `${name}.clnrm.toml`), test(name, 'true'))
    const names = async (shard: string): Promise<string[]> =>
      JSON.parse((await runCli(node, ['run', '.', '--shard', shard, '--reporter', 'json'], dir)).stdout).tests.map((t: { name: string }) => t.name).sort()
    const [first, second] = [await names('1/2'), await names('2/2')]
    expect([...first, ...second].sort()).toEqual(['a', 'b', 'c'])
    expect(first).toEqual(await names('1/2'))
    expect((await runCli(node, ['run', '.', '--shard', '3/2'], dir)).code).toBe(2)
  })

  it('stops at the first failure with --fail-fast', async () => {
    for (const name of ['a', 'b', 'c', 'd']) await writeFile(join(dir, `${name}.clnrm.toml`), test(name, 'exit 1'))
    const result = await runCli(node, ['run', '.', '-j', '1', '--fail-fast'], dir)
    expect(result.code).toBe(1)
    expect(result.stdout.match(/^✗/gm)).toHaveLength(1)
    expect(result.stderr).toMatch(/--fail-fast: 3 test file\(s\) not run/)
  })

  it('a new pool removes the containers of a clnrm run killed with kill -9', async () => {
    const child = await runSlowTest(dir)
    child.kill('SIGKILL')
    await new Promise(r => child.once('exit', r))
    expect(clnrmContainers(child.pid).length).toBe(1)
    const pool = await ContainerPool.create()
    await pool.close()
    expect(clnrmContainers(child.pid)).toEqual([])
  })

  it('removes its containers on SIGINT and exits 130', async () => {
    const child = await runSlowTest(dir)
    child.kill('SIGINT')
    const code = await new Promise(r => child.once('exit', r))
    expect(code).toBe(130)
    expect(clnrmContainers(child.pid)).toEqual([])
  })
})
