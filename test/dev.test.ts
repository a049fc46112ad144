import { appendFile, mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createDevSession } from '../core/index.ts'
import type { ContainerPool, DevEvents, DevSession } from '../core/index.ts'
import { clnrmContainers, createRecordingPool, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'

const testFile = (name: string, run: string, extra = ''): string =>
  `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "step"\nrun = ${JSON.stringify(run)}\n${extra}`

/** Records a session's events, and waits for the next matching one. */
function record(session: DevSession) {
  const log: Array<{ type: keyof DevEvents; payload: any }> = []
  for (const type of ['test:result', 'test:invalid', 'reload:done', 'test:removed', 'session:error'] as const) {
    session.events.on(type, payload => log.push({ type, payload }))
  }
  return {
    log,
    results: () => log.filter(e => e.type === 'test:result').map(e => e.payload.result),
    since: (mark: number) => log.slice(mark),
  }
}

describe('dev session (real files, real engine)', () => {
  let pool: ContainerPool
  let dir: string
  let cleanup: () => Promise<void>
  let session: DevSession
  beforeAll(async () => ({ pool } = await createRecordingPool()))
  afterAll(() => pool.close())
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir())
    await mkdir(join(dir, 'tests'))
  })
  afterEach(async () => {
    await session?.close()
    await cleanup()
  })

  async function start(files: Record<string, string>, options: { debounceMs?: number } = {}) {
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text)
    session = createDevSession({ cwd: dir, root: dir, pool, debounceMs: options.debounceMs ?? 20 })
    const recorder = record(session)
    await session.start()
    return recorder
  }
  async function save(name: string, text: string): Promise<void> {
    await writeFile(join(dir, name), text)
    session.notify([join(dir, name)])
    await session.idle()
  }

  it('runs everything once, then reruns only the edited one of three tests', async () => {
    const rec = await start({
      'tests/a.clnrm.toml': testFile('a', 'echo a'),
      'tests/b.clnrm.toml': testFile('b', 'echo b'),
      'tests/c.clnrm.toml': testFile('c', 'echo c'),
    })
    expect(rec.results().map(r => r.name).sort()).toEqual(['a', 'b', 'c'])
    const mark = rec.log.length
    await save('tests/b.clnrm.toml', testFile('b', 'echo b2', 'expected_output_regex = "(?m)^b2$"'))
    const after = rec.since(mark)
    expect(after.filter(e => e.type === 'test:result').map(e => [e.payload.result.name, e.payload.result.status])).toEqual([['b', 'pass']])
    const reload = after.find(e => e.type === 'reload:done')!.payload
    expect(reload.selected).toEqual([{ test: join(dir, 'tests/b.clnrm.toml'), reason: 'changed' }])
    expect(reload.metrics.containerReuseRate).toBe(1)
    expect(reload.metrics.totalLatencyMs).toBeGreaterThan(0)
  })

  it('reruns one test file on request, and nothing for a path that is not one of its tests', async () => {
    const rec = await start({
      'tests/a.clnrm.toml': testFile('a', 'echo a'),
      'tests/b.clnrm.toml': testFile('b', 'echo b'),
    })
    const mark = rec.log.length
    // What the Vite panel's rerun button asks for; a page must not make it run other files.
    expect(session.rerun({ file: join(dir, 'clnrm.toml') })).toBe(0)
    expect(session.rerun({ file: '/etc/hostname' })).toBe(0)
    expect(session.rerun({ file: join(dir, 'tests/b.clnrm.toml') })).toBe(1)
    await session.idle()
    const after = rec.since(mark)
    expect(after.filter(e => e.type === 'test:result').map(e => e.payload.result.name)).toEqual(['b'])
    expect(after.filter(e => e.type === 'reload:done').map(e => e.payload.selected)).toEqual([[{ test: join(dir, 'tests/b.clnrm.toml'), reason: 'rerun' }]])
    // Nothing failed: "failed" starts nothing and says so by its count.
    expect(session.rerun('failed')).toBe(0)
  })

  it('reruns exactly the tests that include an edited partial', async () => {
    const includer = (name: string) => `[meta]\nname = "${name}"\n<%~ include('./_svc.eta') %>\n[[steps]]\nrun = "echo $WHO"\nexpected_output_regex = "(?m)^one$"\n`
    const rec = await start({
      'tests/_svc.eta': `[services.box]\nimage = "${IMAGE}"\nenv = { WHO = "one" }\n`,
      'tests/x.clnrm.toml.eta': includer('x'),
      'tests/y.clnrm.toml.eta': includer('y'),
      'tests/z.clnrm.toml': testFile('z', 'true'),
    })
    expect(rec.results().every(r => r.status === 'pass')).toBe(true)
    const mark = rec.log.length
    await save('tests/_svc.eta', `[services.box]\nimage = "${IMAGE}"\nenv = { WHO = "two" }\n`)
    const results = rec.since(mark).filter(e => e.type === 'test:result').map(e => e.payload.result)
    expect(results.map(r => r.name).sort()).toEqual(['x', 'y'])
    // The new env is a new service definition: a new container, and the expectation now fails.
    expect(results.map(r => r.status)).toEqual(['fail', 'fail'])
  })

  it('a large reload loads its tests ahead while the new definition\'s container starts, and a test changed meanwhile runs its new text', async () => {
    // Each prints its own version: a load made ahead of a text that changed must not be the one run.
    const includer = (name: string, version: string) => `[meta]\nname = "${name}"\n<%~ include('./_svc.eta') %>\n[[steps]]\nrun = "echo $WHO-${version}"\nexpected_output_regex = "(?m)^two-${version}$"\n`
    const names = Array.from({ length: 12 }, (_, i) => `t${String(i).padStart(2, '0')}`)
    await writeFile(join(dir, 'tests/_svc.eta'), `[services.box]\nimage = "${IMAGE}"\nenv = { WHO = "two", UNIQUE = "ahead-${Date.now()}" }\n`)
    for (const name of names) await writeFile(join(dir, `tests/${name}.clnrm.toml.eta`), includer(name, 'v1'))
    session = createDevSession({ cwd: dir, root: dir, pool, debounceMs: 20, jobs: 2 })
    const rec = record(session)
    await session.start()
    expect(rec.results().map(r => r.status)).toEqual(names.map(() => 'pass'))
    const mark = rec.log.length
    // A new definition (a container to start, about 0.2 s): the reload's tests are loaded meanwhile.
    await writeFile(join(dir, 'tests/_svc.eta'), `[services.box]\nimage = "${IMAGE}"\nenv = { WHO = "two", UNIQUE = "ahead-${Date.now()}-2" }\n`)
    session.notify([join(dir, 'tests/_svc.eta')])
    await new Promise(resolve => setTimeout(resolve, 30))
    // Half the tests change before their run, with no event yet (the watcher's may come later).
    const changed = names.slice(6)
    for (const name of changed) await writeFile(join(dir, `tests/${name}.clnrm.toml.eta`), includer(name, 'v2'))
    await session.idle()
    // Their last results come from the new text, whichever way (run as read, or rerun once seen stale).
    const last = new Map(rec.since(mark).filter(e => e.type === 'test:result').map(e => [e.payload.result.name, e.payload.result]))
    expect([...last.keys()].sort()).toEqual(names)
    for (const name of names) expect(last.get(name)!.steps[0].stdout, name).toBe(`two-${changed.includes(name) ? 'v2' : 'v1'}\n`)
    expect([...last.values()].every(r => r.status === 'pass')).toBe(true)
  })

  it('reruns nothing on a save that does not change the content', async () => {
    const rec = await start({ 'tests/a.clnrm.toml': testFile('a', 'true') })
    const mark = rec.log.length
    await save('tests/a.clnrm.toml', testFile('a', 'true'))
    expect(rec.since(mark)).toEqual([])
  })

  it('50 saves in a second: each runs at once (a newer one pre-empts), results only move forward, ending on the final content', async () => {
    const rec = await start({ 'tests/a.clnrm.toml': testFile('a', 'echo 0', 'expected_output_regex = "(?m)^0$"') }, { debounceMs: 30 })
    const mark = rec.log.length
    for (let i = 1; i <= 50; i++) {
      await writeFile(join(dir, 'tests/a.clnrm.toml'), testFile('a', `echo ${i}`, `expected_output_regex = "(?m)^${i}$"`))
      session.notify([join(dir, 'tests/a.clnrm.toml')])
      await new Promise(r => setTimeout(r, 20))
    }
    await session.idle()
    const results = rec.since(mark).filter(e => e.type === 'test:result').map(e => e.payload.result)
    expect(results.length).toBeGreaterThan(0)
    // Every save is a run of its own (none waits for a quiet window); a result never goes backwards.
    const shown = results.map(r => Number(r.steps[0].stdout))
    expect(shown).toEqual([...new Set(shown)].sort((x, y) => x - y))
    expect(results.every(r => r.status === 'pass')).toBe(true)
    expect(results.at(-1)!.steps[0].stdout).toBe('50\n')
    expect(results.at(-1)!.status).toBe('pass')
  })

  it('cancels a long-running step when a newer save arrives', async () => {
    const rec = await start({ 'tests/a.clnrm.toml': testFile('a', 'echo fast') })
    const mark = rec.log.length
    await writeFile(join(dir, 'tests/a.clnrm.toml'), testFile('a', 'sleep 20; echo slow'))
    session.notify([join(dir, 'tests/a.clnrm.toml')])
    await new Promise(r => setTimeout(r, 600))
    const started = performance.now()
    await save('tests/a.clnrm.toml', testFile('a', 'echo newest'))
    expect(performance.now() - started).toBeLessThan(10_000)
    const results = rec.since(mark).filter(e => e.type === 'test:result').map(e => e.payload.result)
    // The superseded run is never shown; only the newest content's result is.
    expect(results.map(r => r.steps[0].stdout)).toEqual(['newest\n'])
    const reloads = rec.since(mark).filter(e => e.type === 'reload:done').map(e => e.payload.metrics.tests[0].status)
    expect(reloads).toContain('superseded')
  })

  it('a newer save a few ms after a slow one: the slow run is cancelled even though the test was fast before', async () => {
    // A superseded run of a test that last took under 50 ms is left to end (cancelling costs more),
    // but only until 50 ms after its start: this content sleeps 20 s.
    const rec = await start({ 'tests/a.clnrm.toml': testFile('a', 'echo fast') })
    const mark = rec.log.length
    await writeFile(join(dir, 'tests/a.clnrm.toml'), testFile('a', 'sleep 20; echo slow'))
    session.notify([join(dir, 'tests/a.clnrm.toml')])
    await new Promise(r => setTimeout(r, 5))
    const started = performance.now()
    await save('tests/a.clnrm.toml', testFile('a', 'echo newest'))
    expect(performance.now() - started).toBeLessThan(10_000)
    const results = rec.since(mark).filter(e => e.type === 'test:result').map(e => e.payload.result)
    expect(results.map(r => r.steps[0].stdout)).toEqual(['newest\n'])
  })

  it('reports an invalid save with its location, keeps other results, and recovers', async () => {
    const rec = await start({ 'tests/a.clnrm.toml': testFile('a', 'true'), 'tests/b.clnrm.toml': testFile('b', 'true') })
    const mark = rec.log.length
    await save('tests/a.clnrm.toml', '[meta]\nname = "a"\n[services.box]\nimage = 5\n')
    const invalid = rec.since(mark).find(e => e.type === 'test:invalid')!.payload
    expect(invalid.diagnostics).toContainEqual(expect.objectContaining({ code: 'CLNRM_INVALID_TYPE', line: 4, column: 9 }))
    expect(session.tests().get(join(dir, 'tests/b.clnrm.toml'))!.result!.status).toBe('pass')
    await save('tests/a.clnrm.toml', testFile('a', 'echo back'))
    expect(rec.results().at(-1)).toMatchObject({ name: 'a', status: 'pass' })
  })

  it('picks up new test files, drops deleted ones, and reruns everything when clnrm.toml changes', async () => {
    const rec = await start({ 'clnrm.toml': '[vars]\nx = 1\n', 'tests/a.clnrm.toml': testFile('a', 'true') })
    await save('tests/new.clnrm.toml', testFile('new', 'true'))
    expect(rec.results().at(-1)).toMatchObject({ name: 'new', status: 'pass' })
    await rm(join(dir, 'tests/new.clnrm.toml'))
    session.notify([join(dir, 'tests/new.clnrm.toml')])
    await session.idle()
    expect(rec.log.at(-1)).toMatchObject({ type: 'test:removed', payload: { file: join(dir, 'tests/new.clnrm.toml') } })
    expect(session.tests().has(join(dir, 'tests/new.clnrm.toml'))).toBe(false)
    const mark = rec.log.length
    await save('clnrm.toml', '[vars]\nx = 2\n')
    expect(rec.since(mark).filter(e => e.type === 'test:result').map(e => e.payload.result.name)).toEqual(['a'])
    // A broken project file is reported with its location, and the loop goes on.
    await save('clnrm.toml', '[vars\n')
    expect(rec.log.at(-1)).toMatchObject({ type: 'test:invalid', payload: { file: join(dir, 'clnrm.toml'), diagnostics: [{ code: 'CLNRM_TOML_SYNTAX', line: 1 }] } })
    await save('tests/a.clnrm.toml', testFile('a', 'echo still running'))
    expect(rec.results().at(-1)).toMatchObject({ name: 'a', status: 'pass' })
  })

  it('reruns tests whose [watch] files or mounted volumes change', async () => {
    await mkdir(join(dir, 'src'))
    await mkdir(join(dir, 'data'))
    await writeFile(join(dir, 'src/app.js'), '1')
    await writeFile(join(dir, 'data/x.txt'), 'first')
    const rec = await start({
      'tests/watcher.clnrm.toml': testFile('watcher', 'true', '[watch]\nfiles = ["../src/**/*.js"]\n'),
      'tests/mounter.clnrm.toml': `[meta]\nname = "mounter"\n[services.box]\nimage = "${IMAGE}"\nvolumes = [{ host_path = "../data", container_path = "/data" }]\n[[steps]]\nrun = "cat /data/x.txt"\n`,
    })
    let mark = rec.log.length
    await save('src/app.js', '2')
    expect(rec.since(mark).filter(e => e.type === 'test:result').map(e => e.payload.result.name)).toEqual(['watcher'])
    mark = rec.log.length
    await save('data/x.txt', 'second')
    const results = rec.since(mark).filter(e => e.type === 'test:result').map(e => e.payload.result)
    expect(results.map(r => [r.name, r.steps[0].stdout])).toEqual([['mounter', 'second']])
    await appendFile(join(dir, 'README'), 'unrelated')
    mark = rec.log.length
    session.notify([join(dir, 'README')])
    await session.idle()
    expect(rec.since(mark)).toEqual([])
  })
})

describe('dev session close (own pool, real engine)', () => {
  it('close() is memoised: a second call resolves with the first, after the containers are gone; close during start ends the start', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      await writeFile(join(dir, 'a.clnrm.toml'), testFile('a', 'sleep 30'))
      const session = createDevSession({ cwd: dir, root: dir })
      const ready: unknown[] = []
      session.events.on('session:ready', payload => ready.push(payload))
      const pools: string[] = []
      session.events.on('pool:event', (event) => {
        if (event.type === 'pool:container-ready') pools.push(event.service)
      })
      const starting = session.start()
      while (pools.length === 0) await new Promise(r => setTimeout(r, 50))
      const first = session.close()
      const second = session.close()
      expect(second).toBe(first)
      await second
      await starting
      // Each test file runs in a process of its own (Vitest's forks), and the pool above is closed.
      expect(clnrmContainers(process.pid)).toEqual([])
      // Stopped during start-up: never announced ready.
      expect(ready).toEqual([])
    }
    finally {
      await cleanup()
    }
  })
})
