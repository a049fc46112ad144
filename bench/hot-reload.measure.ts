import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { it } from 'vitest'
import type { HotReloadMetrics } from '../core/index.ts'
import { node, startDev } from '../test/runtimes/contract.ts'
import type { BenchResult } from './results.ts'
import { gatedMedian, percentile, record, spread } from './results.ts'

// CLNRM_BENCH_SAVES: fewer saves for a quick try of the measurement itself.
const SAVES = Number(process.env.CLNRM_BENCH_SAVES ?? 30)
const IMAGE = 'clnrm-examples/busybox:1'
/** Vitest's watch mode waits this long after a change (WATCHER_DEBOUNCE, not configurable). */
const VITEST_DEBOUNCE_MS = 100
const root = resolve(import.meta.dirname, '..')
const pause = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))
const round = (n: number): number => Math.round(n * 10) / 10

/** One save of one side: save → result shown, and where the time went. */
interface Sample {
  e2e: number
  metrics?: HotReloadMetrics
  /** The peer's own in-test timings: container start (withReuse) and exec. */
  peer?: { start: number; exec: number }
}

interface Side {
  save: (i: number) => Promise<Sample>
  stop: () => Promise<void>
}

// The three loops run side by side and their saves alternate, so every comparison is between
// samples taken under the same machine conditions (others' tests, page cache, CPU frequency).
it(`end-to-end hot reload: ${SAVES} saves each, clnrm dev (default and ${VITEST_DEBOUNCE_MS} ms debounce) vs Vitest + testcontainers withReuse`, async () => {
  const sides = { clnrm: await startClnrm(), equal: await startClnrm(VITEST_DEBOUNCE_MS), peer: await startPeer() }
  const samples: Record<keyof typeof sides, Sample[]> = { clnrm: [], equal: [], peer: [] }
  try {
    for (let i = 1; i <= SAVES; i++) {
      for (const name of ['clnrm', 'equal', 'peer'] as const) {
        await pause(name === 'peer' ? 300 : 150)
        samples[name].push(await sides[name].save(i))
      }
    }
  }
  finally {
    await Promise.allSettled(Object.values(sides).map(side => side.stop()))
  }

  const e2e = (name: keyof typeof samples): number[] => samples[name].map(s => s.e2e)
  const phase = (name: 'clnrm' | 'equal', key: keyof HotReloadMetrics): number[] => samples[name].map(s => s.metrics![key] as number)
  // Our own work in a save: the session's event → shown time without the fixed debounce wait.
  const ownWork = (name: 'clnrm' | 'equal'): number[] => samples[name].map(s => s.metrics!.totalLatencyMs - s.metrics!.debounceMs)
  const peerStart = samples.peer.map(s => s.peer!.start)
  const peerExec = samples.peer.map(s => s.peer!.exec)
  // Per-save ratios give the ratio's own spread; the value is the ratio of the medians.
  const ratio = (peer: number[], ours: number[]): BenchResult => ({
    value: round(percentile(peer, 50) / percentile(ours, 50)),
    unit: 'ratio',
    better: 'higher',
    gate: { spread: spread(peer.map((p, i) => p / ours[i]!)) },
  })
  const e = 'end-to-end hot reload'
  const phases = { detect: 'fileDetectionMs', render: 'templateRenderMs', parse: 'configParseMs', containers: 'containerStartMs', run: 'testExecutionMs', display: 'resultFormattingMs' } as const
  record({
    [`${e} › clnrm dev › p50`]: { value: percentile(e2e('clnrm'), 50), unit: 'ms', better: 'lower' },
    [`${e} › clnrm dev › p95`]: { value: percentile(e2e('clnrm'), 95), unit: 'ms', better: 'lower' },
    [`${e} › clnrm dev › own work p50 (event → shown, debounce excluded)`]: gatedMedian(ownWork('clnrm'), 'ms', 1),
    ...Object.fromEntries(Object.entries(phases).map(([label, key]) => [`${e} › clnrm dev › phase p50 › ${label}`, gatedMedian(phase('clnrm', key), 'ms', 0.5)])),
    [`${e} › clnrm dev --debounce ${VITEST_DEBOUNCE_MS} › p50`]: { value: percentile(e2e('equal'), 50), unit: 'ms', better: 'lower' },
    [`${e} › vitest + testcontainers withReuse › p50`]: { value: percentile(e2e('peer'), 50), unit: 'ms', better: 'lower' },
    [`${e} › vitest + testcontainers withReuse › p95`]: { value: percentile(e2e('peer'), 95), unit: 'ms', better: 'lower' },
    [`${e} › vitest + testcontainers withReuse › in-test container start (withReuse) p50`]: { value: percentile(peerStart, 50), unit: 'ms', better: 'lower' },
    [`${e} › vitest + testcontainers withReuse › in-test exec p50`]: { value: percentile(peerExec, 50), unit: 'ms', better: 'lower' },
    [`${e} › speed-up over vitest + testcontainers at equal debounce (${VITEST_DEBOUNCE_MS} ms, p50 ratio)`]: ratio(e2e('peer'), e2e('equal')),
    [`${e} › speed-up over vitest + testcontainers, each at its default debounce (p50 ratio)`]: { value: round(percentile(e2e('peer'), 50) / percentile(e2e('clnrm'), 50)), unit: 'ratio', better: 'higher' },
  })

  // Where each side spends a save (p50s; parts need not add up exactly, medians of parts).
  const p50 = (xs: number[]): string => `${percentile(xs, 50)}`.padStart(6)
  const ours = (name: 'clnrm' | 'equal'): string =>
    `debounce ${p50(phase(name, 'debounceMs'))} · ${Object.entries(phases).map(([label, key]) => `${label} ${percentile(phase(name, key), 50)}`).join(' · ')} · own work ${percentile(ownWork(name), 50)}`
  const peerRest = samples.peer.map(s => s.e2e - VITEST_DEBOUNCE_MS - s.peer!.start - s.peer!.exec)
  console.log(`
  where a save's time goes (p50, ms):
    clnrm dev (debounce 30)        e2e ${p50(e2e('clnrm'))} = ${ours('clnrm')}
    clnrm dev (debounce ${VITEST_DEBOUNCE_MS})       e2e ${p50(e2e('equal'))} = ${ours('equal')}
    vitest + testcontainers        e2e ${p50(e2e('peer'))} = debounce ${VITEST_DEBOUNCE_MS} (fixed) · container start (withReuse) ${percentile(peerStart, 50)} · exec ${percentile(peerExec, 50)} · the rest (watch, transform, worker, report) ${percentile(peerRest, 50)}
`)
})

