import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'

const bin = resolve(import.meta.dirname, '../dist/cli/bin.mjs')

/** Spawns `clnrm run` and reports its exit code, output, time to exit and pid. */
function runClnrm(dir: string, args: string[], limitMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string; ms: number; afterSummaryMs: number; pid: number }> {
  const start = Date.now()
  let summaryAt = 0
  const child = spawn(process.execPath, [bin, 'run', ...args], { cwd: dir, env: { ...process.env, NO_COLOR: '1' } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
    if (!summaryAt && /\nTests: /.test(stdout)) summaryAt = Date.now()
  })
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  // A hang must fail the test, not the suite's timeout: kill it past the limit.
  const guard = setTimeout(() => child.kill('SIGKILL'), limitMs)
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(guard)
      resolve({ code, stdout, stderr, ms: Date.now() - start, afterSummaryMs: Date.now() - (summaryAt || start), pid: child.pid! })
    })
  })
}

const service = `[services.box]\nimage = "${IMAGE}"\n`

describe('clnrm run: step execution as a user sees it (built CLI, real engine)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('exits soon after a step timeout, with the failure printed and no container left', async () => {
    await writeFile(join(dir, 'slow.clnrm.toml'), `[meta]\nname = "slow"\n${service}[[steps]]\nname = "sleeps"\nrun = "sleep 20"\ntimeout = "1s"\n`)
    const result = await runClnrm(dir, ['.'])
    expect(result.stdout).toMatch(/step "sleeps" in box: timed out after \d+ms and was killed/)
    expect(result.code).toBe(1)
    // Generous: the step takes 1 s; before the fix the process never exited.
    expect(result.ms).toBeLessThan(15_000)
    expect(clnrmContainers(result.pid)).toEqual([])
  })
  it('gives a verdict promptly on a catastrophic pattern (linear-time matching)', async () => {
    await writeFile(join(dir, 'redos.clnrm.toml'), `[meta]\nname = "redos"\n${service}[[steps]]\nname = "prints"\nrun = "printf '${'a'.repeat(33)}b'"\nexpected_output_regex = "^(a+)+$"\n`)
    const result = await runClnrm(dir, ['.'])
    expect(result.stdout).toMatch(/step "prints" in box: stdout does not match/)
    expect(result.stdout).toMatch(/^      expected_output_regex = "\^\(a\+\)\+\$" at redos.clnrm.toml:8:1$/m)
    expect(result.code).toBe(1)
    // A backtracking engine took 86 s here.
    expect(result.ms).toBeLessThan(20_000)
    expect(clnrmContainers(result.pid)).toEqual([])
  })

  it('judges the whole output and says in every reporter that it was cut, also on a pass', async () => {
    await writeFile(join(dir, 'big.clnrm.toml'), `[meta]\nname = "big"\n${service}[[steps]]\nname = "long and fine"\nrun = "yes x | head -c 2000000; echo done"\nexpected_output_regex = "done"\n`)
    await writeFile(join(dir, 'fatal.clnrm.toml'), `[meta]\nname = "fatal"\n${service}[[steps]]\nname = "long then fatal"\nrun = "yes x | head -c 2000000; echo FATAL ERROR"\nexpected_output_regex_not = "ERROR"\n`)
    const human = await runClnrm(dir, ['.', '-j', '1'])
    expect(human.code).toBe(1)
    expect(human.stdout).toMatch(/✓ big[^\n]*\n\s+note: step "long and fine" stdout of 1\.9 MiB shown as its first and last 512 KiB/)
    expect(human.stdout).toMatch(/✗ fatal[^\n]*\n\s+✗ step "long then fatal" in box: stdout matches \("ERROR"\)/)
    const json = await runClnrm(dir, ['.', '-j', '1', '--reporter', 'json'])
    const report = JSON.parse(json.stdout) as { tests: Array<{ name: string; status: string; steps: Array<{ truncated: { stdout: boolean }; bytes: { stdout: number }; stdout: string }> }> }
    const big = report.tests.find(t => t.name === 'big')!
    expect(big.status).toBe('pass')
    expect(big.steps[0]).toMatchObject({ truncated: { stdout: true }, bytes: { stdout: 2_000_005 } })
    expect(big.steps[0]!.stdout).toMatch(/\[… \d+ bytes not shown …\]/)
    expect(report.tests.find(t => t.name === 'fatal')!.status).toBe('fail')
    const junit = await runClnrm(dir, ['.', '-j', '1', '--reporter', 'junit', '--output', 'junit.xml'])
    expect(junit.code).toBe(1)
    expect(await readFile(join(dir, 'junit.xml'), 'utf8')).toMatch(/<system-out>x\n[^<]*\[… \d+ bytes not shown …\]/)
    expect(clnrmContainers(json.pid)).toEqual([])
  })
  it('hands every byte of a step\'s output to its expectations and reports, in busybox (read by builtins) and in dash (read by cat)', async () => {
    // 600 bytes with NULs, past the 512 the busybox shell reads with builtins, ending in a two-byte character.
    const run = "printf 'a\\\\000b'; head -c 600 /dev/zero | tr '\\\\000' x; printf '\\\\000\\\\303\\\\251\\\\n'"
    const expected = `a\0b${'x'.repeat(600)}\0é\n`
    for (const image of [IMAGE, 'clnrm-examples/dash:1']) {
      const box = `[services.box]\nimage = "${image}"\n`
      await writeFile(join(dir, 'exact.clnrm.toml'), `[meta]\nname = "exact"\n${box}[[steps]]\nname = "bytes"\nrun = "${run}"\nexpected_output_regex = "^a\\u0000bx{600}\\u0000é\\n$"\n`)
      await writeFile(join(dir, 'short.clnrm.toml'), `[meta]\nname = "one x short"\n${box}[[steps]]\nname = "bytes"\nrun = "${run}"\nexpected_output_regex = "^a\\u0000bx{599}\\u0000"\n`)
      const result = await runClnrm(dir, ['.', '-j', '1', '--reporter', 'json'])
      const report = JSON.parse(result.stdout) as { tests: Array<{ name: string; status: string; steps: Array<{ stdout: string; bytes: { stdout: number } }> }> }
      const exact = report.tests.find(t => t.name === 'exact')!
      expect({ image, status: exact.status, stdout: exact.steps[0]!.stdout, bytes: exact.steps[0]!.bytes.stdout }).toEqual({ image, status: 'pass', stdout: expected, bytes: Buffer.byteLength(expected) })
      expect({ image, status: report.tests.find(t => t.name === 'one x short')!.status }).toEqual({ image, status: 'fail' })
      expect(result.code).toBe(1)
      expect(clnrmContainers(result.pid)).toEqual([])
    }
  })
  it('runs an image without sh, ends its timed-out step, and exits without lingering', async () => {
    const bare = `[services.bare]\nimage = "clnrm-examples/nosh:1"\n`
    await writeFile(join(dir, 'ok.clnrm.toml'), `[meta]\nname = "bare ok"\n${bare}[[steps]]\nname = "echo"\ncommand = ["echo", "no shell here"]\nexpected_output_regex = "no shell here"\n[[steps]]\nname = "missing"\ncommand = ["nope"]\nexpected_exit_code = 127\n`)
    await writeFile(join(dir, 'slow.clnrm.toml'), `[meta]\nname = "bare slow"\n${bare}[[steps]]\nname = "sleeps"\ncommand = ["sleep", "30"]\ntimeout = "1s"\n`)
    const result = await runClnrm(dir, ['.'])
    expect(result.stdout).toMatch(/✓ bare ok/)
    expect(result.stdout).toMatch(/step "sleeps" in bare: timed out after \d+ms and was killed/)
    expect(result.code).toBe(1)
    expect(result.ms).toBeLessThan(20_000)
    // It lingered 4 to 5 s after the summary (the shell handshake's timer); a bound well below.
    expect(result.afterSummaryMs).toBeLessThan(3000)
    expect(clnrmContainers(result.pid)).toEqual([])
  })
  it('credits late output to no later step, and ends every process a test left before the next test reuses the container', async () => {
    // Same service definition: with -j 1 the second file reuses the first one's container.
    await writeFile(join(dir, 'a.clnrm.toml'), `[meta]\nname = "a leaves processes"\n${service}[[steps]]\nname = "background writer"\nrun = "(sleep 0.5; echo LATE) & setsid sh -c 'sleep 2.5; touch /tmp/leftover-ran; sleep 300' >/dev/null 2>&1 &"\n[[steps]]\nname = "later step"\nrun = "sleep 1; echo second"\nexpected_output_regex_not = "LATE"\n`)
    await writeFile(join(dir, 'b.clnrm.toml'), `[meta]\nname = "b finds none"\n${service}[[steps]]\nname = "looks"\nrun = "sleep 2.5; test ! -e /tmp/leftover-ran && ! ps -o args | grep -q '^sleep 300'"\n`)
    const result = await runClnrm(dir, ['a.clnrm.toml', 'b.clnrm.toml', '-j', '1', '--reporter', 'json'])
    const report = JSON.parse(result.stdout) as { tests: Array<{ name: string; status: string; timings: { reused: Record<string, boolean> }; steps: Array<{ stdout: string }> }> }
    const [a, b] = ['a leaves processes', 'b finds none'].map(name => report.tests.find(t => t.name === name)!)
    expect(a!.status).toBe('pass')
    expect(a!.steps[1]!.stdout).toBe('second\n')
    expect(b!.timings.reused.box).toBe(true)
    expect(b!.status).toBe('pass')
    expect(result.code).toBe(0)
    expect(result.ms).toBeLessThan(30_000)
    expect(clnrmContainers(result.pid)).toEqual([])
  })

  it('fails the steps a spent [meta] timeout leaves, without starting them, and exits', async () => {
    await writeFile(join(dir, 'budget.clnrm.toml'), `[meta]\nname = "budget"\ntimeout = "1s"\n${service}[[steps]]\nname = "slow"\nrun = "sleep 20"\ncontinue_on_failure = true\n[[steps]]\nname = "never started"\nrun = "echo should not run"\n`)
    const result = await runClnrm(dir, ['.'])
    expect(result.stdout).toMatch(/step "never started" in box: the test ran out of its time budget before this step started/)
    expect(result.stdout).not.toMatch(/should not run/)
    expect(result.code).toBe(1)
    expect(result.ms).toBeLessThan(15_000)
    expect(clnrmContainers(result.pid)).toEqual([])
  })
})

