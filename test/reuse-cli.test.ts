import { execFile, execFileSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ContainerPool } from '../core/index.ts'
import { connectDocker } from '../core/engine/docker.ts'
import { claim, listParked } from '../core/engine/reuse.ts'
import { spawnCli } from './cli-process.ts'
import { IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'

const docker = (...args: string[]): string => execFileSync('docker', args, { encoding: 'utf8' })
/** Containers a `--reuse` process created (their `clnrm.pid` is 0; `clnrm.creator` names the process). */
const createdBy = (pids: number[]): Array<{ id: string; name: string; running: boolean }> => pids.flatMap(pid =>
  docker('ps', '-a', '--filter', `label=clnrm.creator=${pid}`, '--format', '{{.ID}} {{.Names}} {{.State}}').split('\n').filter(Boolean).map((line) => {
    const [id, name, state] = line.split(' ')
    return { id: id!, name: name!, running: state === 'running' }
  }))
/** Containers the engine created for one process, by its pid or creator label, from the engine's event log. */
function createEvents(pid: number, since: number): number {
  const count = (label: string): number => docker('events', '--since', String(Math.floor(since / 1000) - 1), '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'type=container', '--filter', 'event=create', '--filter', `label=${label}=${pid}`, '--format', '{{.ID}}').split('\n').filter(Boolean).length
  return count('clnrm.pid') + count('clnrm.creator')
}
const box = (name: string, extra: string, step: string): string => `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\n${extra}\n[[steps]]\nname = "${name} step"\nrun = "${step}"\n`

const spawned: number[] = []
afterAll(() => {
  // What these tests left parked: only this file's processes' containers.
  const ids = createdBy(spawned).map(c => c.id)
  if (ids.length) docker('rm', '-f', ...ids)
})

async function run(args: string[], cwd: string) {
  const cli = spawnCli(['run', ...args], cwd)
  spawned.push(cli.pid)
  const exit = await cli.exited
  return { ...exit, pid: cli.pid, output: cli.output() }
}

describe('clnrm run --reuse: containers across runs', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('leaves an idle container the next run claims: no new container, and the next run still sees a clean one', async () => {
    // Each file checks it finds no state, then leaves some: in its workdir and in the service's state.
    const step = 'test ! -e /tmp/state/x && test ! -e marker && mkdir -p /tmp/state && echo x > /tmp/state/x && echo m > marker'
    for (const name of ['a', 'b', 'c']) await writeFile(join(dir, `${name}.clnrm.toml`), box(name, 'env = { REUSE = "across" }\nreset = "rm -rf /tmp/state"', step))
    const first = await run(['--reuse', '-j', '1', '.'], dir)
    expect(first.output).toMatch(/Tests: 3 passed \(3\)/)
    expect(first.code).toBe(0)
    const left = createdBy([first.pid])
    expect(left).toHaveLength(1)
    expect(left[0]!.running).toBe(true)
    expect(left[0]!.name).toMatch(/^clnrm-idle-[0-9a-f]{12}-g1-t\d+$/)

    // The clnrm.toml setting does what --reuse does.
    await writeFile(join(dir, 'clnrm.toml'), 'reuse = true\n')
    const since = Date.now()
    const second = await run(['-j', '1', '.'], dir)
    expect(second.output).toMatch(/Tests: 3 passed \(3\)/)
    expect(second.code).toBe(0)
    expect(createEvents(second.pid, since)).toBe(0)
    // The same container, parked again one generation on.
    const after = createdBy([first.pid])
    expect(after.map(c => c.id)).toEqual([left[0]!.id])
    expect(after[0]!.name).toMatch(/^clnrm-idle-[0-9a-f]{12}-g2-t\d+$/)
  })

  it('two clnrm run --reuse at once never run in one container together, and every run is accounted for', async () => {
    // Every run logs its start and end in the service's state (no reset): interleaved lines would mean two runs in one container.
    const step = 'echo start $CLNRM_RUN_ID >> /tmp/runs.log; sleep 0.3; echo end $CLNRM_RUN_ID >> /tmp/runs.log'
    for (let i = 0; i < 6; i++) await writeFile(join(dir, `p${i}.clnrm.toml`), box(`p${i}`, 'env = { REUSE = "parallel" }', step))
    const first = await run(['--reuse', '-j', '2', '.'], dir)
    expect(first.code).toBe(0)
    const parked = createdBy([first.pid]).length
    expect(parked).toBeGreaterThanOrEqual(1)
    const [a, b] = await Promise.all([run(['--reuse', '-j', '2', '.'], dir), run(['--reuse', '-j', '2', '.'], dir)])
    expect([a.code, b.code]).toEqual([0, 0])
    const all = createdBy([first.pid, a.pid, b.pid])
    expect(all.every(c => c.running && /^clnrm-idle-/.test(c.name))).toBe(true)
    let runs = 0
    for (const container of all) {
      const lines = docker('exec', container.id, 'cat', '/tmp/runs.log').trim().split('\n')
      for (let i = 0; i < lines.length; i += 2) {
        const [start, end] = [lines[i]!.split(' '), lines[i + 1]?.split(' ')]
        expect(start[0]).toBe('start')
        // The very next line ends the same run: nothing else ran in between.
        expect(end).toEqual(['end', start[1]])
        runs++
      }
    }
    expect(runs).toBe(18)
  })

  it('a later clnrm process, with or without --reuse, removes containers left idle longer than reuse_idle_timeout', async () => {
    await writeFile(join(dir, 'clnrm.toml'), 'reuse_idle_timeout = "1s"\n')
    await writeFile(join(dir, 's.clnrm.toml'), box('s', 'env = { REUSE = "sweep" }', 'true'))
    const first = await run(['--reuse', '.'], dir)
    expect(first.code).toBe(0)
    expect(createdBy([first.pid])).toHaveLength(1)
    await new Promise(r => setTimeout(r, 1500))
    const second = await run(['.'], dir)
    expect(second.code).toBe(0)
    expect(createdBy([first.pid])).toEqual([])
  })
})

describe('the cross-process lease', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  /** Parks one container of a fresh definition with a real `clnrm run --reuse`; returns it as the pool lists it. */
  async function parkOne(tag: string) {
    await writeFile(join(dir, 'l.clnrm.toml'), box('l', `env = { REUSE = "${tag}" }`, 'true'))
    const first = await run(['--reuse', '.'], dir)
    expect(first.code).toBe(0)
    const { engine } = await connectDocker()
    const ids = createdBy([first.pid]).map(c => c.id)
    const parked = (await listParked(engine)).filter(p => ids.some(id => p.id.startsWith(id)))
    expect(parked).toHaveLength(1)
    return { engine, parked: parked[0]! }
  }
  const nameOf = (id: string): string => docker('inspect', '-f', '{{.Name}}', id).trim()

  it('lets exactly one of eight processes renaming a parked container to its claim name win, and sweeps a claim whose holder is gone', async () => {
    const { parked } = await parkOne('race')
    const target = `clnrm-used-${parked.token}-g${parked.generation}`
    // Eight separate processes ask the engine at once, as eight clnrm processes would.
    const won = await Promise.all(Array.from({ length: 8 }, () => new Promise<boolean>(done => execFile('docker', ['rename', parked.name, target], error => done(!error)))))
    expect(won.filter(Boolean)).toHaveLength(1)
    expect(nameOf(parked.id)).toBe(`/${target}`)
    // No live process recorded holding it (as when its claimant is killed): the next clnrm process removes it.
    const pool = await ContainerPool.create()
    await pool.close()
    expect(docker('ps', '-aq', '--no-trunc', '--filter', `id=${parked.id}`).trim()).toBe('')
  })

  it('holds a claimed container for its live process: a second claim fails, and a new pool neither sweeps nor adopts it', async () => {
    const { engine, parked } = await parkOne('held')
    const held = await claim(engine, parked)
    expect(held).toBeDefined()
    expect(await claim(engine, parked)).toBeUndefined()
    const pool = await ContainerPool.create({ reuseAcrossRuns: true })
    await pool.close()
    expect(pool.stats().adopted).toBe(0)
    expect(nameOf(parked.id)).toMatch(/^\/clnrm-used-/)
  })
})
