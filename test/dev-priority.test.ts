import { writeFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'
import { node, startDev } from './runtimes/contract.ts'

// Within a reload, the answers a user waits for come first: the test that failed last time, then
// the fastest. One job (-j 1), so the order tests run in is the order their results arrive.

const test = (name: string, run: string, extra = ''): string =>
  `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "work"\nrun = "${run}"\n${extra}[watch]\nfiles = ["../src/*.js"]\n`

describe('clnrm dev orders a reload by the results it keeps (built CLI, real engine)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('clnrm-priority-'))
    await mkdir(join(dir, 'tests'))
    await mkdir(join(dir, 'src'))
    await writeFile(join(dir, 'src/app.js'), '1')
    await writeFile(join(dir, 'tests/a-slow.clnrm.toml'), test('a-slow', 'sleep 1; echo a'))
    await writeFile(join(dir, 'tests/b-fast.clnrm.toml'), test('b-fast', 'echo b'))
    await writeFile(join(dir, 'tests/c-broken.clnrm.toml'), test('c-broken', 'sleep 0.5; echo c', 'expected_output_regex = "^nope$"\n'))
  })
  afterEach(() => cleanup())

  it('a save every test watches, and r: the failed test\'s result first, then the fastest, the slowest last', async () => {
    const dev = startDev(node, ['-j', '1'], dir)
    const ready = await dev.waitFor(line => line.type === 'ready')
    const names = (from: number): string[] => dev.lines().slice(from).filter(l => l.type === 'test').map(l => String(l.name))
    // The first run knows nothing yet: the discovery order.
    expect(names(0)).toEqual(['a-slow', 'b-fast', 'c-broken'])
    expect(dev.lines().find(l => l.name === 'c-broken')).toMatchObject({ status: 'fail' })

    let mark = dev.lines().indexOf(ready) + 1
    writeFileSync(join(dir, 'src/app.js'), '2')
    await dev.waitFor(() => names(mark).length === 3)
    expect(names(mark)).toEqual(['c-broken', 'b-fast', 'a-slow'])

    // Fixed: it passes now, and is ordered by its time like the others.
    mark = dev.lines().length
    writeFileSync(join(dir, 'tests/c-broken.clnrm.toml'), test('c-broken', 'sleep 0.5; echo c'))
    await dev.waitFor(line => dev.lines().indexOf(line) >= mark && line.type === 'test' && line.name === 'c-broken' && line.status === 'pass')
    mark = dev.lines().length
    dev.send('r\n')
    await dev.waitFor(() => names(mark).length === 3)
    expect(names(mark)).toEqual(['b-fast', 'c-broken', 'a-slow'])

    dev.send('q\n')
    expect(await dev.exited).toBe(0)
    expect(clnrmContainers(dev.pid)).toEqual([])
  }, 120_000)
})
