import { execFileSync, spawn } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'
import { node, runCli, startDev, startHumanDev } from './runtimes/contract.ts'

// Faults a long `clnrm dev` session meets, each injected from outside the process under test:
// the engine sees the same `docker rm -f` and `kill -9` a user (or a cleanup script) would do.
// Every container and network is looked up by the child's `clnrm.pid` label, never globally.

const bin = resolve(import.meta.dirname, '../dist/cli/bin.mjs')
const pause = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))
const docker = (...args: string[]): string => execFileSync('docker', args, { encoding: 'utf8' }).trim()
const list = (text: string): string[] => text.split('\n').filter(Boolean)

/** A process's containers (optionally one service's), by the labels the pool puts on them. */
const containersOf = (pid: number, service?: string): string[] =>
  list(docker('ps', '-aq', '--no-trunc', '--filter', `label=clnrm.pid=${pid}`, ...(service ? ['--filter', `label=clnrm.service=${service}`] : [])))
/** A process's networks (multi-service tests get one). */
const networksOf = (pid: number): string[] => list(docker('network', 'ls', '-q', '--filter', `label=clnrm.pid=${pid}`))

/** Polls until `check` holds; the deadline only proves "it does not hang". */
async function until(what: string | (() => string), check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${typeof what === 'string' ? what : what()}`)
    await pause(50)
  }
}

/** Whether a process runs in the container (docker top lists them from the host). */
const runs = (container: string, pattern: RegExp): boolean => {
  try {
    return pattern.test(docker('top', container))
  }
  catch {
    return false
  }
}

/**
 * A one-service test whose step runs `run`; `name` doubles as the marker of its content.
 * (Patterns anchor the whole output unless `(?m)` is on, as in upstream clnrm: hence `(?m)^v1$`.)
 */
const oneService = (name: string, run: string, extra = ''): string =>
  `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "work"\nrun = "${run}"\ntimeout = "90s"\n${extra}`

/** A two-service test: the pool gives it a private network. */
const twoServices = (run: string): string =>
  `[meta]\nname = "pair"\n[services.web]\nimage = "${IMAGE}"\n[services.client]\nimage = "${IMAGE}"\n[[steps]]\nname = "call"\nservice = "client"\nrun = "${run}"\ntimeout = "90s"\n`

describe('faults in a long clnrm dev session (built CLI, real engine)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let file: string
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('clnrm-faults-'))
    await mkdir(join(dir, 'tests'))
    file = join(dir, 'tests/work.clnrm.toml')
  })
  afterEach(() => cleanup())

  it('a service container removed from outside during a step: a clear error naming the service, then a fresh container on the next save', async () => {
    await writeFile(file, oneService('work', 'echo v1'))
    const dev = startHumanDev(node, ['tests'], dir)
    await dev.until(/ready: 1 test/)
    const [first] = containersOf(dev.pid, 'box')
    expect(first).toBeDefined()

    let mark = dev.output().length
    await writeFile(file, oneService('work', 'sleep 60; echo v2'))
    await until('the long step to run', () => runs(first!, /sleep 60/))
    docker('rm', '-f', first!)
    // The shell inside went with the container: the step ends at once (60 s of sleep say it did not wait).
    const shown = await dev.until(/✗ work[^\n]*\n[\s\S]*hint:/, mark, 20_000)
    expect(shown).toMatch(/error the container of service "box" went away during step "work"/)
    expect(shown).toMatch(/hint: .*next run starts a fresh container/)

    mark = dev.output().length
    await writeFile(file, oneService('work', 'echo v3', 'expected_output_regex = "(?m)^v3$"\n'))
    await dev.until(/✓ work/, mark)
    const fresh = containersOf(dev.pid, 'box')
    expect(fresh).toHaveLength(1)
    expect(fresh[0]).not.toBe(first)
    expect(await dev.quit()).toBe(0)
    expect(containersOf(dev.pid)).toEqual([])
  }, 120_000)

  it('an idle service container removed from outside is replaced on the next save', async () => {
    await writeFile(file, oneService('work', 'echo v1'))
    const dev = startDev(node, ['tests'], dir)
    await dev.waitFor(line => line.type === 'ready')
    const [first] = containersOf(dev.pid, 'box')
    docker('rm', '-f', first!)
    await writeFile(file, oneService('work again', 'echo v2', 'expected_output_regex = "(?m)^v2$"\n'))
    const result = await dev.waitFor(line => line.type === 'test' && line.name === 'work again')
    expect(result).toMatchObject({ status: 'pass' })
    expect(dev.lines().filter(l => l.type === 'session-error')).toEqual([])
    const fresh = containersOf(dev.pid, 'box')
    expect(fresh).toHaveLength(1)
    expect(fresh[0]).not.toBe(first)
    dev.send('q\n')
    expect(await dev.exited).toBe(0)
    expect(containersOf(dev.pid)).toEqual([])
  }, 120_000)

  it('50 saves within one second: each pre-empts the older run, a handful of results, no stale result, the last content\'s result last', async () => {
    const SAVES = 50
    await writeFile(file, oneService('save 0', 'echo v0'))
    const dev = startDev(node, ['tests'], dir)
    const ready = await dev.waitFor(line => line.type === 'ready')
    const from = dev.lines().indexOf(ready) + 1
    // Each save's content is its own: a name that says which save it was, and an output that
    // only that content expects. Every run sleeps a little, so runs overlap saves and get pre-empted.
    // Saves are due every 20 ms from the start, so a late timer on a busy machine is caught up
    // and the burst stays within one second.
    const burstStart = Date.now()
    for (let i = 1; i <= SAVES; i++) {
      await writeFile(file, oneService(`save ${i}`, `sleep 0.1; echo v${i}`, `expected_output_regex = "(?m)^v${i}$"\n`))
      await pause(burstStart + i * (1000 / SAVES) - Date.now())
    }
    const burstMs = Date.now() - burstStart
    const last = await dev.waitFor(line => line.type === 'test' && line.name === `save ${SAVES}`)
    expect(last).toMatchObject({ status: 'pass' })
    // Anything still in flight would show within this time; nothing may come after the last content.
    await pause(1500)
    const results = dev.lines().slice(from).filter(l => l.type === 'test')
    expect(results.at(-1)).toEqual(last)
    // Results only move forward: a superseded (stale) run never shows after a newer one.
    const saves = results.map(r => Number(String(r.name).replace('save ', '')))
    expect(saves).toEqual([...saves].sort((a, b) => a - b))
    expect(results.every(r => r.status === 'pass')).toBe(true)
    // Every save starts a run at once and a newer save cancels the older run: a handful of results,
    // not fifty. (Bounds are loose: a busy machine's late timers leave gaps a run completes in.)
    const reloads = dev.lines().slice(from).filter(l => l.type === 'reload')
    expect(results.length).toBeLessThanOrEqual(10)
    // A reload that showed no result had every run cancelled: it never stands for work that went unseen.
    const shownIn = new Set(results.map(r => r.reload))
    for (const reload of reloads.filter(r => !shownIn.has(r.id))) expect(reload.metrics.tests.every((t: { status: string }) => t.status === 'superseded')).toBe(true)
    console.log(`${SAVES} saves in ${burstMs} ms: ${reloads.length} reload(s), ${results.length} result(s) shown, ${reloads.flatMap(r => r.metrics.tests).filter((t: { status: string }) => t.status === 'superseded').length} superseded`)
    dev.send('q\n')
    expect(await dev.exited).toBe(0)
  }, 120_000)

  it('kill -9 of clnrm run mid-step: the next start sweeps its containers and its network', async () => {
    await writeFile(file, twoServices('sleep 60'))
    const child = spawn(process.execPath, [bin, 'run', 'tests'], { cwd: dir, stdio: 'ignore' })
    const pid = child.pid!
    await until('both services and their network', () => containersOf(pid).length === 2 && networksOf(pid).length === 1)
    const [client] = containersOf(pid, 'client')
    await until('the step to run', () => runs(client!, /sleep 60/))
    child.kill('SIGKILL')
    await new Promise(r => child.once('exit', r))

    const other = await tempDir('clnrm-faults-next-')
    try {
      await writeFile(join(other.dir, 'quick.clnrm.toml'), oneService('quick', 'true'))
      expect((await runCli(node, ['run', '.'], other.dir)).code).toBe(0)
    }
    finally {
      await other.cleanup()
    }
    expect(containersOf(pid)).toEqual([])
    expect(networksOf(pid)).toEqual([])
  }, 120_000)

  it('kill -9 of clnrm dev mid-step: the next start sweeps its containers and its network', async () => {
    await writeFile(file, twoServices('echo ok'))
    const first = startDev(node, ['tests'], dir)
    await first.waitFor(line => line.type === 'ready')
    expect(networksOf(first.pid)).toHaveLength(1)
    await writeFile(file, twoServices('sleep 60'))
    const [client] = containersOf(first.pid, 'client')
    await until('the step to run', () => runs(client!, /sleep 60/))
    first.kill('SIGKILL')
    await first.exited

    await writeFile(file, twoServices('echo ok'))
    const second = startDev(node, ['tests'], dir)
    await second.waitFor(line => line.type === 'ready')
    expect(containersOf(first.pid)).toEqual([])
    expect(networksOf(first.pid)).toEqual([])
    second.send('q\n')
    expect(await second.exited).toBe(0)
    expect(containersOf(second.pid)).toEqual([])
    expect(networksOf(second.pid)).toEqual([])
  }, 120_000)
})
