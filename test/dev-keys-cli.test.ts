import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { bin, spawnCli, waitUntil } from './cli-process.ts'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'

const testFile = (name: string, steps: Array<[string, string]>): string =>
  `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\n${steps.map(([step, run]) => `\n[[steps]]\nname = "${step}"\nrun = "${run}"\n`).join('')}`

// util-linux `script` gives the CLI a real terminal: raw-mode keys, as a person types them.
const hasScript = spawnSync('script', ['--version']).status === 0

const terminals = new Set<ReturnType<typeof spawn>>()
afterAll(() => {
  for (const child of terminals) child.kill('SIGKILL')
})

/** `clnrm dev` in a pseudo-terminal (`script`): keys go to its raw-mode stdin one by one. */
function startInTerminal(cwd: string) {
  // `exec`: the CLI replaces the shell, so it is script's child and its containers carry its pid.
  const child = spawn('script', ['-qfc', `exec "${process.execPath}" "${bin}" dev`, '/dev/null'], { cwd, env: { ...process.env, NO_COLOR: '1', GITHUB_ACTIONS: '' }, stdio: ['pipe', 'pipe', 'pipe'] })
  terminals.add(child)
  let out = ''
  child.stdout.on('data', (d: Buffer) => void (out += d.toString().replace(/\r/g, '')))
  const exited = new Promise<number | null>(r => child.once('exit', (code) => {
    terminals.delete(child)
    r(code)
  }))
  return {
    output: () => out,
    /** Waits for `pattern` in the output after `from` (an offset), and returns that part. */
    async until(pattern: RegExp, from = 0, timeoutMs = 60_000): Promise<string> {
      await waitUntil(() => pattern.test(out.slice(from)), `${pattern} in:\n${out.slice(from)}`, timeoutMs)
      return out.slice(from)
    },
    keys: (text: string) => void child.stdin.write(text),
    /**
     * Presses a key and waits for `pattern`. On a loaded machine `script` has once dropped a key
     * (nothing at all came back in 60 s): a key that got no answer in 15 s is pressed once more.
     */
    async press(key: string, pattern: RegExp, from: number): Promise<string> {
      child.stdin.write(key)
      try {
        await waitUntil(() => pattern.test(out.slice(from)), `${pattern}`, 15_000)
      }
      catch {
        if (out.slice(from).trim()) throw new Error(`timed out waiting for ${pattern} in:\n${out.slice(from)}`)
        child.stdin.write(key)
      }
      await waitUntil(() => pattern.test(out.slice(from)), `${pattern} in:\n${out.slice(from)}`, 60_000)
      return out.slice(from)
    },
    cliPid: () => Number(execFileSync('ps', ['--ppid', String(child.pid), '-o', 'pid='], { encoding: 'utf8' }).trim()),
    exited,
  }
}

