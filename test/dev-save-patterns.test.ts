import { appendFileSync, renameSync, writeFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'
import type { DevProcess } from './runtimes/contract.ts'
import { node, startDev } from './runtimes/contract.ts'

// The ways editors write a file on save, each fed to a spawned `clnrm dev --reporter ndjson` at
// its default settings (saves run at once, errors wait out a 30 ms quiet window). Every save must
// show exactly its own result: no error of a half-written file, no result of a first burst.

const pause = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))
// Writes are synchronous and the gap between bursts a blocking sleep, as in an editor: an async
// write's open (which truncates) and its write are two thread-pool jobs, which a loaded machine
// can leave tens of milliseconds apart, longer than the quiet window.
const sleepSync = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
/** Save `n`'s content: its name and its expected output say which save it is. */
const content = (n: number): string =>
  `[meta]\nname = "save ${n}"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "echo"\nrun = "echo v${n}"\nexpected_output_regex = "(?m)^v${n}$"\n`
/** How long after a save's result anything still in flight (a held error, a stale run) would have shown. */
const SETTLE_MS = 400
const REPEATS = 5

describe('clnrm dev: every editor write pattern shows exactly the saved content\'s result (built CLI, real engine)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let file: string
  let dev: DevProcess
  let saves = 0

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('clnrm-save-patterns-'))
    await mkdir(join(dir, 'tests'))
    file = join(dir, 'tests/check.clnrm.toml')
    await writeFile(file, content(0))
    dev = startDev(node, [], dir)
    await dev.waitFor(line => line.type === 'ready')
  }, 120_000)
  afterAll(async () => {
    dev.kill('SIGKILL')
    await cleanup()
  })

  /** Runs one save by `write`, waits for save `expect`'s result, then returns what was shown meanwhile. */
  async function save(write: (n: number) => Promise<void>, final = (n: number) => n): Promise<{ names: string[]; errors: Array<Record<string, any>>; n: number }> {
    const n = ++saves
    const mark = dev.lines().length
    await write(n)
    const last = final(n)
    saves = last
    const result = await dev.waitFor(line => line.type === 'test' && line.name === `save ${last}`, 30_000)
    expect(result.status).toBe('pass')
    await pause(SETTLE_MS)
    const shown = dev.lines().slice(mark)
    return {
      n,
      names: shown.filter(l => l.type === 'test').map(l => String(l.name)),
      errors: shown.filter(l => l.type === 'error' || l.type === 'session-error'),
    }
  }

  const patterns: Array<[string, (n: number) => Promise<void>]> = [
    ['one write', async n => writeFileSync(file, content(n))],
    ['atomic rename (write a temporary file, rename it over the test)', async (n) => {
      const tmp = `${file}.tmp-${n}`
      writeFileSync(tmp, content(n))
      renameSync(tmp, file)
    }],
    ['two bursts a few ms apart: truncate, then write', async (n) => {
      writeFileSync(file, '')
      sleepSync(3)
      writeFileSync(file, content(n))
    }],
    ['two bursts a few ms apart: half the file (cut inside a string), then the rest', async (n) => {
      const text = content(n)
      const cut = text.indexOf('image = "') + 14
      writeFileSync(file, text.slice(0, cut))
      sleepSync(3)
      appendFileSync(file, text.slice(cut))
    }],
  ]

  for (const [name, write] of patterns) {
    it(`${name}: ${REPEATS} saves, each shows its own result once, never an error`, async () => {
      for (let i = 0; i < REPEATS; i++) {
        const { n, names, errors } = await save(write)
        expect(errors).toEqual([])
        expect(names).toEqual([`save ${n}`])
      }
    }, 120_000)
  }

  it(`two valid saves a few ms apart: ${REPEATS} times, the second's result last, nothing older than the first, never an error`, async () => {
    for (let i = 0; i < REPEATS; i++) {
      const { n, names, errors } = await save(async (n) => {
        writeFileSync(file, content(n))
        sleepSync(3)
        writeFileSync(file, content(n + 1))
      }, n => n + 1)
      expect(errors).toEqual([])
      // The first save shows only if its run ended before the second arrived; then in order.
      expect([[`save ${n + 1}`], [`save ${n}`, `save ${n + 1}`]]).toContainEqual(names)
    }
  }, 120_000)

  it('q quits within 10 s while an error is held back, exit 0, its containers removed', async () => {
    // An invalid save waits out its quiet window: quitting meanwhile must not wait on that timer.
    await writeFile(file, '[meta]\nname = "broken"\n')
    const started = performance.now()
    dev.send('q\n')
    expect(await dev.exited).toBe(0)
    const ms = performance.now() - started
    expect(ms).toBeLessThan(10_000)
    expect(clnrmContainers(dev.pid)).toEqual([])
    console.log(`q → exit: ${Math.round(ms)} ms`)
  }, 30_000)
})
