import { spawn } from 'node:child_process'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ContainerPool } from '../core/index.ts'
import { spawnCli, waitUntil } from './cli-process.ts'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'
import { node, runCli, startDev } from './runtimes/contract.ts'

const bin = resolve(import.meta.dirname, '../dist/cli/bin.mjs')

const humans = new Set<ReturnType<typeof spawn>>()
afterAll(() => {
  for (const child of humans) child.kill('SIGKILL')
})

/** Starts `clnrm dev` with human output and collects what it prints. */
function startHuman(args: string[], cwd: string) {
  const child = spawn(process.execPath, [bin, 'dev', ...args], { cwd, env: { ...process.env, NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => void (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => void (out += d.toString()))
  const until = async (pattern: RegExp, timeoutMs = 60_000): Promise<string> => {
    const deadline = Date.now() + timeoutMs
    while (!pattern.test(out)) {
      if (Date.now() > deadline) throw new Error(`no ${pattern} in:\n${out}`)
      await new Promise(r => setTimeout(r, 50))
    }
    return out
  }
  const exited = new Promise<number | null>(r => child.once('exit', code => r(code)))
  humans.add(child)
  void exited.then(() => humans.delete(child))
  return { child, until, exited, output: () => out }
}

describe('clnrm dev (built CLI, real engine)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir())
    await runCli(node, ['init'], dir)
  })
  afterEach(() => cleanup())

  it('shows each reload with its per-phase breakdown, notes slow tests, and warns about odd debounces', async () => {
    await writeFile(join(dir, 'tests/slow.clnrm.toml'), '[meta]\nname = "slow"\n[services.box]\nimage = "busybox:1.36"\n[[steps]]\nname = "nap"\nrun = "sleep 0.3"\n')
    const dev = startHuman(['--debounce', '5', '--budget', '200'], dir)
    await dev.until(/ready: 3 tests/)
    expect(dev.output()).toMatch(/warning debounce of 5ms is very low/)
    expect(dev.output()).toMatch(/note: slow took .*, over the 200ms dev budget; its slowest step is "nap"/)
    const file = join(dir, 'tests/hello.clnrm.toml')
    await writeFile(file, (await readFile(file, 'utf8')).replace('say hello', 'say hi'))
    const out = await dev.until(/↻ tests\/hello\.clnrm\.toml → 1 test\n[\s\S]*✓ hello[\s\S]*ms detect [\d.]+ · debounce [\d.]+ · render [\d.]+ · parse [\d.]+ · containers [\d.]+ \(reused\) · run [\d.]+ · display [\d.]+ · cache \d+%\/\d+% · reuse 100%/)
    expect(out).not.toMatch(/✓ greeting[\s\S]*↻[\s\S]*✓ greeting/)
    dev.child.stdin.write('q\n')
    expect(await dev.exited).toBe(0)
    expect(dev.output()).toMatch(/stopped; containers removed/)
  })

  it('after kill -9 of a running clnrm dev, a new start leaves no orphan', async () => {
    const first = startDev(node, [], dir)
    await first.waitFor(line => line.type === 'ready')
    expect(clnrmContainers(first.pid).length).toBeGreaterThan(0)
    first.kill('SIGKILL')
    await first.exited
    expect(clnrmContainers(first.pid).length).toBeGreaterThan(0)
    const second = startDev(node, [], dir)
    await second.waitFor(line => line.type === 'ready')
    expect(clnrmContainers(first.pid)).toEqual([])
    second.send('q\n')
    expect(await second.exited).toBe(0)
    expect(clnrmContainers(second.pid)).toEqual([])
  })

  it('reruns all with r and the failed ones with f', async () => {
    const file = join(dir, 'tests/hello.clnrm.toml')
    await writeFile(file, (await readFile(file, 'utf8')).replace('"^hello from "', '"^never"'))
    const dev = startDev(node, [], dir)
    await dev.waitFor(line => line.type === 'ready')
    dev.send('f\n')
    const failed = await dev.waitFor(line => line.type === 'reload' && line.id > 1)
    expect(failed.selected).toEqual([{ file, reason: 'rerun failed' }])
    dev.send('r\n')
    const all = await dev.waitFor(line => line.type === 'reload' && line.id > failed.id)
    expect(all.selected.map((s: { reason: string }) => s.reason)).toEqual(['rerun all', 'rerun all'])
    dev.send('q\n')
    expect(await dev.exited).toBe(0)
  })

  /** NDJSON lines of a spawned `clnrm dev --reporter ndjson`, in order. */
  const ndjson = (cli: ReturnType<typeof spawnCli>): Array<Record<string, any>> =>
    cli.stdout().split('\n').filter(line => line.startsWith('{')).map(line => JSON.parse(line))
  const sleepy = (name: string, step: string, extra = ''): string =>
    `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\n${extra}[[steps]]\nname = "${step}"\nrun = "sleep 2"\n`

  it('shows nothing about a test file after its removed event: deleted while its step runs, or while its container starts', async () => {
    const slow = join(dir, 'tests/slow.clnrm.toml')
    const starting = join(dir, 'tests/starting.clnrm.toml')
    await writeFile(slow, sleepy('slow', 'nap'))
    await writeFile(starting, sleepy('starting', 'nap'))
    const cli = spawnCli(['dev', '--reporter', 'ndjson'], dir)
    await cli.until(/"type":"ready"/, 90_000)
    // A save reruns slow; delete it while its step sleeps.
    await writeFile(slow, sleepy('slow', 'nap again'))
    await new Promise(r => setTimeout(r, 800))
    await rm(slow)
    await cli.until(/"type":"removed","file":"[^"]*slow\.clnrm\.toml"/, 30_000)
    // A new service definition makes starting's container start, held by a health check that
    // never passes; delete the file while it waits.
    await writeFile(starting, sleepy('starting', 'nap', '[services.box.health_check]\ncmd = "test -f /never"\ntimeout = "5s"\n'))
    await new Promise(r => setTimeout(r, 800))
    await rm(starting)
    await cli.until(/"type":"removed","file":"[^"]*starting\.clnrm\.toml"/, 30_000)
    // Anything the deleted runs would still report comes within the health check's 5 s.
    const hello = join(dir, 'tests/hello.clnrm.toml')
    await writeFile(hello, (await readFile(hello, 'utf8')).replace('say hello', 'say hi'))
    await new Promise(r => setTimeout(r, 6000))
    const lines = ndjson(cli)
    for (const name of ['slow', 'starting']) {
      const removedAt = lines.findIndex(l => l.type === 'removed' && l.file.endsWith(`${name}.clnrm.toml`))
      expect(removedAt).toBeGreaterThan(0)
      expect(lines.slice(removedAt).filter(l => l.type !== 'removed' && (l.file ?? '').endsWith(`${name}.clnrm.toml`))).toEqual([])
    }
    expect(lines.some(l => l.type === 'test' && l.name === 'hello' && l.reload > 1)).toBe(true)
    cli.child.stdin.write('q\n')
    expect(await cli.timeToExit()).toBeLessThan(30_000)
    const exit = await cli.exited
    expect(exit.code).toBe(0)
    expect(clnrmContainers(cli.pid)).toEqual([])
  })

  it('Ctrl-C during start-up removes the containers and exits 130: no ready line, no watcher after stopped', async () => {
    await writeFile(join(dir, 'tests/slow.clnrm.toml'), sleepy('slow', 'nap').replace('sleep 2', 'sleep 30'))
    const cli = spawnCli(['dev'], dir)
    await waitUntil(() => clnrmContainers(cli.pid).length >= 2, 'the containers', 60_000)
    await cli.until(/✓ hello/)
    cli.child.kill('SIGINT')
    const exit = await cli.exited
    expect(exit.code).toBe(130)
    expect(exit.ms).toBeLessThan(60_000)
    expect(cli.output()).toMatch(/stopped; containers removed\n$/)
    expect(cli.output()).not.toMatch(/ready: |watching/)
    expect(clnrmContainers(cli.pid)).toEqual([])
  })

  it('q quits at once when nothing runs (exit 0); SIGHUP and SIGTERM clean up and exit 129 and 143', async () => {
    const quit = spawnCli(['dev'], dir)
    await quit.until(/ready: 2 tests/, 90_000)
    quit.child.stdin.write('q\n')
    // The bug held every quit for a 5 s timer; the bound proves the exit is not waiting for it.
    expect(await quit.timeToExit()).toBeLessThan(4500)
    expect((await quit.exited).code).toBe(0)
    // Nothing was left holding the process open for the exit guard to report.
    expect(quit.output()).not.toMatch(/still running/)
    expect(clnrmContainers(quit.pid)).toEqual([])

    const hup = spawnCli(['dev'], dir)
    await hup.until(/ready: 2 tests/, 90_000)
    hup.child.kill('SIGHUP')
    const exit = await hup.exited
    expect(exit.code).toBe(129)
    expect(exit.ms).toBeLessThan(90_000)
    expect(hup.output()).toMatch(/stopped; containers removed/)
    expect(clnrmContainers(hup.pid)).toEqual([])

    const term = spawnCli(['dev', '--reporter', 'ndjson'], dir)
    await term.until(/"type":"ready"/, 90_000)
    term.child.kill('SIGTERM')
    expect((await term.exited).code).toBe(143)
    expect(clnrmContainers(term.pid)).toEqual([])
  })

  it('a second Ctrl-C forces the exit (130); the next clnrm start removes what was left', async () => {
    for (const name of ['a', 'b', 'c']) await writeFile(join(dir, `tests/${name}.clnrm.toml`), sleepy(name, 'nap').replace('sleep 2', 'true'))
    const cli = spawnCli(['dev'], dir)
    await cli.until(/ready: 5 tests/, 90_000)
    cli.child.kill('SIGINT')
    await cli.until(/stopping: removing containers \(Ctrl-C again exits at once\)/)
    cli.child.kill('SIGINT')
    expect(await cli.timeToExit()).toBeLessThan(10_000)
    const exit = await cli.exited
    expect(exit.code).toBe(130)
    expect(cli.output()).toMatch(/clnrm: forced exit/)
    const pool = await ContainerPool.create()
    await pool.close()
    // Removals the forced exit left in flight finish in the engine's own time (slow under load), as in run-cli.test.ts.
    await waitUntil(() => clnrmContainers(cli.pid).length === 0, 'the next start removing what was left', 20_000)
  })

  it('a template that loops forever is a located CLNRM_TEMPLATE_TIMEOUT error; the loop goes on and quits', async () => {
    await writeFile(join(dir, 'clnrm.toml'), `render_timeout = "500ms"\n${await readFile(join(dir, 'clnrm.toml'), 'utf8')}`)
    await writeFile(join(dir, 'tests/loop.clnrm.toml.eta'), '[meta]\nname = "loop"\n<% for (let i = 0; i < 10; i--) {} %>\n')
    const cli = spawnCli(['dev'], dir)
    await cli.until(/ready: 2 tests, 1 invalid/, 90_000)
    expect(cli.output()).toMatch(/✓ hello/)
    expect(cli.output()).toMatch(/✗ tests\/loop\.clnrm\.toml\.eta invalid\n {4}tests\/loop\.clnrm\.toml\.eta:3:1 error CLNRM_TEMPLATE_TIMEOUT\n {6}Template did not finish rendering within 0\.5s/)
    cli.child.kill('SIGINT')
    expect(await cli.timeToExit()).toBeLessThan(30_000)
    const exit = await cli.exited
    expect(exit.code).toBe(130)
    expect(clnrmContainers(cli.pid)).toEqual([])
  })
})
