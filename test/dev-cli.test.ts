import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { clnrmContainers } from './engine.ts'
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
})
