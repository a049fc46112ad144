import { execFileSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ContainerPool } from '../core/index.ts'
import type { Lease, StepResult, TestSpec } from '../core/index.ts'
import { runTest } from '../core/run.ts'
import { spawnCli, waitUntil } from './cli-process.ts'
import { clnrmContainers, IMAGE, run, specFrom } from './engine.ts'
import { node, startDev } from './runtimes/contract.ts'
import { tempDir } from './helpers.ts'

const docker = (...args: string[]): string => execFileSync('docker', args, { encoding: 'utf8' })
const lines = (text: string): string[] => text.split('\n').filter(Boolean)
const sessionContainers = (pool: ContainerPool): string[] => lines(docker('ps', '-aq', '--filter', `label=clnrm.session=${pool.sessionId}`))
const sessionNetworks = (pool: ContainerPool): string[] => lines(docker('network', 'ls', '--format', '{{.Name}}', '--filter', `label=clnrm.session=${pool.sessionId}`)).sort()
/** The networks a container is attached to, with its aliases on each, as the engine sees them. */
function networksOf(id: string): Record<string, string[]> {
  const [info] = JSON.parse(docker('inspect', id)) as Array<{ NetworkSettings: { Networks: Record<string, { Aliases: string[] | null }> } }>
  return Object.fromEntries(Object.entries(info!.NetworkSettings.Networks).map(([name, n]) => [name, n.Aliases ?? []]))
}

/** A test of three services (`a`, `b`, `c`) whose step in `a` reaches `b` and `c` by name. */
const trio = (name: string, extra = ''): string =>
  `[meta]\nname = "${name}"\n${['a', 'b', 'c'].map(id => `[services.${id}]\nimage = "${IMAGE}"\n${extra}\n`).join('')}[[steps]]\nservice = "a"\nrun = "ping -c1 -W2 b >/dev/null && ping -c1 -W2 c >/dev/null && echo reached"\nexpected_output_regex = "reached"\n`

describe('multi-service networks: a spare kept ready for the plan', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeAll(async () => ({ dir, cleanup } = await tempDir()))
  afterAll(() => cleanup())

  it('makes a labelled network as soon as the plan has a multi-service test, starts the test on it, keeps one ready for the next, and removes every one at close', async () => {
    const pool = await ContainerPool.create()
    const first = specFrom(dir, 'planned-1', trio('planned 1', 'env = { PLAN = "1" }'))
    const second = specFrom(dir, 'planned-2', trio('planned 2', 'env = { PLAN = "2" }'))
    const leases: Lease[] = []
    try {
      void pool.prepareImages([first, second])
      // Before any test asked for it: the plan alone made it.
      await waitUntil(() => sessionNetworks(pool).length === 1, 'the spare network of the plan')
      const [spare] = sessionNetworks(pool)
      expect(sessionContainers(pool)).toEqual([])

      leases.push(await pool.acquire(first))
      const ids = ['a', 'b', 'c'].map(id => leases[0]!.services[id]!.containerId)
      // Every service on the spare network and on no other, each under its service id.
      expect(ids.map(networksOf)).toEqual(['a', 'b', 'c'].map(id => ({ [spare!]: expect.arrayContaining([id]) })))
      // The plan expects another multi-service test: a new spare is made once these started.
      await waitUntil(() => sessionNetworks(pool).length === 2, 'a new spare for the second test')

      // Two tests at once never share a network.
      leases.push(await pool.acquire(second))
      const otherNetworks = Object.values(leases[1]!.services).map(s => Object.keys(networksOf(s.containerId)))
      expect(new Set(otherNetworks.flat()).size).toBe(1)
      expect(otherNetworks[0]).not.toContain(spare)
      expect(sessionNetworks(pool)).toContain(otherNetworks[0]![0])
    }
    finally {
      await Promise.all(leases.map(lease => lease.release()))
      await pool.close()
    }
    expect(sessionContainers(pool)).toEqual([])
    expect(sessionNetworks(pool)).toEqual([])
  })

  it('takes the plan at creation (as clnrm run does): its network is made without another call, and the test runs on it', async () => {
    const spec = specFrom(dir, 'created-with-plan', trio('created with plan', 'env = { PLAN = "create" }'))
    const pool = await ContainerPool.create({ plan: [spec] })
    try {
      await waitUntil(() => sessionNetworks(pool).length === 1, 'the plan\'s network')
      const [made] = sessionNetworks(pool)
      const lease = await pool.acquire(spec)
      expect(Object.keys(networksOf(lease.services.a!.containerId))).toEqual([made])
      await lease.release()
    }
    finally {
      await pool.close()
    }
    expect(sessionContainers(pool)).toEqual([])
    expect(sessionNetworks(pool)).toEqual([])
  })

  it('runs the planned tests by service name through the spare, and leaves nothing', async () => {
    const pool = await ContainerPool.create()
    const specs: TestSpec[] = [1, 2, 3].map(i => specFrom(dir, `named-${i}`, trio(`named ${i}`, `env = { NAMED = "${i}" }\nreuse = false`)))
    try {
      void pool.prepareImages(specs)
      for (const spec of specs) expect((await run(pool, spec)).status).toBe('pass')
    }
    finally {
      await pool.close()
    }
    expect(sessionContainers(pool)).toEqual([])
    expect(sessionNetworks(pool)).toEqual([])
  })
})

