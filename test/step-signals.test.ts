import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { ContainerPool } from '../core/index.ts'
import { clnrmContainers, IMAGE, run, specFrom } from './engine.ts'
import { tempDir } from './helpers.ts'
import { usePool } from './pool-fixture.ts'

/**
 * Signals between a step and clnrm's shell in the container. A test's first step runs in the
 * shell's own process group (no `setsid` exec), later steps in sessions of their own; the shell
 * survives the signals a `kill 0` or a `kill $PPID` sends, and its kill trap ends a timed-out
 * step's whole process tree at once, whichever way it runs.
 */
/** Debian's dash as /bin/sh (scripts/build-images.sh): the shell of Debian and Ubuntu images. */
const DASH = 'clnrm-examples/dash:1'

describe.each([['busybox ash', IMAGE], ['dash', DASH]])('signals between steps and the container\'s shell (real engine, %s)', (_, image) => {
  let pool: ContainerPool
  let dir: string
  usePool(made => ({ pool, dir } = made))
  const service = (unique: string): string => `[services.box]\nimage = "${image}"\nenv = { UNIQUE = "${unique}" }\n`
  // `[s]leep …$`: the pattern does not match the command line that holds it.
  const countLive = (pattern: string): string => `ps -o stat,args | grep -v '^Z' | grep -c '[s]${pattern.slice(1)}$' || true`

  it('a first step\'s `kill 0` ends that step and what it started (143), and the next step and the next test run in the same shell', async () => {
    const spec = specFrom(dir, 'kill-0-first', `[meta]\nname = "kill 0 first"\n${service('kill-0-first')}[[steps]]\nrun = "sleep 300 & kill 0; echo unreachable"\ncontinue_on_failure = true\n[[steps]]\nrun = "${countLive('sleep 300')}"\n`)
    const result = await run(pool, spec)
    expect(result.steps.map(s => [s.status, s.exitCode, s.stdout.trim()])).toEqual([['fail', 143, ''], ['pass', 0, '0']])
    const next = await run(pool, specFrom(dir, 'kill-0-next', `[meta]\nname = "after kill 0"\n${service('kill-0-first')}[[steps]]\nrun = "echo next"\nexpected_output_regex = "^next"\n`))
    expect(next.status).toBe('pass')
    expect(next.timings.reused.box).toBe(true)
  })

  it('a later step\'s `kill 0` spares what an earlier step left running', async () => {
    const spec = specFrom(dir, 'kill-0-later', `[meta]\nname = "kill 0 later"\n${service('kill-0-later')}[[steps]]\nrun = "sleep 301 > /dev/null 2>&1 &"\n[[steps]]\nrun = "kill 0"\ncontinue_on_failure = true\n[[steps]]\nrun = "${countLive('sleep 301')}"\n`)
    const result = await run(pool, spec)
    expect(result.steps.map(s => [s.exitCode, s.stdout.trim()])).toEqual([[0, ''], [143, ''], [0, '1']])
  })

  it('a step that signals its parent (`kill $PPID`, `kill -HUP $PPID`) leaves the shell running', async () => {
    const spec = specFrom(dir, 'kill-ppid', `[meta]\nname = "kill ppid"\n${service('kill-ppid')}[[steps]]\nrun = "kill $PPID; kill -HUP $PPID; echo survived"\nexpected_output_regex = "^survived"\n[[steps]]\nrun = "kill -USR1 $PPID; kill -TERM $PPID; echo again"\nexpected_output_regex = "^again"\n`)
    const result = await run(pool, spec)
    expect(result.status, JSON.stringify(result.steps)).toBe('pass')
    expect((await run(pool, spec)).timings.reused.box).toBe(true)
  })

  it('a timed-out step\'s whole tree is dead before the next step starts, first step or later', async () => {
    const slow = (n: number): string => `[[steps]]\nrun = "sleep 31${n} & sleep 32${n}"\ntimeout = "300ms"\ncontinue_on_failure = true\n[[steps]]\nrun = "${countLive(`sleep 3[12]${n}`)}"\n`
    const result = await run(pool, specFrom(dir, 'timeouts', `[meta]\nname = "timeouts"\n${service('timeouts')}${slow(1)}${slow(2)}`))
    expect(result.steps.map(s => [s.timedOut ?? false, s.exitCode, s.stdout.trim()])).toEqual([[true, 137, ''], [false, 0, '0'], [true, 137, ''], [false, 0, '0']])
  })
})

describe('clnrm run: a step that signals its group or its parent (built CLI)', () => {
  const bin = resolve(import.meta.dirname, '../dist/cli/bin.mjs')

  it('reports each step\'s own exit, keeps the shell for the rest, errors with a hint when a step SIGKILLs the shell, exits 1 and leaves no container', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      const box = `[services.box]\nimage = "${IMAGE}"\n`
      await writeFile(join(dir, 'a.clnrm.toml'), `[meta]\nname = "signals"\n${box}[[steps]]\nname = "kill 0"\nrun = "kill 0"\ncontinue_on_failure = true\n[[steps]]\nname = "parent"\nrun = "kill $PPID; echo survived"\n[[steps]]\nname = "after"\nrun = "echo after"\nexpected_output_regex = "^after"\n`)
      await writeFile(join(dir, 'b.clnrm.toml'), `[meta]\nname = "sigkill"\n${box}[[steps]]\nname = "sigkill"\nrun = "kill -9 0"\n`)
      const child = spawn(process.execPath, [bin, 'run', '.', '-j', '1', '--reporter', 'default', '--reporter', 'json', '--output', 'json=r.json'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' } })
      let stdout = ''
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
      child.stderr.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
      const started = Date.now()
      const code = await new Promise<number | null>(r => child.on('close', r))
      expect(Date.now() - started).toBeLessThan(30_000)
      expect(code, stdout).toBe(1)
      const report = JSON.parse(await readFile(join(dir, 'r.json'), 'utf8'))
      const byName = Object.fromEntries(report.tests.map((t: any) => [t.name, t]))
      expect(byName.signals.steps.map((s: any) => [s.name, s.exitCode, s.stdout])).toEqual([['kill 0', 143, ''], ['parent', 0, 'survived\n'], ['after', 0, 'after\n']])
      expect(byName.sigkill.status).toBe('error')
      expect(stdout).toMatch(/kill -9 0/)
      expect(clnrmContainers(child.pid)).toEqual([])
    }
    finally {
      await cleanup()
    }
  })
})
