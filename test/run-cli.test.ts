import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { XMLValidator } from 'fast-xml-parser'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ContainerPool } from '../core/index.ts'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'
import { spawnCli, waitUntil } from './cli-process.ts'
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

  it('reports an invalid file as a failed file with its diagnostics, runs every valid one, and exits 1 as validate does', async () => {
    await writeFile(join(dir, 'ok.clnrm.toml'), test('ok', 'true'))
    await writeFile(join(dir, 'broken.clnrm.toml'), test('broken', 'true').replace('name = "broken"', 'name = 1'))
    const cli = spawnCli(['run', '.', '--reporter', 'junit', '--output', 'junit.xml'], dir)
    const exit = await cli.exited
    expect(exit.code).toBe(1)
    expect(exit.ms).toBeLessThan(60_000)
    expect(cli.stdout()).toMatch(/^✗ broken\.clnrm\.toml invalid$/m)
    expect(cli.stderr()).toMatch(/broken\.clnrm\.toml:2:8 error CLNRM_INVALID_TYPE/)
    expect(cli.stdout()).toMatch(/✓ ok ok\.clnrm\.toml/)
    expect(cli.stdout()).toMatch(/Tests: 1 passed, 1 invalid \(2\)/)
    expect(clnrmContainers(cli.pid)).toEqual([])
    const xml = await readFile(join(dir, 'junit.xml'), 'utf8')
    expect(XMLValidator.validate(xml)).toBe(true)
    expect(xml).toMatch(/<testsuites name="clnrm" tests="2" failures="0" errors="1" skipped="0"/)
    expect(xml).toMatch(/<testsuite name="broken\.clnrm\.toml"[^>]*errors="1"[\s\S]*?<error message="2:8 meta\.name must be string, got integer" type="CLNRM_INVALID_TYPE">/)
    const json = spawnCli(['run', '.', '--reporter', 'json'], dir)
    expect((await json.exited).code).toBe(1)
    const report = JSON.parse(json.stdout())
    expect(report.summary).toMatchObject({ total: 2, passed: 1, failed: 0, invalid: 1, skipped: 0 })
    expect(report.invalid[0].file).toBe('broken.clnrm.toml')
    expect(report.invalid[0].diagnostics).toContainEqual(expect.objectContaining({ code: 'CLNRM_INVALID_TYPE', line: 2, column: 8 }))
    expect(report.tests.map((t: { name: string }) => t.name)).toEqual(['ok'])
    // The same file is the same verdict in every command.
    expect((await runCli(node, ['validate', '.'], dir)).code).toBe(1)
    expect((await runCli(node, ['dry-run', '.'], dir)).code).toBe(1)
  })

  it('checks --output before running anything: a missing directory is a usage error (exit 2), not a lost report', async () => {
    await writeFile(join(dir, 'ok.clnrm.toml'), test('ok', 'true'))
    const cli = spawnCli(['run', '.', '--reporter', 'json', '--output', '/nonexistent/dir/r.json'], dir)
    const exit = await cli.exited
    expect(exit.code).toBe(2)
    expect(exit.ms).toBeLessThan(30_000)
    expect(cli.stderr()).toMatch(/error --output \/nonexistent\/dir\/r\.json: the directory \/nonexistent\/dir does not exist/)
    expect(cli.stderr()).not.toMatch(/internal error|starting box/)
    expect(clnrmContainers(cli.pid)).toEqual([])
  })

  it('exits 2 with one clear error when the engine is unreachable', async () => {
    await writeFile(join(dir, 'ok.clnrm.toml'), test('ok', 'true'))
    const result = await runCli({ ...node, env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' } }, ['run', '.'], dir)
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/No Docker engine is reachable at DOCKER_HOST=unix:\/\/\/nonexistent\/docker\.sock/)
    expect(result.stderr).toMatch(/hint: Start Docker/)
    expect(result.stderr).not.toMatch(/\n\s+at /)
    // The hint names only what every user has, never this repository's scripts.
    expect(result.stderr).not.toMatch(/scripts\/|npm run/)
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
    expect(result.stdout).toMatch(/Tests: 1 failed, 3 skipped \(4\)/)
    expect(result.stderr).toMatch(/--fail-fast: stopped after the first failure; 0 tests cancelled, 3 test files never started/)
  })

  it('--fail-fast reports the tests it cancelled as skipped, not failed, in the summary, JSON and JUnit; the exit code is the real failure\'s', async () => {
    // a fails at once; b, c and d sleep and are cancelled; e never starts (-j 4).
    await writeFile(join(dir, 'a.clnrm.toml'), test('a', 'exit 1'))
    for (const name of ['b', 'c', 'd', 'e']) await writeFile(join(dir, `${name}.clnrm.toml`), test(name, 'sleep 60'))
    const cli = spawnCli(['run', '.', '-j', '4', '--fail-fast', '--reporter', 'junit', '--output', 'junit.xml'], dir)
    const exit = await cli.exited
    expect(exit.code).toBe(1)
    expect(exit.ms).toBeLessThan(45_000)
    expect(cli.stdout().match(/^✗/gm)).toHaveLength(1)
    expect(cli.stdout()).toMatch(/^✗ a a\.clnrm\.toml/m)
    expect(cli.stdout()).toMatch(/^↓ b b\.clnrm\.toml cancelled by --fail-fast \("a" failed\)/m)
    expect(cli.stdout()).toMatch(/Tests: 1 failed, 4 skipped \(5\)/)
    expect(cli.stderr()).toMatch(/--fail-fast: stopped after the first failure; 3 tests cancelled, 1 test file never started/)
    expect(clnrmContainers(cli.pid)).toEqual([])
    const xml = await readFile(join(dir, 'junit.xml'), 'utf8')
    expect(XMLValidator.validate(xml)).toBe(true)
    expect(xml.match(/<failure /g)).toHaveLength(1)
    expect(xml.match(/<skipped message="(cancelled|not started)[^"]*"\/>/g)).toHaveLength(4)
    expect(xml).toMatch(/<testsuites name="clnrm" tests="5" failures="1" errors="0" skipped="4"/)

    const json = spawnCli(['run', '.', '-j', '4', '--fail-fast', '--reporter', 'json'], dir)
    expect((await json.exited).code).toBe(1)
    const report = JSON.parse(json.stdout())
    expect(report.summary).toMatchObject({ total: 5, passed: 0, failed: 1, errors: 0, skipped: 4 })
    expect(report.tests.map((t: { name: string }) => t.name)).toEqual(['a'])
    expect(report.skipped.map((s: { name: string; reason: string }) => `${s.name} ${s.reason}`).sort()).toEqual(['b cancelled', 'c cancelled', 'd cancelled', 'e not-run'])
    expect(clnrmContainers(json.pid)).toEqual([])
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

  it.each([['SIGTERM', 143], ['SIGHUP', 129]] as const)('removes its containers on %s and exits %i', async (signal, expected) => {
    const child = await runSlowTest(dir)
    const started = performance.now()
    child.kill(signal)
    const code = await new Promise(r => child.once('exit', r))
    expect(code).toBe(expected)
    expect(performance.now() - started).toBeLessThan(30_000)
    expect(clnrmContainers(child.pid)).toEqual([])
  })

  it('a second Ctrl-C forces the exit (130) at once; the next clnrm start removes what was left', async () => {
    // Three containers, so the cleanup the second Ctrl-C cuts short takes a moment.
    for (const name of ['a', 'b', 'c']) await writeFile(join(dir, `${name}.clnrm.toml`), test(name, 'sleep 60'))
    const cli = spawnCli(['run', '.', '-j', '3'], dir)
    await waitUntil(() => clnrmContainers(cli.pid).length === 3, 'the containers')
    await cli.until(/ready box[\s\S]*ready box[\s\S]*ready box/)
    cli.child.kill('SIGINT')
    await cli.until(/stopping: removing containers \(Ctrl-C again exits at once\)/)
    cli.child.kill('SIGINT')
    expect(await cli.timeToExit()).toBeLessThan(10_000)
    const exit = await cli.exited
    expect(exit.code).toBe(130)
    expect(cli.stderr()).toMatch(/clnrm: forced exit; containers not yet removed are removed by the next clnrm start/)
    const pool = await ContainerPool.create()
    await pool.close()
    // Removals the forced exit left in flight finish in the engine's own time (slow under load).
    await waitUntil(() => clnrmContainers(cli.pid).length === 0, 'the next start removing what was left', 20_000)
  })

  it('a reader that closes stdout (clnrm run | head -1) stops the run: containers removed, exit 141, no crash', async () => {
    // One fast test prints the line head reads; the next result's write finds the pipe closed.
    await writeFile(join(dir, 'a.clnrm.toml'), test('a', 'true'))
    for (const name of ['b', 'c', 'd', 'e', 'f']) await writeFile(join(dir, `${name}.clnrm.toml`), test(name, 'sleep 3'))
    await writeFile(join(dir, 'g.clnrm.toml'), test('g', 'sleep 120'))
    const head = spawn('head', ['-1'], { stdio: ['pipe', 'pipe', 'ignore'] })
    let firstLine = ''
    head.stdout!.on('data', (d: Buffer) => void (firstLine += d.toString()))
    const started = performance.now()
    const child = spawn(process.execPath, [bin, 'run', '.', '-j', '7'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', head.stdin!, 'pipe'] })
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => void (stderr += d.toString()))
    const code = await new Promise(r => child.once('exit', r))
    expect(firstLine).toMatch(/^✓ a a\.clnrm\.toml/)
    expect(code).toBe(141)
    expect(performance.now() - started).toBeLessThan(90_000)
    expect(stderr).not.toMatch(/EPIPE|internal error|\n\s+at /)
    expect(clnrmContainers(child.pid)).toEqual([])
  })

  it('escapes control characters in names, paths and output excerpts (a \\r cannot turn ✗ into ✓)', async () => {
    const name = 'bad\\r✓ fine\\u001b[32m\\u0000'
    await writeFile(join(dir, 'ctl.clnrm.toml'), `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "step\\rX"\nrun = "printf 'out\\\\033[2J\\\\rX\\\\r\\\\n'; exit 1"\n`)
    const cli = spawnCli(['run', '.', '--no-color'], dir)
    const exit = await cli.exited
    expect(exit.code).toBe(1)
    expect(exit.ms).toBeLessThan(60_000)
    const out = cli.stdout()
    expect(out).toMatch(/Tests: 1 failed \(1\)/)
    expect(out).toContain('✗ bad\\r✓ fine\\x1b[32m\\0 ctl.clnrm.toml')
    expect(out).toContain('step "step\\rX"')
    // The CR of a CRLF line end is dropped; any other is shown.
    expect(out).toMatch(/│ out\\x1b\[2J\\rX\n/)
    // eslint-disable-next-line no-control-regex
    expect(out).not.toMatch(/[\u0000\u001B\r]/)
    expect(clnrmContainers(cli.pid)).toEqual([])
  })
})