/** A multi-service test in `a`, `b`, `c` with `[services.*]` sharing `extra`, running `step` in `a`. */
const group = (name: string, extra: string, step: string, ids = ['a', 'b', 'c']): string =>
  `[meta]\nname = "${name}"\n${ids.map(id => `[services.${id}]\nimage = "${IMAGE}"\n${extra}\n`).join('')}[[steps]]\nservice = "${ids[0]}"\nrun = ${JSON.stringify(step)}\n`
/** Containers created by a process since `since` (ms), from the engine's own events. */
const createdBy = (pid: number, since: number): number =>
  lines(docker('events', '--since', String(Math.floor(since / 1000) - 1), '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'type=container', '--filter', 'event=create', '--filter', `label=clnrm.pid=${pid}`, '--format', '{{.ID}}')).length
/** What test A leaves: a workdir file, an exported variable, a process; and the reach of its step. */
const DIRTY = 'ping -c1 -W2 b >/dev/null && ping -c1 -W2 c >/dev/null && echo a > marker && export LEAK=1 && (sleep 300 &) && hostname'
/** What test B checks: none of it, and its group still reachable by name. */
const CLEAN = 'ping -c1 -W2 b >/dev/null && ping -c1 -W2 c >/dev/null && test ! -e marker && test -z "$LEAK" && ! ps -o args | grep -v grep | grep -q "sleep 300" && echo clean && hostname'

describe('multi-service groups reused by their set of definitions', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeAll(async () => ({ dir, cleanup } = await tempDir()))
  afterAll(() => cleanup())

  it('gives a later test of another file with the same services the warm group, network included, with a fresh workdir and nothing the earlier run left', async () => {
    const pool = await ContainerPool.create()
    try {
      const first = specFrom(dir, 'group-first', group('first', 'env = { SET = "one" }', DIRTY))
      const second = specFrom(dir, 'group-second', group('second', 'env = { SET = "one" }', CLEAN))
      const a = await run(pool, first)
      expect(a.status).toBe('pass')
      const lease = await pool.acquire(second)
      const ids = ['a', 'b', 'c'].map(id => lease.services[id]!.containerId)
      expect(Object.values(lease.services).map(s => s.reused)).toEqual([true, true, true])
      const network = Object.keys(networksOf(ids[0]!))
      await lease.release()
      const b = await run(pool, second)
      expect(b.status).toBe('pass')
      expect(b.steps[0]!.stdout).toContain('clean')
      // The same containers (the step's host name is its container's), on the same network.
      expect(b.steps[0]!.stdout.trim().split('\n').at(-1)).toBe(a.steps[0]!.stdout.trim())
      expect(ids[0]!.startsWith(a.steps[0]!.stdout.trim())).toBe(true)
      expect(ids.map(id => Object.keys(networksOf(id)))).toEqual([network, network, network])
      expect(pool.stats()).toMatchObject({ started: 3 })
    }
    finally {
      await pool.close()
    }
    expect(sessionContainers(pool)).toEqual([])
    expect(sessionNetworks(pool)).toEqual([])
  })

  it('never gives one group to two tests at once, nor to a test whose services have other ids or definitions', async () => {
    // Room for all four groups: nothing evicted, so what is not reused was not handed over.
    const pool = await ContainerPool.create({ maxContainers: 12 })
    try {
      const same = [1, 2].map(i => specFrom(dir, `twin-${i}`, group(`twin ${i}`, 'env = { SET = "twin" }', 'sleep 0.5 && hostname')))
      const [one, two] = await Promise.all(same.map(spec => pool.acquire(spec)))
      const groupOf = (lease: Lease): string[] => Object.values(lease.services).map(s => s.containerId)
      expect(groupOf(one!).filter(id => groupOf(two!).includes(id))).toEqual([])
      const netOne = Object.keys(networksOf(groupOf(one!)[0]!))
      const netTwo = Object.keys(networksOf(groupOf(two!)[0]!))
      expect(netOne).not.toEqual(netTwo)
      await Promise.all([one!.release(), two!.release()])
      // Renamed services (host names differ) and another definition: groups of their own.
      const renamed = await pool.acquire(specFrom(dir, 'twin-renamed', group('renamed', 'env = { SET = "twin" }', 'true', ['x', 'y', 'z'])))
      const other = await pool.acquire(specFrom(dir, 'twin-other', group('other', 'env = { SET = "other" }', 'true')))
      for (const lease of [renamed, other]) expect(Object.values(lease.services).map(s => s.reused)).toEqual([false, false, false])
      await Promise.all([renamed.release(), other.release()])
      // And the twins' groups are still there to take: both, at once.
      const again = await Promise.all(same.map(spec => pool.acquire(spec)))
      expect(again.flatMap(lease => Object.values(lease.services).map(s => s.reused))).toEqual(Array.from({ length: 6 }, () => true))
      expect(new Set(again.flatMap(groupOf))).toEqual(new Set([...groupOf(one!), ...groupOf(two!)]))
      await Promise.all(again.map(lease => lease.release()))
    }
    finally {
      await pool.close()
    }
    expect(sessionContainers(pool)).toEqual([])
    expect(sessionNetworks(pool)).toEqual([])
  })

  it('starts the services nothing runs in without a shell (no exec until first use), runs commands in them on demand, and still names one whose main process ended at start', async () => {
    const pool = await ContainerPool.create()
    try {
      const since = Math.floor(Date.now() / 1000) - 1
      const lease = await pool.acquire(specFrom(dir, 'deferred', group('deferred', 'env = { SET = "deferred" }', 'true')))
      const execs = (id: string): number => lines(docker('events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'type=container', '--filter', 'event=exec_create', '--filter', `container=${id}`, '--format', '{{.ID}}')).length
      expect(execs(lease.services.a!.containerId)).toBeGreaterThan(0)
      expect([execs(lease.services.b!.containerId), execs(lease.services.c!.containerId)]).toEqual([0, 0])
      // On demand: the shell starts, the run's workdir is made, the command runs in that container.
      const result = await lease.services.b!.runner.exec({ argv: ['sh', '-c', 'pwd && hostname'], workdir: lease.services.b!.workdir, timeoutMs: 10_000 })
      expect(result.exitCode).toBe(0)
      expect(result.stdout.trim().split('\n')).toEqual([lease.services.b!.workdir, lease.services.b!.containerId.slice(0, 12)])
      expect(execs(lease.services.b!.containerId)).toBeGreaterThan(0)
      await lease.release()
      const exiting = specFrom(dir, 'deferred-exit', `[meta]\nname = "deferred exit"\n[services.a]\nimage = "${IMAGE}"\n[services.b]\nimage = "${IMAGE}"\ncommand = ["sh", "-c", "echo no config; exit 3"]\n[[steps]]\nservice = "a"\nrun = "true"\n`)
      await expect(pool.acquire(exiting)).rejects.toMatchObject({ code: 'CLNRM_SERVICE_EXITED', service: 'b', exitCode: 3 })
    }
    finally {
      await pool.close()
    }
    expect(sessionContainers(pool)).toEqual([])
    expect(sessionNetworks(pool)).toEqual([])
  })

  it('a run starts its steps before the start check of the services no step uses ends, yet one that ended at start still errors the run (its name, exit code and logs), with no step reported, and its containers go', async () => {
    const pool = await ContainerPool.create()
    try {
      // The step outlasts the check: the run's verdict, not the step, tells the exit.
      const exiting = specFrom(dir, 'deferred-exit-run', `[meta]\nname = "deferred exit run"\n[services.a]\nimage = "${IMAGE}"\n[services.b]\nimage = "${IMAGE}"\ncommand = ["sh", "-c", "echo no config; exit 3"]\n[[steps]]\nservice = "a"\nrun = "sleep 0.3; echo ran"\n`)
      const reported: StepResult[] = []
      const result = await runTest(exiting, { pool, onStep: step => reported.push(step) })
      expect(result.status).toBe('error')
      expect(result.error?.code).toBe('CLNRM_SERVICE_EXITED')
      expect(result.error?.message).toContain('Service "b" stopped with exit code 3')
      expect(result.error?.message).toContain('no config')
      expect(result.steps).toEqual([])
      expect(reported).toEqual([])
      // Steps that end within the start grace: the kernel is asked whether it runs, and the same error follows.
      const quick = await runTest(specFrom(dir, 'deferred-exit-quick', `[meta]\nname = "deferred exit quick"\n[services.a]\nimage = "${IMAGE}"\n[services.b]\nimage = "${IMAGE}"\ncommand = ["sh", "-c", "echo no config; exit 3"]\n[[steps]]\nservice = "a"\nrun = "true"\n`), { pool, onStep: step => reported.push(step) })
      expect(quick).toMatchObject({ status: 'error', steps: [], error: { code: 'CLNRM_SERVICE_EXITED' } })
      expect(quick.error?.message).toContain('Service "b" stopped with exit code 3')
      expect(quick.error?.message).toContain('no config')
      expect(reported).toEqual([])
      // The lease itself: handed over before the check, which then rejects (asked after a step's
      // worth of time: the engine tells an exit only once it tore the network down); its release removes the containers.
      const lease = await pool.acquire(exiting, { checkStartsLater: true })
      await new Promise(resolve => setTimeout(resolve, 1000))
      await expect(lease.startsChecked()).rejects.toMatchObject({ code: 'CLNRM_SERVICE_EXITED', service: 'b', exitCode: 3 })
      await lease.release()
      expect(sessionContainers(pool)).toEqual([])
      // A service that runs past the grace is called running, and the same run passes.
      const late = specFrom(dir, 'deferred-late-exit', `[meta]\nname = "deferred late exit"\n[services.a]\nimage = "${IMAGE}"\n[services.b]\nimage = "${IMAGE}"\nreuse = false\ncommand = ["sh", "-c", "sleep 2; exit 4"]\n[[steps]]\nservice = "a"\nrun = "echo ran"\n`)
      const passed = await runTest(late, { pool })
      expect(passed.status).toBe('pass')
      expect(passed.steps.map(s => s.stdout.trim())).toEqual(['ran'])
    }
    finally {
      await pool.close()
    }
    expect(sessionContainers(pool)).toEqual([])
    expect(sessionNetworks(pool)).toEqual([])
  })

  it('clnrm run: a test whose second service (used by no step) exits at start fails, exit code 1, naming the service, its exit code and its output, and leaves nothing', async () => {
    const sub = join(dir, 'cli-deferred-exit')
    await mkdir(sub)
    await writeFile(join(sub, 'crash.clnrm.toml'), `[meta]\nname = "crash at start"\n[services.app]\nimage = "${IMAGE}"\n[services.db]\nimage = "${IMAGE}"\ncommand = ["sh", "-c", "echo db: no config; exit 3"]\n[[steps]]\nservice = "app"\nrun = "echo step ran"\n`)
    const cli = spawnCli(['run', '.'], sub)
    const exit = await cli.exited
    expect(cli.output()).toContain('Service "db" stopped with exit code 3')
    expect(cli.output()).toContain('db: no config')
    expect(cli.output()).toMatch(/crash at start/)
    // Reported as the test's error, never as a passed step.
    expect(cli.output()).not.toContain('step ran')
    expect(exit.code).toBe(1)
    expect(exit.ms).toBeLessThan(30_000)
    expect(clnrmContainers(cli.pid)).toEqual([])
    expect(lines(docker('network', 'ls', '-q', '--filter', `label=clnrm.pid=${cli.pid}`))).toEqual([])
  })

  it('clnrm dev -j 1: two files of the same three services run in one group, a save reruns in it, and quitting leaves nothing', async () => {
    const sub = join(dir, 'dev-groups')
    await mkdir(join(sub, 'tests'), { recursive: true })
    await writeFile(join(sub, 'clnrm.toml'), 'tests = ["tests/**/*.clnrm.toml"]\n')
    await writeFile(join(sub, 'tests/one.clnrm.toml'), group('one', 'env = { SET = "dev" }', DIRTY))
    await writeFile(join(sub, 'tests/two.clnrm.toml'), group('two', 'env = { SET = "dev" }', CLEAN))
    const since = Date.now()
    const dev = startDev(node, ['-j', '1'], sub)
    try {
      await dev.waitFor(line => line.type === 'ready')
      const passed = (name: string, reload: number): boolean => dev.lines().some(l => l.type === 'test' && l.name === name && l.status === 'pass' && l.reload >= reload)
      expect([passed('one', 1), passed('two', 1)]).toEqual([true, true])
      const ids = clnrmContainers(dev.pid).sort()
      expect(ids).toHaveLength(3)
      // A save of the second file: its rerun takes the same warm group.
      await writeFile(join(sub, 'tests/two.clnrm.toml'), group('two', 'env = { SET = "dev" }', `${CLEAN} && echo again`))
      await dev.waitFor(line => line.type === 'test' && line.name === 'two' && line.reload > 1)
      expect(passed('two', 2)).toBe(true)
      expect(clnrmContainers(dev.pid).sort()).toEqual(ids)
      expect(createdBy(dev.pid, since)).toBe(3)
    }
    finally {
      dev.send('q\n')
      expect(await dev.exited).toBe(0)
    }
    expect(clnrmContainers(dev.pid)).toEqual([])
    expect(lines(docker('network', 'ls', '-q', '--filter', `label=clnrm.pid=${dev.pid}`))).toEqual([])
  })

  it('clnrm run -j 1: the second file of the same three services runs in the first one\'s containers, clean, and leaves nothing', async () => {
    const sub = join(dir, 'cli-groups')
    await mkdir(sub)
    await writeFile(join(sub, 'a.clnrm.toml'), group('a', 'env = { SET = "cli" }', DIRTY))
    await writeFile(join(sub, 'b.clnrm.toml'), group('b', 'env = { SET = "cli" }', CLEAN))
    const since = Date.now()
    const cli = spawnCli(['run', '-j', '1', '--reporter', 'json', '.'], sub)
    const exit = await cli.exited
    const report = JSON.parse(cli.stdout()) as { tests: Array<{ name: string; status: string; timings: { reused: Record<string, boolean> }; steps: Array<{ stdout: string }> }> }
    expect(report.tests.map(t => [t.name, t.status])).toEqual([['a', 'pass'], ['b', 'pass']])
    expect(report.tests[1]!.timings.reused).toEqual({ a: true, b: true, c: true })
    // The same container ids (host names) in both tests, three containers created in all.
    expect(report.tests[1]!.steps[0]!.stdout.trim().split('\n').at(-1)).toBe(report.tests[0]!.steps[0]!.stdout.trim())
    expect(report.tests[1]!.steps[0]!.stdout).toContain('clean')
    expect(createdBy(cli.pid, since)).toBe(3)
    expect(exit.code).toBe(0)
    expect(clnrmContainers(cli.pid)).toEqual([])
    expect(lines(docker('network', 'ls', '-q', '--filter', `label=clnrm.pid=${cli.pid}`))).toEqual([])
  })
})
