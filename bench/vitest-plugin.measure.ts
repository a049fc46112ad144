import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { it } from 'vitest'
import type { TestModule } from 'vitest/node'
import { createVitest } from 'vitest/node'
import { node, startDev } from '../test/runtimes/contract.ts'
import { percentile, record } from './results.ts'

// CLNRM_BENCH_SAVES: fewer saves for a quick try of the measurement itself.
const SAVES = Number(process.env.CLNRM_BENCH_SAVES ?? 30)
const IMAGE = 'clnrm-examples/busybox:1'
const root = resolve(import.meta.dirname, '..')
const pause = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

/** The same one-step test both loops rerun: each save changes the echoed value and its expectation. */
const check = (i: number): string => `[meta]\nname = "check"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "echo v${i}"\nrun = "echo v${i}"\nexpected_output_regex = "(?m)^v${i}$"\n`

interface Marks {
  rerun?: number
  queued?: number
  collected?: number
  result?: number
}

/** Where a Vitest rerun's time went: the save until the rerun starts (watcher, 100 ms debounce), the worker's start (until the file is queued in it), transform and collection, the test, reporting. */
type Phases = Record<'detect' | 'queue' | 'collect' | 'run' | 'report', number>

interface Sample {
  e2e: number
  /** The part Vitest timed inside the test. */
  inTest?: number
  phases?: Phases
}

interface Side {
  /** Save → the passing result of that save, in ms. */
  save: (i: number) => Promise<Sample>
  stop: () => Promise<void>
}

// Both loops run side by side and their saves alternate, so they are compared under the same
// machine conditions. The Vitest side runs in this process through the node API: its reporter's
// onTestRunEnd is the moment the result is shown (and the main process holds the pool).
it(`save → result of a clnrm test: ${SAVES} saves each, clnrm/vitest under vitest watch vs clnrm dev`, async () => {
  // Vitest's default pool (forks, a process per rerun) and threads (a worker thread per rerun).
  const sides = { vitest: await startVitestSide('{}'), threads: await startVitestSide('{ pool: "threads" }'), clnrm: await startClnrm() }
  const samples: Record<keyof typeof sides, Sample[]> = { vitest: [], threads: [], clnrm: [] }
  try {
    for (let i = 1; i <= SAVES; i++) {
      for (const name of ['vitest', 'threads', 'clnrm'] as const) {
        await pause(200)
        samples[name].push(await sides[name].save(i))
      }
    }
  }
  finally {
    await Promise.allSettled(Object.values(sides).map(side => side.stop()))
  }
  const e2e = (name: keyof typeof samples): number[] => samples[name].map(s => s.e2e)
  const inTest = samples.vitest.map(s => s.inTest ?? 0)
  const e = 'save → result under vitest watch'
  record({
    [`${e} › clnrm/vitest › p50`]: { value: percentile(e2e('vitest'), 50), unit: 'ms', better: 'lower' },
    [`${e} › clnrm/vitest › p95`]: { value: percentile(e2e('vitest'), 95), unit: 'ms', better: 'lower' },
    [`${e} › clnrm/vitest › in-test (step run through the main process) p50`]: { value: percentile(inTest, 50), unit: 'ms', better: 'lower' },
    [`${e} › clnrm/vitest, pool threads › p50`]: { value: percentile(e2e('threads'), 50), unit: 'ms', better: 'lower' },
    [`${e} › clnrm dev alongside › p50`]: { value: percentile(e2e('clnrm'), 50), unit: 'ms', better: 'lower' },
  })
  const p50 = (xs: number[]): number => percentile(xs, 50)
  const parts = (name: 'vitest' | 'threads'): string => {
    const phase = (key: keyof Phases): number => p50(samples[name].map(s => s.phases![key]))
    return `save → rerun (watcher + fixed 100 ms debounce) ${phase('detect')} · worker start ${phase('queue')} · transform and collect ${phase('collect')} · test ${phase('run')} (in-test ${p50(samples[name].map(s => s.inTest ?? 0))}) · report ${phase('report')}`
  }
  console.log(`
  where a save's time goes (p50, ms; parts are medians of parts):
    clnrm/vitest (forks)          e2e ${p50(e2e('vitest'))} = ${parts('vitest')}
    clnrm/vitest (threads)        e2e ${p50(e2e('threads'))} = ${parts('threads')}
    clnrm dev (debounce 30)       e2e ${p50(e2e('clnrm'))}
`)
})

