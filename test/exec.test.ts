import { execFileSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ContainerPool } from '../core/index.ts'
import { createRecordingPool, IMAGE, run, specFrom } from './engine.ts'
import { tempDir } from './helpers.ts'

/** Process lines in a container (`docker top`), for leftover checks. */
const top = (id: string): string => execFileSync('docker', ['top', id, '-o', 'pid,args'], { encoding: 'utf8' })

describe('step execution on the real engine: kills, output, attribution, leftovers', () => {
  let pool: ContainerPool
  let dir: string
  let cleanup: () => Promise<void>
  beforeAll(async () => {
    ({ pool } = await createRecordingPool())
    ;({ dir, cleanup } = await tempDir())
  })
  afterAll(async () => {
    await pool.close()
    await cleanup()
  })

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

  it('fails the steps left when [meta] timeout is spent, without starting them, and keeps the container', async () => {
    const spec = specFrom(dir, 'spent', `[meta]\nname = "spent"\ntimeout = "400ms"\n[services.box]\nimage = "${IMAGE}"\nenv = { UNIQUE = "spent" }\n[[steps]]\nname = "slow"\nrun = "sleep 5"\ncontinue_on_failure = true\n[[steps]]\nname = "second"\nrun = "echo two"\n[[steps]]\nname = "third"\nrun = "echo three"\n`)
    const result = await run(pool, spec)
    expect(result.steps.map(s => [s.name, s.status])).toEqual([['slow', 'fail'], ['second', 'fail'], ['third', 'fail']])
    expect(result.steps[0]!.failure).toMatchObject({ expectation: '[meta] timeout = 400ms', message: 'the test ran out of its time budget' })
    for (const step of result.steps.slice(1)) {
      expect(step.failure).toMatchObject({ expectation: '[meta] timeout = 400ms', message: expect.stringContaining('before this step started') })
      expect(step.stdout).toBe('')
    }
    const again = await run(pool, spec)
    expect(again.timings.reused.box).toBe(true)
  })
})
