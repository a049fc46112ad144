import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DevProcess } from './runtimes/contract.ts'
import { clnrmContainersOf, node, startDev } from './runtimes/contract.ts'

// `clnrm dev` on a generated project of a few hundred test files in one folder, spawned. The
// name filter matches no step, so every file is discovered, loaded and watched but no step runs:
// these tests are about the loop's own work at scale (watcher, selection, caches), not the engine.
const COUNT = 600
const IMAGE = 'clnrm-examples/busybox:1'
const NO_STEP = 'no step is named like this'

describe(`clnrm dev at ${COUNT} test files in one folder (built CLI)`, () => {
  let dir: string
  let dev: DevProcess
  let lastReload = 1
  const test = (name: string): string => join(dir, 'tests', `${name}.clnrm.toml.eta`)
  const write = (file: string, partial: '_a' | '_b', run = 'echo'): void =>
    writeFileSync(file, `[meta]\nname = "${file}"\n\n<%~ include('./${partial}.eta') %>\n\n[[steps]]\nname = "step"\nservice = "app"\nrun = "${run}"\n`)
  const nextReload = async (): Promise<Record<string, any>> => {
    const reload = await dev.waitFor(line => line.type === 'reload' && line.id > lastReload, 60_000)
    lastReload = reload.id
    return reload
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'clnrm-scale-'))
    mkdirSync(join(dir, 'tests'))
    writeFileSync(join(dir, 'clnrm.toml'), '# many tests\n')
    writeFileSync(join(dir, 'tests/_a.eta'), `[services.app]\nimage = "${IMAGE}"\n`)
    writeFileSync(join(dir, 'tests/_b.eta'), `[services.app]\nimage = "${IMAGE}"\n`)
    // Even tests include _a, odd ones _b.
    for (let i = 0; i < COUNT; i++) write(test(`t${String(i).padStart(4, '0')}`), i % 2 ? '_b' : '_a')
    dev = startDev(node, ['-t', NO_STEP], dir)
    const ready = await dev.waitFor(line => line.type === 'ready', 120_000)
    expect(ready).toMatchObject({ tests: COUNT, invalid: 0 })
  }, 180_000)

  afterAll(async () => {
    if (dev) {
      dev.send('q\n')
      expect(await dev.exited).toBe(0)
      expect(clnrmContainersOf(dev.pid)).toEqual([])
    }
    rmSync(dir, { recursive: true, force: true })
  }, 60_000)

  it('rerunning all loads every file again from the caches: each template compiled once, each checked config reused', async () => {
    dev.send('a\n')
    const reload = await nextReload()
    expect(reload.selected).toHaveLength(COUNT)
    // Session-wide rates. The start loads each file once and asks the template cache twice (the
    // test, its partial): COUNT + 1 misses (each test, and the partials' one text), the rest hits;
    // the rerun asks 2 × COUNT more, all hits. The config cache: COUNT misses, then COUNT hits.
    // Caches capped below the project size (100 templates, 500 configs) gave about 0.5 and 0,
    // and a start that loaded each file twice gave 5/6.
    expect(reload.metrics.templateCacheHitRate).toBeCloseTo((3 * COUNT - 1) / (4 * COUNT), 4)
    expect(reload.metrics.configCacheHitRate).toBeCloseTo(0.5, 4)
  })

  it('a new test file among them is picked up, and one in a new folder too', async () => {
    const added = test('added')
    write(added, '_b')
    expect((await nextReload()).selected).toEqual([{ file: added, reason: 'new test' }])
    mkdirSync(join(dir, 'tests/later/deeper'), { recursive: true })
    const nested = join(dir, 'tests/later/deeper/nested.clnrm.toml.eta')
    writeFileSync(nested, `[meta]\nname = "nested"\n\n<%~ include('../../_b.eta') %>\n\n[[steps]]\nname = "step"\nservice = "app"\nrun = "echo"\n`)
    expect((await nextReload()).selected).toEqual([{ file: nested, reason: 'new test' }])
  })

  it('a one-file save selects that file alone', async () => {
    const file = test('t0123')
    write(file, '_b', 'echo saved')
    const reload = await nextReload()
    expect(reload.changed).toEqual([file])
    expect(reload.selected).toEqual([{ file, reason: 'changed' }])
  })

  it('a partial change selects exactly the tests that include it', async () => {
    const partial = join(dir, 'tests/_a.eta')
    writeFileSync(partial, `[services.app]\nimage = "${IMAGE}"\nenv = { CHANGED = "1" }\n`)
    const reload = await nextReload()
    const expected = Array.from({ length: COUNT / 2 }, (_, k) => test(`t${String(2 * k).padStart(4, '0')}`))
    expect(reload.changed).toEqual([partial])
    expect(reload.selected.map((s: { file: string }) => s.file).sort()).toEqual(expected)
    expect(new Set(reload.selected.map((s: { reason: string }) => s.reason))).toEqual(new Set([`includes ${partial}`]))
  })

  it('a deleted test file is removed', async () => {
    const file = test('t0001')
    rmSync(file)
    await dev.waitFor(line => line.type === 'removed' && line.file === file, 30_000)
  })
})
