import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import type { ContainerPool } from '../core/index.ts'
import { IMAGE, run, specFrom, top } from './engine.ts'
import { usePool } from './pool-fixture.ts'

/** An image without sh, kill, rm or mkdir (scripts/build-images.sh). */
const NOSH = 'clnrm-examples/nosh:1'

describe('step execution on the real engine: kills, output, attribution, leftovers', () => {
  let pool: ContainerPool
  let dir: string
  usePool(made => ({ pool, dir } = made))

  it('applies a kill asked for before the step\'s pid is known, and the shell stays usable', async () => {
    const spec = specFrom(dir, 'early-kill', `[meta]\nname = "early kill"\n[services.box]\nimage = "${IMAGE}"\nenv = { UNIQUE = "early-kill" }\n[[steps]]\nrun = "true"\n`)
    const lease = await pool.acquire(spec)
    try {
      const runner = lease.services.box!.runner
      // 1 ms always runs out before the shell has reported the pid.
      const killed = await runner.exec({ argv: ['sleep', '30'], timeoutMs: 1 })
      expect(killed).toMatchObject({ timedOut: true })
      expect(killed.durationMs).toBeLessThan(10_000)
      expect(runner.alive).toBe(true)
      const aborted = new AbortController()
      aborted.abort()
      const never = await runner.exec({ argv: ['sh', '-c', 'touch /tmp/should-not-exist'], signal: aborted.signal })
      expect(never.aborted).toBe(true)
      const after = await runner.exec({ argv: ['sh', '-c', 'echo alive; ps -o stat,args | grep -c "^[^Z] *sleep 30$" || true; test -e /tmp/should-not-exist && echo started'] })
      expect(after.stdout).toBe('alive\n0\n')
      expect(runner.alive).toBe(true)
    }
    finally {
      await lease.release()
    }
  })

  it('leaves no engine socket open per kill: timeouts and cancels read every response', async () => {
    const spec = specFrom(dir, 'sockets', `[meta]\nname = "sockets"\n[services.box]\nimage = "${IMAGE}"\nenv = { UNIQUE = "sockets" }\n[[steps]]\nrun = "true"\n`)
    const lease = await pool.acquire(spec)
    // The engine is reached over a unix socket (PipeWrap) or TCP: count both.
    const sockets = (): number => process.getActiveResourcesInfo().filter(r => r === 'PipeWrap' || r === 'TCPSocketWrap').length
    try {
      const runner = lease.services.box!.runner
      await runner.exec({ argv: ['true'] })
      const before = sockets()
      for (let i = 0; i < 10; i++) {
        await runner.exec({ argv: ['sleep', '30'], timeoutMs: 100 })
        const cancel = new AbortController()
        setTimeout(() => cancel.abort(), 100)
        await runner.exec({ argv: ['sleep', '30'], signal: cancel.signal })
      }
      // Kills run beside the shell; give their last responses a moment to end.
      for (let i = 0; i < 50 && sockets() > before; i++) await new Promise(r => setTimeout(r, 100))
      // Before the fix each of the 20 kills kept one socket open.
      expect(sockets()).toBeLessThanOrEqual(before)
      expect(runner.alive).toBe(true)
    }
    finally {
      await lease.release()
    }
  })

  it('fails the steps left when [meta] timeout is spent, without starting them, and keeps the container', async () => {
    const spec = specFrom(dir, 'spent', `[meta]\nname = "spent"\ntimeout = "400ms"\n[services.box]\nimage = "${IMAGE}"\nenv = { UNIQUE = "spent" }\n[[steps]]\nname = "slow"\nrun = "sleep 5"\ncontinue_on_failure = true\n[[steps]]\nname = "second"\nrun = "echo two"\n[[steps]]\nname = "third"\nrun = "echo three"\n`)
    const result = await run(pool, spec)
    expect(result.steps.map(s => [s.name, s.status])).toEqual([['slow', 'fail'], ['second', 'fail'], ['third', 'fail']])
    // Under heavy load the container may take the whole budget to start: then step 1 does not start either.
    expect(result.steps[0]!.failure).toMatchObject({ expectation: '[meta] timeout = 400ms', message: expect.stringContaining('the test ran out of its time budget') })
    for (const step of result.steps.slice(1)) {
      expect(step.failure).toMatchObject({ expectation: '[meta] timeout = 400ms', message: expect.stringContaining('before this step started') })
      expect(step.stdout).toBe('')
    }
    const again = await run(pool, spec)
    expect(again.timings.reused.box).toBe(true)
  })
  it('credits a background process\'s later output to no later step', async () => {
    const spec = specFrom(dir, 'attribution', `[meta]\nname = "attribution"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "starts a writer"\nrun = "(sleep 0.3; echo LATE; echo LATE-ERR >&2) &"\n[[steps]]\nname = "later"\nrun = "sleep 1; echo second"\nexpected_output_regex = "LATE"\n`)
    const result = await run(pool, spec)
    expect(result.steps[1]).toMatchObject({ status: 'fail', stdout: 'second\n', stderr: '' })
    expect(result.steps[1]!.failure?.message).toMatch(/stdout does not match/)
  })

  it('keeps the shell\'s own messages out of a killed step\'s output', async () => {
    const spec = specFrom(dir, 'killed-noise', `[meta]\nname = "killed noise"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nrun = "echo before; sleep 30"\ntimeout = "300ms"\n`)
    const result = await run(pool, spec)
    expect(result.steps[0]).toMatchObject({ timedOut: true, stdout: 'before\n', stderr: '' })
  })

  it('ends every process a run started, whatever session it moved to, before the container is reused', async () => {
    const service = `[services.box]\nimage = "${IMAGE}"\nenv = { UNIQUE = "leftovers" }\n`
    const first = specFrom(dir, 'leftover-a', `[meta]\nname = "leaves a sleeper"\n${service}[[steps]]\nrun = "setsid sh -c 'sleep 2; echo LEFTOVER; touch /tmp/leftover-ran; sleep 300' > /dev/null 2>&1 &"\n`)
    const second = specFrom(dir, 'leftover-b', `[meta]\nname = "reuses the container"\n${service}[[steps]]\nrun = "sleep 2.5; echo clean; test ! -e /tmp/leftover-ran"\nexpected_output_regex_not = "LEFTOVER"\n`)
    expect((await run(pool, first)).status).toBe('pass')
    const lease = await pool.acquire(second)
    const id = lease.services.box!.containerId
    await lease.release()
    // The end of a run is queued in the shell, not awaited by release: wait until it has run.
    await lease.services.box!.runner.drain?.()
    expect(top(id)).not.toMatch(/sleep 300|sleep 1\b/)
    const result = await run(pool, second)
    expect(result.timings.reused.box).toBe(true)
    expect(result.steps[0]!.failure).toBeUndefined()
    expect(top(id)).not.toMatch(/sleep 300/)
  })

  it('judges the whole output: a _not pattern sees the end of 2 MB, and the excerpt says it is cut', async () => {
    const spec = specFrom(dir, 'big-output', `[meta]\nname = "big"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "passes"\nrun = "yes x | head -c 2000000; echo; echo all good"\nexpected_output_regex = "all good"\n[[steps]]\nname = "fatal at the end"\nrun = "yes x | head -c 2000000; echo; echo FATAL ERROR"\nexpected_output_regex_not = "ERROR"\n`)
    const result = await run(pool, spec)
    const [passes, fatal] = result.steps
    expect(passes).toMatchObject({ status: 'pass', truncated: { stdout: true, stderr: false }, bytes: { stdout: 2_000_010 } })
    expect(passes!.stdout.length).toBeLessThanOrEqual(1024 * 1024 + 100)
    expect(passes!.stdout).toMatch(/\[… \d+ bytes not shown …\]\n[x\n]+\nall good\n$/)
    expect(fatal).toMatchObject({ status: 'fail', failure: { expectation: 'expected_output_regex_not = "ERROR"', message: expect.stringContaining('stdout matches ("ERROR")') } })
    expect(fatal!.failure!.excerpt).toMatch(/FATAL ERROR/)
  })

  it('fails output expectations on a stream too large to judge, never passes them', async () => {
    const spec = specFrom(dir, 'huge-output', `[meta]\nname = "huge"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nrun = "yes x | head -c 70000000"\nexpected_output_regex_not = "ERROR"\n`)
    const result = await run(pool, spec)
    expect(result.steps[0]).toMatchObject({ status: 'fail', truncated: { stdout: true }, bytes: { stdout: 70_000_000 } })
    expect(result.steps[0]!.failure!.message).toMatch(/stdout is too large to judge \(66\.8 MiB, more than 64 MiB\)/)
  })

  it('anchors ^ and $ at the whole text, and says when (?m) would match', async () => {
    const spec = specFrom(dir, 'anchors', `[meta]\nname = "anchors"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "whole"\nrun = "echo one; echo two"\nexpected_output_regex = ["^one\\\\ntwo\\\\n$", "(?m)^two$"]\n[[steps]]\nname = "lines"\nrun = "echo one; echo two"\nexpected_output_regex = "^two$"\n`)
    const result = await run(pool, spec)
    expect(result.steps[0]!.failure).toBeUndefined()
    expect(result.steps[1]!.failure!.message).toBe('stdout does not match; would match with (?m) (^ and $ at each line): write "(?m)^two$"')
  })
  it('runs steps in an image without sh: output, env, workdir, exit codes, 127 for a missing binary', async () => {
    const spec = specFrom(dir, 'nosh', `[meta]\nname = "nosh"\n[services.bare]\nimage = "${NOSH}"\nenv = { FROM_SERVICE = "svc" }\n[[steps]]\nname = "echo"\ncommand = ["echo", "hello", "$HOME"]\nexpected_output_regex = '^hello \\$HOME\\n$'\n[[steps]]\nname = "env"\ncommand = ["env"]\nenv = { FROM_STEP = "step" }\nexpected_output_regex = ["(?m)^FROM_SERVICE=svc$", "(?m)^FROM_STEP=step$", "(?m)^CLNRM_RUN_ID="]\n[[steps]]\nname = "workdir"\ncommand = ["pwd"]\nexpected_output_regex = "^/tmp/clnrm-run-"\n[[steps]]\nname = "exit code"\ncommand = ["false"]\nexpected_exit_code = 1\n[[steps]]\nname = "missing binary"\ncommand = ["no-such-binary"]\nexpected_exit_code = 127\nexpected_stderr_regex = "no-such-binary.*not found"\n[[steps]]\nname = "no shell"\nrun = "echo hi"\nexpected_exit_code = 127\n[[steps]]\nname = "missing workdir"\ncommand = ["pwd"]\nworkdir = "/nowhere"\nexpected_exit_code = 125\n`)
    const first = await run(pool, spec)
    expect(first.steps.map(s => [s.name, s.status, s.failure?.message])).toEqual([['echo', 'pass', undefined], ['env', 'pass', undefined], ['workdir', 'pass', undefined], ['exit code', 'pass', undefined], ['missing binary', 'pass', undefined], ['no shell', 'pass', undefined], ['missing workdir', 'pass', undefined]])
    const second = await run(pool, spec)
    expect(second.status).toBe('pass')
    expect(second.timings.reused.bare).toBe(true)
    // Each run still gets a fresh directory.
    expect(second.steps[2]!.stdout).not.toBe(first.steps[2]!.stdout)
  })

  it('really ends a timed-out command in an image without sh, by stopping its container', async () => {
    const spec = specFrom(dir, 'nosh-timeout', `[meta]\nname = "nosh timeout"\n[services.bare]\nimage = "${NOSH}"\nenv = { UNIQUE = "nosh-timeout" }\n[[steps]]\ncommand = ["sleep", "30"]\ntimeout = "500ms"\ncontinue_on_failure = true\n[[steps]]\nname = "after"\ncommand = ["echo", "hi"]\n`)
    const lease = await pool.acquire(spec)
    const id = lease.services.bare!.containerId
    await lease.release()
    const result = await run(pool, spec)
    expect(result.steps[0]).toMatchObject({ status: 'fail', timedOut: true, failure: { expectation: 'timeout = 500ms' } })
    expect(result.steps[0]!.durationMs).toBeLessThan(10_000)
    expect(result.steps[1]).toMatchObject({ status: 'fail', exitCode: 137, stderr: expect.stringMatching(/^clnrm: not started: the container was stopped when a command timed out/) })
    // The container was stopped (so was the sleep; removing it follows), and the pool replaces it.
    const running = (): string => execFileSync('docker', ['ps', '-q', '--no-trunc', '--filter', `id=${id}`], { encoding: 'utf8' }).trim()
    // The engine marks the container exited a moment after the kill returns.
    for (let i = 0; i < 50 && running(); i++) await new Promise(r => setTimeout(r, 100))
    expect(running()).toBe('')
    const again = await run(pool, { ...spec, steps: spec.steps.map(s => ({ ...s, command: ['true'] })) })
    expect(again.status).toBe('pass')
    expect(again.timings.reused.bare).toBe(false)
  })
})

