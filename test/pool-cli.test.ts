import { execFileSync, spawn } from 'node:child_process'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'
import { node, startDev } from './runtimes/contract.ts'

const bin = resolve(import.meta.dirname, '../dist/cli/bin.mjs')
const box = (name: string, extra = '', step = 'run = "true"'): string => `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\n${extra}\n[[steps]]\nname = "${name} step"\n${step}\n`

const children = new Set<ReturnType<typeof spawn>>()
afterAll(() => {
  for (const child of children) child.kill('SIGKILL')
})

/**
 * Spawns `clnrm run`, polling `docker ps -a` for its containers (by its pid label) while it runs.
 * Resolves with its exit code, output, how long it took and the most containers seen at once.
 */
function spawnRun(args: string[], cwd: string, options: { onOutput?: (text: string, child: ReturnType<typeof spawn>) => void } = {}) {
  const started = Date.now()
  const child = spawn(process.execPath, [bin, 'run', ...args], { cwd, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let output = ''
  const onData = (d: Buffer): void => {
    output += d.toString()
    options.onOutput?.(output, child)
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  let most = 0
  let exited = false
  const exit = new Promise<number | null>(r => child.once('exit', (code) => {
    exited = true
    children.delete(child)
    r(code)
  }))
  const poll = (async () => {
    while (!exited) {
      most = Math.max(most, clnrmContainers(child.pid).length)
      await new Promise(r => setTimeout(r, 100))
    }
  })()
  return {
    child,
    done: (async () => {
      const code = await exit
      await poll
      return { code, output, ms: Date.now() - started, most, pid: child.pid! }
    })(),
  }
}

describe('the container limit and lifecycle, as clnrm users see them', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('clnrm run -j 12 on 12 different definitions never has more than 8 containers alive, and all pass', async () => {
    for (let i = 0; i < 12; i++) await writeFile(join(dir, `t${i}.clnrm.toml`), box(`t${i}`, `env = { WHICH = "${i}" }`, 'run = "sleep 0.5"'))
    const { code, output, most, ms, pid } = await spawnRun(['.', '-j', '12'], dir).done
    expect(output).toMatch(/Tests: 12 passed \(12\)/)
    expect(code).toBe(0)
    expect(most).toBeGreaterThan(0)
    expect(most).toBeLessThanOrEqual(8)
    expect(ms).toBeLessThan(120_000)
    expect(clnrmContainers(pid)).toEqual([])
  })

  it('clnrm run -j 4 on 12 files sharing one definition reuses a few containers, all pass', async () => {
    for (let i = 0; i < 12; i++) await writeFile(join(dir, `s${i}.clnrm.toml`), box(`s${i}`, 'env = { SHARED = "one" }', 'run = "sleep 0.3"'))
    const { code, output, most, pid } = await spawnRun(['.', '-j', '4'], dir).done
    expect(output).toMatch(/Tests: 12 passed \(12\)/)
    expect(code).toBe(0)
    expect(most).toBeGreaterThan(0)
    // One per job at most: a test waits for a container being released rather than starting another.
    expect(most).toBeLessThanOrEqual(4)
    expect(output.match(/^starting box/gm)?.length ?? 0).toBeLessThanOrEqual(4)
    expect(clnrmContainers(pid)).toEqual([])
  })

  it('clnrm dev on 12 files sharing one definition holds between 1 and -j containers, not 12', async () => {
    await writeFile(join(dir, 'clnrm.toml'), 'tests = ["tests/**/*.clnrm.toml"]\n')
    await mkdir(join(dir, 'tests'))
    for (let i = 0; i < 12; i++) await writeFile(join(dir, `tests/d${i}.clnrm.toml`), box(`d${i}`, 'env = { SHARED = "dev" }'))
    const dev = startDev(node, ['-j', '2'], dir)
    try {
      await dev.waitFor(line => line.type === 'ready')
      const alive = clnrmContainers(dev.pid).length
      expect(alive).toBeGreaterThanOrEqual(1)
      expect(alive).toBeLessThanOrEqual(2)
    }
    finally {
      dev.send('q\n')
      expect(await dev.exited).toBe(0)
    }
    expect(clnrmContainers(dev.pid)).toEqual([])
  })

  it('Ctrl-C while a health check is pending exits at once with 130 and leaves no container', async () => {
    await writeFile(join(dir, 'unhealthy.clnrm.toml'), box('unhealthy', 'health_check = { cmd = "false", interval = "200ms", timeout = "60s" }'))
    let sent = 0
    const run = spawnRun(['.'], dir, {
      onOutput: (text, child) => {
        if (!sent && /starting box/.test(text)) {
          sent = Date.now()
          // Once the container exists and its health check is being polled.
          setTimeout(() => child.kill('SIGINT'), 1500)
        }
      },
    })
    const { code, pid, output } = await run.done
    expect(sent, output).toBeGreaterThan(0)
    expect(code).toBe(130)
    expect(Date.now() - sent).toBeLessThan(1500 + 6000)
    expect(clnrmContainers(pid)).toEqual([])
  })

  it('names a service that exits at once: the service, its exit code, its output, a hint; exits 1 and cleans up', async () => {
    await writeFile(join(dir, 'exits.clnrm.toml'), box('exits', 'command = ["sh", "-c", "echo listening failed: no config; exit 2"]'))
    const { code, output, ms, pid } = await spawnRun(['.'], dir).done
    expect(code).toBe(1)
    expect(output).toMatch(/Service "box" stopped with exit code 2/)
    expect(output).toMatch(/listening failed: no config/)
    expect(output).toMatch(/hint: /)
    expect(output).not.toMatch(/HTTP code|stream ended/)
    expect(ms).toBeLessThan(30_000)
    expect(clnrmContainers(pid)).toEqual([])
  })

  it('gives three tests that share a failing reset three identical errors, never error/pass/error', async () => {
    for (const name of ['r1', 'r2', 'r3']) await writeFile(join(dir, `${name}.clnrm.toml`), box(name, 'reset = "exit 5"'))
    const { code, output, pid } = await spawnRun(['.', '-j', '1', '--reporter', 'json'], dir).done
    expect(code).toBe(1)
    const report = JSON.parse(output.slice(output.indexOf('{'), output.lastIndexOf('}') + 1)) as { tests: Array<{ status: string; error?: { code?: string } }> }
    expect(report.tests.map(t => [t.status, t.error?.code])).toEqual([['error', 'CLNRM_RESET_FAILED'], ['error', 'CLNRM_RESET_FAILED'], ['error', 'CLNRM_RESET_FAILED']])
    expect(clnrmContainers(pid)).toEqual([])
  })

  it('publishes a running test\'s ports on 127.0.0.1 only (docker inspect)', async () => {
    await writeFile(join(dir, 'ports.clnrm.toml'), box('ports', 'ports = [8080]', 'run = "sleep 3"'))
    let inspected: string[] = []
    const run = spawnRun(['.'], dir)
    const deadline = Date.now() + 30_000
    while (inspected.length === 0 && Date.now() < deadline) {
      const ids = clnrmContainers(run.child.pid)
      if (ids.length) {
        const info = JSON.parse(execFileSync('docker', ['inspect', ...ids], { encoding: 'utf8' })) as Array<{ NetworkSettings: { Ports: Record<string, Array<{ HostIp: string }> | null> } }>
        inspected = info.flatMap(c => Object.values(c.NetworkSettings.Ports).flatMap(b => (b ?? []).map(x => x.HostIp)))
      }
      await new Promise(r => setTimeout(r, 100))
    }
    expect(inspected).toEqual(['127.0.0.1'])
    expect((await run.done).code).toBe(0)
  })
})

describe('a test deleted while it runs, in clnrm dev', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  const networksOf = (pid: number): string[] =>
    execFileSync('docker', ['network', 'ls', '-q', '--filter', `label=clnrm.pid=${pid}`], { encoding: 'utf8' }).split('\n').filter(Boolean)
  const pair = (step: string): string => `[meta]\nname = "pair"\n[services.web]\nimage = "${IMAGE}"\n[services.client]\nimage = "${IMAGE}"\n[[steps]]\nservice = "client"\nrun = "${step}"\n`

  it('releases, then removes its containers and network at once (not after the idle timeout)', async () => {
    await mkdir(join(dir, 'tests'))
    const file = join(dir, 'tests/pair.clnrm.toml')
    await writeFile(file, pair('true'))
    const dev = startDev(node, [], dir)
    try {
      await dev.waitFor(line => line.type === 'ready')
      const ids = clnrmContainers(dev.pid)
      expect(ids).toHaveLength(2)
      expect(networksOf(dev.pid)).toHaveLength(1)
      await writeFile(file, pair('sleep 30'))
      const deadline = Date.now() + 20_000
      const running = (): boolean => ids.some(id => /sleep 30/.test(execFileSync('docker', ['top', id], { encoding: 'utf8' })))
      while (!running() && Date.now() < deadline) await new Promise(r => setTimeout(r, 100))
      expect(running()).toBe(true)
      await rm(file)
      await dev.waitFor(line => line.type === 'removed')
      const gone = Date.now() + 10_000
      while ((clnrmContainers(dev.pid).length || networksOf(dev.pid).length) && Date.now() < gone) await new Promise(r => setTimeout(r, 100))
      expect(clnrmContainers(dev.pid)).toEqual([])
      expect(networksOf(dev.pid)).toEqual([])
    }
    finally {
      dev.send('q\n')
      expect(await dev.exited).toBe(0)
    }
  })

  it('clnrm run names the service and the key when the engine refuses a container, and cleans up', async () => {
    await writeFile(join(dir, 'a-file'), 'not a directory')
    // A file mounted over a directory: valid as written, refused by the engine.
    await writeFile(join(dir, 'refused.clnrm.toml'), box('refused', 'volumes = [{ host_path = "a-file", container_path = "/etc" }]'))
    const { code, output, ms, pid } = await spawnRun(['.'], dir).done
    expect(code).toBe(1)
    expect(output).toMatch(/engine refused to start service "box" \(check its `volumes`\)/)
    expect(output).toMatch(/hint: Fix `volumes` of \[services\.box\]/)
    expect(output).not.toMatch(/HTTP code/)
    expect(ms).toBeLessThan(30_000)
    expect(clnrmContainers(pid)).toEqual([])
  })
})

describe('Ctrl-C in clnrm dev while a service waits for its health check', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('stops the wait at once (not after the 60 s check), exits 130 and leaves no container', async () => {
    await mkdir(join(dir, 'tests'))
    await writeFile(join(dir, 'tests/unhealthy.clnrm.toml'), box('unhealthy', 'health_check = { cmd = "false", interval = "200ms", timeout = "60s" }'))
    const child = spawn(process.execPath, [bin, 'dev'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] })
    children.add(child)
    let output = ''
    child.stdout.on('data', (d: Buffer) => void (output += d.toString()))
    child.stderr.on('data', (d: Buffer) => void (output += d.toString()))
    const exited = new Promise<number | null>(r => child.once('exit', r))
    const deadline = Date.now() + 30_000
    while (clnrmContainers(child.pid).length === 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 100))
    expect(clnrmContainers(child.pid), output).toHaveLength(1)
    // Well inside the health check's wait.
    await new Promise(r => setTimeout(r, 1000))
    const sent = Date.now()
    child.kill('SIGINT')
    expect(await exited).toBe(130)
    expect(Date.now() - sent).toBeLessThan(6000)
    expect(output).not.toMatch(/ready: /)
    expect(clnrmContainers(child.pid!)).toEqual([])
  })
})