/** `vitest` in watch mode on a project using `clnrm/vitest`, driven through the node API. */
async function startVitestSide(testConfig: string): Promise<Side> {
  const dir = mkdtempSync(join(tmpdir(), 'clnrm-vitest-bench-'))
  mkdirSync(join(dir, 'tests'))
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(join(root, 'node_modules/vitest'), join(dir, 'node_modules/vitest'))
  symlinkSync(root, join(dir, 'node_modules/clnrm'))
  writeFileSync(join(dir, 'package.json'), '{ "private": true, "type": "module" }\n')
  writeFileSync(join(dir, 'vitest.config.mjs'), `import { clnrm } from 'clnrm/vitest'\nexport default { plugins: [clnrm()], test: ${testConfig} }\n`)
  const file = join(dir, 'tests/check.clnrm.toml')
  writeFileSync(file, check(0))
  const ends: Array<{ at: number; passed: string[]; inTest: Record<string, number>; marks: Marks }> = []
  // When each phase of Vitest's rerun was reached (reporter events), to split a save's time.
  let marks: Marks = {}
  const reporter = {
    onWatcherRerun: () => void (marks = { rerun: performance.now() }),
    onTestModuleQueued: () => void (marks.queued ??= performance.now()),
    onTestModuleCollected: () => void (marks.collected ??= performance.now()),
    onTestCaseResult: () => void (marks.result ??= performance.now()),
    onTestRunEnd(modules: readonly TestModule[]) {
      const at = performance.now()
      const tests = modules.flatMap(m => [...m.children.allTests()])
      ends.push({ at, marks, passed: tests.filter(t => t.result().state === 'passed').map(t => t.name), inTest: Object.fromEntries(tests.map(t => [t.name, t.diagnostic()?.duration ?? 0])) })
    },
  }
  const vitest = await createVitest('test', { root: dir, watch: true, reporters: [reporter] })
  await vitest.start()
  return {
    async save(i) {
      const start = performance.now()
      writeFileSync(file, check(i))
      const name = `echo v${i}`
      const deadline = start + 30_000
      for (;;) {
        const end = ends.find(e => e.at > start && e.passed.includes(name))
        if (end) {
          const { rerun = start, queued = rerun, collected = queued, result = collected } = end.marks
          return { e2e: end.at - start, inTest: end.inTest[name], phases: { detect: rerun - start, queue: queued - rerun, collect: collected - queued, run: result - collected, report: end.at - result } }
        }
        if (performance.now() > deadline) throw new Error(`no passing "${name}" within 30 s`)
        await pause(1)
      }
    },
    async stop() {
      await vitest.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** `clnrm dev` on the same test; each save is timed until its passing result line. */
async function startClnrm(): Promise<Side> {
  const dir = mkdtempSync(join(tmpdir(), 'clnrm-dev-bench-'))
  mkdirSync(join(dir, 'tests'))
  const file = join(dir, 'tests/check.clnrm.toml')
  writeFileSync(file, check(0))
  const dev = startDev(node, [], dir)
  await dev.waitFor(line => line.type === 'ready')
  let reloads = 1
  return {
    async save(i) {
      const start = performance.now()
      writeFileSync(file, check(i))
      const result = await dev.waitFor(line => line.type === 'test' && line.status === 'pass' && line.reload > reloads, 30_000)
      reloads = result.reload
      return { e2e: performance.now() - start }
    },
    async stop() {
      dev.send('q\n')
      await dev.exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
