import { execFileSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ContainerPool } from '../core/index.ts'
import type { PoolEvent, TestSpec } from '../core/index.ts'
import { spawnCli } from './cli-process.ts'
import { clnrmContainers, IMAGE, run, specFrom } from './engine.ts'
import { tempDir } from './helpers.ts'

const docker = (...args: string[]): string => execFileSync('docker', args, { encoding: 'utf8' })
const sessionContainers = (pool: ContainerPool): string[] => docker('ps', '-aq', '--filter', `label=clnrm.session=${pool.sessionId}`).split('\n').filter(Boolean)
const box = (name: string, extra = '', step = 'run = "true"'): string => `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\n${extra}\n[[steps]]\nname = "${name} step"\n${step}\n`

/** Containers the engine created for one process (by its pid label), from the engine's own event log. */
function createdBy(pid: number, since: number): number {
  const out = docker('events', '--since', String(Math.floor(since / 1000) - 1), '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'type=container', '--filter', 'event=create', '--filter', `label=clnrm.pid=${pid}`, '--format', '{{.ID}}')
  return out.split('\n').filter(Boolean).length
}

describe('the pool keyed by service definition', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeAll(async () => ({ dir, cleanup } = await tempDir()))
  afterAll(() => cleanup())

  it('starts one container for eight tests of one definition arriving at once: the others wait for that start', async () => {
    const events: PoolEvent[] = []
    const pool = await ContainerPool.create({ onEvent: e => events.push(e) })
    try {
      const specs = Array.from({ length: 8 }, (_, i) => specFrom(dir, `coalesce-${i}`, box(`coalesce ${i}`, 'env = { COALESCE = "1" }')))
      const results = await Promise.all(specs.map(spec => run(pool, spec)))
      expect(results.map(r => r.status)).toEqual(Array.from({ length: 8 }, () => 'pass'))
      const firstReady = events.findIndex(e => e.type === 'pool:container-ready')
      expect(firstReady).toBeGreaterThan(0)
      // Before the first container was ready, exactly one start was in flight.
      expect(events.slice(0, firstReady).filter(e => e.type === 'pool:container-starting')).toHaveLength(1)
      expect(pool.stats().reused).toBeGreaterThanOrEqual(1)
    }
    finally {
      await pool.close()
    }
    expect(sessionContainers(pool)).toEqual([])
  })

  it('starts extra containers when the queued work outlasts a start, one at a time per definition, never over the limit', async () => {
    let starting = 0
    let mostStarting = 0
    const pool = await ContainerPool.create({ maxContainers: 3, onEvent: (e) => {
      if (e.type === 'pool:container-starting') mostStarting = Math.max(mostStarting, ++starting)
      if (e.type === 'pool:container-ready') starting--
    } })
    try {
      // Runs of 1.5 s, six at once: waiting for one container costs far more than starting another.
      const specs = Array.from({ length: 12 }, (_, i) => specFrom(dir, `long-${i}`, box(`long ${i}`, 'env = { LONG = "1" }', 'run = "sleep 1.5"')))
      const queue = [...specs]
      let most = 0
      const poll = setInterval(() => (most = Math.max(most, pool.stats().live)), 20)
      const worker = async (): Promise<void> => {
        for (let spec = queue.shift(); spec; spec = queue.shift()) expect((await run(pool, spec)).status).toBe('pass')
      }
      await Promise.all(Array.from({ length: 6 }, worker))
      clearInterval(poll)
      expect(pool.stats().started).toBeGreaterThan(1)
      expect(pool.stats().started).toBeLessThanOrEqual(3)
      expect(most).toBeLessThanOrEqual(3)
      expect(mostStarting).toBe(1)
    }
    finally {
      await pool.close()
    }
  })

  it('lets tests of another definition pass a test waiting for its own definition\'s container', async () => {
    const pool = await ContainerPool.create({ maxContainers: 2 })
    try {
      const a = specFrom(dir, 'pass-a', box('pass a', 'env = { PASS = "a" }', 'run = "sleep 1"'))
      const a2 = specFrom(dir, 'pass-a2', box('pass a2', 'env = { PASS = "a" }'))
      const b = specFrom(dir, 'pass-b', box('pass b', 'env = { PASS = "b" }'))
      const order: string[] = []
      const go = (spec: TestSpec): Promise<void> => run(pool, spec).then((r) => {
        expect(r.status).toBe('pass')
        order.push(r.name)
      })
      const first = go(a)
      await new Promise(r => setTimeout(r, 50))
      // a2 queues for a's container (busy for 1 s); b, behind it, needs another definition and goes
      // at once (a2 may later start a container of its own, once its wait outlasts a start).
      await Promise.all([first, go(a2), go(b)])
      expect(order.indexOf('pass b')).toBeLessThan(order.indexOf('pass a'))
    }
    finally {
      await pool.close()
    }
  })
})

describe('clnrm run -j N with files sharing a definition', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeAll(async () => ({ dir, cleanup } = await tempDir()))
  afterAll(() => cleanup())

  it('clnrm run -j 8 on 24 one-step files of one definition starts far fewer containers than jobs, all pass, none left', async () => {
    for (let i = 0; i < 24; i++) await writeFile(join(dir, `j${String(i).padStart(2, '0')}.clnrm.toml`), box(`j${i}`, 'env = { JOBS = "8" }'))
    const since = Date.now()
    const cli = spawnCli(['run', '-j', '8', '.'], dir)
    const exit = await cli.exited
    expect(cli.output()).toMatch(/Tests: 24 passed \(24\)/)
    expect(exit.code).toBe(0)
    expect(exit.ms).toBeLessThan(120_000)
    const created = createdBy(cli.pid, since)
    expect(created).toBeGreaterThanOrEqual(1)
    // One start in flight per definition, and one-step runs justify a spare at most (two on a loaded machine).
    expect(created).toBeLessThanOrEqual(3)
    expect(clnrmContainers(cli.pid)).toEqual([])
  })

  it('keeps files apart on one reused container: file B does not see the workdir file, env, state or processes file A left', async () => {
    const sub = join(dir, 'hermetic')
    await mkdir(sub)
    const service = 'env = { HERMETIC = "1" }\nreset = "rm -rf /tmp/state"'
    // A leaves a file in its workdir, exports a variable, writes service state and leaves a process running.
    await writeFile(join(sub, 'a.clnrm.toml'), box('a', service, 'run = "echo a > marker && export LEAK=1 && mkdir -p /tmp/state && echo a > /tmp/state/x && (sleep 300 &) && true"'))
    await writeFile(join(sub, 'b.clnrm.toml'), box('b', service, 'run = "test ! -e marker && test -z \\"$LEAK\\" && test ! -e /tmp/state/x && ! ps -o args | grep -v grep | grep -q \'sleep 300\' && echo clean"'))
    const since = Date.now()
    const cli = spawnCli(['run', '-j', '1', '--reporter', 'json', '.'], sub)
    const exit = await cli.exited
    const report = JSON.parse(cli.stdout()) as { tests: Array<{ name: string; status: string; timings: { reused: Record<string, boolean> }; steps: Array<{ stdout: string }> }> }
    expect(report.tests.map(t => [t.name, t.status])).toEqual([['a', 'pass'], ['b', 'pass']])
    // The same container: B's run reused A's.
    expect(report.tests[1]!.timings.reused.box).toBe(true)
    expect(createdBy(cli.pid, since)).toBe(1)
    expect(report.tests[1]!.steps[0]!.stdout).toContain('clean')
    expect(exit.code).toBe(0)
  })
})