/** A running `clnrm dev` on a one-step test; each save is timed until its passing result line. */
async function startClnrm(debounceMs?: number): Promise<Side> {
  const dir = mkdtempSync(join(tmpdir(), 'clnrm-e2e-'))
  const file = join(dir, 'tests/check.clnrm.toml')
  mkdirSync(join(dir, 'tests'))
  const write = (i: number): void => writeFileSync(file, `[meta]\nname = "check"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "echo"\nrun = "echo v${i}"\nexpected_output_regex = "(?m)^v${i}$"\n`)
  write(0)
  const dev = startDev(node, debounceMs === undefined ? [] : ['--debounce', String(debounceMs)], dir)
  await dev.waitFor(line => line.type === 'ready')
  let reloads = 1
  return {
    async save(i) {
      const start = performance.now()
      write(i)
      const result = await dev.waitFor(line => line.type === 'test' && line.status === 'pass' && line.reload > reloads, 30_000)
      const e2e = performance.now() - start
      const reload = await dev.waitFor(line => line.type === 'reload' && line.id === result.reload, 30_000)
      reloads = result.reload
      return { e2e, metrics: reload.metrics as HotReloadMetrics }
    },
    async stop() {
      dev.send('q\n')
      await dev.exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * The same check as a Vitest watch loop with testcontainers' withReuse(): save → "✓ check vN".
 * The test writes its own container start and exec times to a file, so the end-to-end figure can
 * be split into what the containers cost and what the test runner costs.
 */
async function startPeer(): Promise<Side> {
  // Inside the repository, so vitest and testcontainers resolve from its node_modules.
  const dir = mkdtempSync(join(root, 'bench', '.tmp-vitest-'))
  // This run's own label: it is part of withReuse()'s hash, so a bench running elsewhere on the
  // same engine neither reuses nor removes our container.
  const RUN = basename(dir)
  const file = join(dir, 'check.test.ts')
  const timings = join(dir, 'timings.ndjson')
  const write = (i: number): void => writeFileSync(file, `import { appendFileSync } from 'node:fs'
import { expect, test } from 'vitest'
import { GenericContainer } from 'testcontainers'
const VALUE = 'v${i}'
test(\`check \${VALUE}\`, async () => {
  const t0 = performance.now()
  const container = await new GenericContainer('${IMAGE}').withCommand(['sleep', '3600']).withLabels({ 'clnrm-bench': '${RUN}' }).withReuse().start()
  const t1 = performance.now()
  const result = await container.exec(['sh', '-c', \`echo \${VALUE}\`])
  const t2 = performance.now()
  appendFileSync(${JSON.stringify(timings)}, JSON.stringify({ value: VALUE, start: t1 - t0, exec: t2 - t1 }) + '\\n')
  expect(result.output.trim()).toBe(VALUE)
})
`)
  writeFileSync(join(dir, 'vitest.config.mjs'), 'export default { test: { include: [\'check.test.ts\'], watch: true } }\n')
  write(0)
  const child = spawn(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), '--config', 'vitest.config.mjs', '--reporter', 'verbose'], {
    cwd: dir,
    env: { ...process.env, TESTCONTAINERS_RYUK_DISABLED: 'true', NO_COLOR: '1', CI: '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => void (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => void (output += d.toString()))
  const until = async (text: string, from: number): Promise<void> => {
    const deadline = Date.now() + 60_000
    while (!output.slice(from).includes(text)) {
      if (Date.now() > deadline) throw new Error(`vitest never printed "${text}":\n${output.slice(-2000)}`)
      await pause(2)
    }
  }
  const timingOf = (value: string): { start: number; exec: number } => {
    const lines = readFileSync(timings, 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l) as { value: string; start: number; exec: number })
    const found = lines.findLast(l => l.value === value)
    if (!found) throw new Error(`the peer's test wrote no timings for ${value}`)
    return { start: found.start, exec: found.exec }
  }
  await until('✓ check.test.ts > check v0', 0)
  return {
    async save(i) {
      const from = output.length
      const start = performance.now()
      write(i)
      await until(`✓ check.test.ts > check v${i}`, from)
      return { e2e: performance.now() - start, peer: timingOf(`v${i}`) }
    },
    async stop() {
      child.kill('SIGTERM')
      await new Promise(r => (child.exitCode === null ? child.once('exit', r) : r(null)))
      rmSync(dir, { recursive: true, force: true })
      const ids = execFileSync('docker', ['ps', '-aq', '--filter', `label=clnrm-bench=${RUN}`], { encoding: 'utf8' }).split('\n').filter(Boolean)
      if (ids.length) execFileSync('docker', ['rm', '-f', ...ids])
    },
  }
}