describe('clnrm dev keys (built CLI, real engine)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir())
    await writeFile(join(dir, 'hello.clnrm.toml'), testFile('hello', [['greet', 'echo hi'], ['check', 'true']]))
    await writeFile(join(dir, 'world.clnrm.toml'), testFile('world', [['spin', 'exit 3']]))
  })
  afterEach(() => cleanup())

  it.skipIf(!hasScript)('in a terminal: h lists the keys, p filters files and sticks across saves, t filters steps (skipped, not passed), c clears, f says when nothing failed, q quits', async () => {
    const dev = startInTerminal(dir)
    await dev.until(/ready: 2 tests.*\(h help · p\/t filter · r rerun all · f rerun failed · q quit\)/)
    const pid = dev.cliPid()
    expect(clnrmContainers(pid).length).toBeGreaterThan(0)

    let mark = dev.output().length
    dev.keys('h')
    await dev.until(/Keys:\n {2}a, r {2}rerun all[\s\S]*\n {2}q {5}quit\nfilters: none/, mark)

    // Typed in raw mode: echoed, Backspace edits, Enter sets the filter and reruns what it selects.
    mark = dev.output().length
    dev.keys('p')
    await dev.until(/filter files by path \(substrings; empty clears\): $/, mark)
    dev.keys('helx\u007Flo\r')
    let shown = await dev.until(/↻ rerun → 1 test \(filter: files "hello"\)\n[\s\S]*✓ hello hello\.clnrm\.toml/, mark)
    expect(shown).not.toMatch(/world\.clnrm\.toml/)

    // The filter sticks: a save of a filtered-out file runs nothing; a save of a selected one says the filter is on.
    mark = dev.output().length
    await writeFile(join(dir, 'world.clnrm.toml'), testFile('world', [['spin', 'exit 4']]))
    await writeFile(join(dir, 'hello.clnrm.toml'), testFile('hello', [['greet', 'echo hey'], ['check', 'true']]))
    shown = await dev.until(/hello\.clnrm\.toml → 1 test \(filter: files "hello"\)\n✓ hello/, mark)
    expect(shown).not.toMatch(/world world\.clnrm\.toml/)

    // t: only the steps whose full name matches run; the other is skipped, never passed.
    mark = dev.output().length
    dev.keys('tcheck\r')
    await dev.until(/✓ hello hello\.clnrm\.toml .*\(1 of 2 steps ran; 1 filtered out by -t\)/, mark)

    mark = dev.output().length
    dev.keys('f')
    await dev.until(/No failed tests to rerun within the filters/, mark)

    mark = dev.output().length
    // Under load the pool may judge a second container worth starting for the rerun: its live
    // progress line may come between, and hello then runs cold.
    shown = await dev.press('c', /filters cleared\n[\s\S]*↻ rerun → 2 tests\n[\s\S]*✗ world[\s\S]*ms detect/, mark)
    expect(shown).toMatch(/✓ hello hello\.clnrm\.toml \d+ms( \(warm\))?\n/)

    // Something failed now: f reruns it alone.
    mark = dev.output().length
    dev.keys('f')
    shown = await dev.until(/↻ rerun → 1 test\n✗ world/, mark)

    dev.keys('q')
    expect(await dev.exited).toBe(0)
    expect(dev.output()).toMatch(/stopped; containers removed/)
    expect(clnrmContainers(pid)).toEqual([])
  }, 120_000)

  it('on a piped stdin: "p <filter>" and "t <regex>" lines filter at once, a bad regex keeps the filter, and positionals and -t start filtered', async () => {
    const dev = spawnCli(['dev', 'world', '-t', 'spin'], dir, { env: { GITHUB_ACTIONS: '' } })
    await dev.until(/ready: 2 tests/)
    // Started filtered: only world ran (hello's file does not match "world"; its containers are warmed all the same).
    expect(dev.output()).toMatch(/✗ world world\.clnrm\.toml/)
    expect(dev.output()).not.toMatch(/[✓✗] hello/)

    let mark = dev.output().length
    dev.child.stdin.write('t (broken\n')
    await waitUntil(() => /error Invalid regular expression: \/\(broken\/: Unterminated group; the name filter is unchanged/.test(dev.output().slice(mark)), 'the regex error')

    mark = dev.output().length
    dev.child.stdin.write('p hello\n')
    // The name filter still holds: no hello step matches "spin", so nothing of hello runs.
    await waitUntil(() => /filter: files "hello" · names \/spin\/\n/.test(dev.output().slice(mark)), 'the filter line')
    dev.child.stdin.write('t greet\n')
    await waitUntil(() => /✓ hello hello\.clnrm\.toml .*\(1 of 2 steps ran; 1 filtered out by -t\)/.test(dev.output().slice(mark)), 'the filtered rerun')

    mark = dev.output().length
    dev.child.stdin.write('x\n')
    dev.child.stdin.write('a\n')
    await waitUntil(() => /unknown key "x"; h shows the keys\n[\s\S]*rerun all\n/.test(dev.output().slice(mark)), 'the unknown key and the rerun')

    dev.child.stdin.write('q\n')
    expect((await dev.exited).code).toBe(0)
    expect(clnrmContainers(dev.pid)).toEqual([])
    // The dev loop does not touch run's record of failed files.
    await expect(readFile(join(dir, '.clnrm/last-failed.json'), 'utf8')).rejects.toThrow()
  }, 120_000)
})
