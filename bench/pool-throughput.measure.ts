import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import Dockerode from 'dockerode'
import { afterAll, it } from 'vitest'
import { ContainerPool, createTestLoader } from '../core/index.ts'
import type { TestSpec } from '../core/index.ts'
import { runTest } from '../core/run.ts'
import { percentile, record } from './results.ts'

// `clnrm run` throughput and multi-service cold start (issue #12). Each number is printed next to
// the baseline measured in the same run: -j 1 for -j N, the engine's own parallel starts for the
// 3-service/1-service ratio. Needs the engine and the local image (npm run prebench sets both up).
const IMAGE = 'clnrm-examples/busybox:1'
const FILES = 50
const ROUNDS = 3
/** The second `--reuse` run is short and noisy: more samples than the other cases. */
const REUSE_ROUNDS = 7
const bin = resolve(import.meta.dirname, '../dist/cli/bin.mjs')
const dir = mkdtempSync(join(tmpdir(), 'clnrm-throughput-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
for (let i = 0; i < FILES; i++) writeFileSync(join(dir, `t${String(i).padStart(2, '0')}.clnrm.toml`), `[meta]\nname = "t${i}"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "s"\nrun = "true"\n`)
const loader = createTestLoader({ project: { root: dir, vars: {}, determinism: {} } })
const specs: TestSpec[] = Array.from({ length: FILES }, (_, i) => loader.loadSource(join(dir, `t${String(i).padStart(2, '0')}.clnrm.toml`), `[meta]\nname = "t${i}"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "s"\nrun = "true"\n`).spec!)

/** The 50 tests as `clnrm run -j` runs them, on a fresh pool: test time after the first container is ready, and containers started. */
async function inProcess(jobs: number): Promise<{ afterReadyMs: number; started: number }> {
  let firstReady: number | undefined
  const pool = await ContainerPool.create({ onEvent: (event) => {
    if (event.type === 'pool:container-ready') firstReady ??= performance.now()
  } })
  try {
    const queue = [...specs]
    const worker = async (): Promise<void> => {
      for (let spec = queue.shift(); spec; spec = queue.shift()) {
        const result = await runTest(spec, { pool })
        if (result.status !== 'pass') throw new Error(`${spec.name}: ${result.status} ${JSON.stringify(result.error)}`)
      }
    }
    await Promise.all(Array.from({ length: jobs }, worker))
    return { afterReadyMs: performance.now() - firstReady!, started: pool.stats().started }
  }
  finally {
    await pool.close()
  }
}

/** Wall time of the real CLI (process start to exit, teardown included). */
function cli(jobs: number): number {
  const start = performance.now()
  const child = spawnSync(process.execPath, [bin, 'run', '-j', String(jobs), '.'], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
  if (child.status !== 0) throw new Error(`clnrm run -j ${jobs} exited ${child.status}: ${child.stdout}${child.stderr}`)
  return performance.now() - start
}

it(`clnrm run throughput: ${FILES} one-step files sharing one definition, -j 1 / 2 / 8`, { timeout: 600_000 }, async () => {
  const results: Parameters<typeof record>[0] = {}
  for (const jobs of [1, 2, 8]) {
    const samples: Array<{ afterReadyMs: number; started: number }> = []
    for (let round = 0; round < ROUNDS; round++) samples.push(await inProcess(jobs))
    const wall: number[] = []
    for (let round = 0; round < ROUNDS; round++) wall.push(cli(jobs))
    console.log(`  -j ${jobs}: containers started ${samples.map(s => s.started).join(', ')}`)
    results[`run throughput (${FILES} files, one definition) › -j ${jobs}: test time after the first container is ready`] = { value: percentile(samples.map(s => s.afterReadyMs), 50), unit: 'ms', better: 'lower' }
    results[`run throughput (${FILES} files, one definition) › -j ${jobs}: clnrm run wall time`] = { value: percentile(wall, 50), unit: 'ms', better: 'lower' }
  }
  const at = (jobs: number): number => results[`run throughput (${FILES} files, one definition) › -j ${jobs}: clnrm run wall time`]!.value
  results[`run throughput (${FILES} files, one definition) › -j 8 / -j 1 wall (target ≤ 1)`] = { value: Math.round(at(8) / at(1) * 100) / 100, unit: 'ratio', better: 'lower' }
  record(results)
})

it('multi-service cold start: 3 services / 1 service, next to the engine\'s own ratio for 3 parallel starts', { timeout: 600_000 }, async () => {
  const docker = new Dockerode()
  // The engine alone: create + start of 1 and of 3 containers at once (what any client pays);
  // `network`: on a network with aliases, created inside the timing (`create`) or before it (`before`).
  const raw = async (n: number, network?: 'create' | 'before'): Promise<number> => {
    const name = network ? `clnrm-bench-${Math.random().toString(36).slice(2, 10)}` : undefined
    if (name && network === 'before') await docker.createNetwork({ Name: name, Labels: { 'clnrm.bench': '1' } })
    const start = performance.now()
    if (name && network === 'create') await docker.createNetwork({ Name: name, Labels: { 'clnrm.bench': '1' } })
    const containers = await Promise.all(Array.from({ length: n }, (_, i) => docker.createContainer({
      Image: IMAGE,
      Cmd: ['sleep', '60'],
      Labels: { 'clnrm.bench': '1' },
      HostConfig: { NetworkMode: name },
      NetworkingConfig: name ? { EndpointsConfig: { [name]: { Aliases: [`s${i}`] } } } : undefined,
    }).then(async (c) => {
      await c.start()
      return c
    })))
    const ms = performance.now() - start
    await Promise.all(containers.map(c => c.remove({ force: true })))
    if (name) await docker.getNetwork(name).remove()
    return ms
  }
  const service = (id: string): string => `[services.${id}]\nimage = "${IMAGE}"\nreuse = false\n`
  const one = loader.loadSource(join(dir, 'one.clnrm.toml'), `[meta]\nname = "one"\n${service('a')}[[steps]]\nrun = "true"\n`).spec!
  const three = loader.loadSource(join(dir, 'three.clnrm.toml'), `[meta]\nname = "three"\n${['a', 'b', 'c'].map(service).join('')}[[steps]]\nservice = "a"\nrun = "true"\n`).spec!
  // As `clnrm run` and `clnrm dev` use it: told the plan (prepareImages), so it keeps a labelled
  // spare network ready for the multi-service test; every container is still started cold.
  // Where the time goes, per test: the start of each service (pool events), acquire, the step, teardown.
  const phases = new Map<TestSpec, Array<Record<string, number>>>([[one, []], [three, []]])
  let ready: Record<string, number> = {}
  const planned = await ContainerPool.create({ onEvent: (event) => {
    if (event.type === 'pool:container-ready') ready[`ready ${event.service}`] = event.ms
  } })
  void planned.prepareImages([one, three])
  // Told nothing: the test's network is created on its own critical path (a lone 3-service test).
  const unplanned = await ContainerPool.create()
  // Both tests run one `true` step: the difference is the cold start alone.
  const samples = { engine1: [] as number[], engine3: [] as number[], engine3net: [] as number[], engine3pre: [] as number[], clnrm1: [] as number[], clnrm3: [] as number[], clnrm3path: [] as number[], first1: [] as number[], first3: [] as number[] }
  // As `clnrm run` of one file: a new pool told its plan, to the result (its sweeps, then the test's cold start).
  const firstOfRun = async (spec: TestSpec): Promise<number> => {
    const start = performance.now()
    const pool = await ContainerPool.create({ plan: [spec] })
    try {
      const result = await runTest(spec, { pool })
      if (result.status !== 'pass') throw new Error(`${spec.name}: ${JSON.stringify(result.error ?? result.steps)}`)
      return performance.now() - start
    }
    finally {
      await pool.close()
    }
  }
  try {
    // Until the result is known (reuse = false: teardown follows, off the result's path).
    const timed = async (pool: ContainerPool, spec: TestSpec): Promise<number> => {
      ready = {}
      const start = performance.now()
      const result = await runTest(spec, { pool })
      if (result.status !== 'pass') throw new Error(`${spec.name}: ${JSON.stringify(result.error ?? result.steps)}`)
      const ms = performance.now() - start
      // Its teardown (after the result) must not overlap the next measurement; with no plan, nor a spare network make the next one warm.
      while (pool.stats().live || (pool === unplanned && pool.stats().networks)) await new Promise(r => setTimeout(r, 20))
      if (pool === planned) phases.get(spec)!.push({ ...ready, acquire: result.timings.acquireMs, step: result.timings.steps[0]!.ms, 'to the result': ms, 'teardown after the result': performance.now() - start - ms })
      return ms
    }
    // A round not counted: images resolved, the planned pool's spare made, caches warm.
    await timed(planned, three)
    for (let round = 0; round < 7; round++) {
      samples.engine1.push(await raw(1))
      samples.engine3.push(await raw(3))
      samples.engine3net.push(await raw(3, 'create'))
      samples.engine3pre.push(await raw(3, 'before'))
      samples.clnrm1.push(await timed(planned, one))
      samples.clnrm3.push(await timed(planned, three))
      samples.clnrm3path.push(await timed(unplanned, three))
      samples.first1.push(await firstOfRun(one))
      samples.first3.push(await firstOfRun(three))
    }
  }
  finally {
    await Promise.all([planned.close(), unplanned.close()])
  }
  const p50 = (s: number[]): number => percentile(s, 50)
  for (const [spec, rows] of phases) {
    const counted = rows.slice(spec === three ? 1 : 0)
    console.log(`  where the time goes, ${spec.name === 'one' ? '1-service' : '3-service'} test, spare network ready (p50 ms): ${Object.keys(counted[0] ?? {}).map(k => `${k} ${Math.round(p50(counted.map(r => r[k] ?? 0)))}`).join(', ')}`)
  }
  const ratio = (a: number[], b: number[]): number => Math.round(p50(a) / p50(b) * 100) / 100
  const engineRatio = ratio(samples.engine3, samples.engine1)
  const clnrmRatio = ratio(samples.clnrm3, samples.clnrm1)
  const target = Math.round(engineRatio * 1.1 * 100) / 100
  console.log(`  3-service / 1-service: ${clnrmRatio} with the spare network ready, ${ratio(samples.clnrm3path, samples.clnrm1)} with the network made on the test's path, ${ratio(samples.first3, samples.first1)} for a run of one file (pool created with its plan); target ≤ ${target} (engine ${engineRatio} + 10%): ${clnrmRatio <= target ? 'met' : 'NOT met'}`)
  record({
    'multi-service cold start › engine alone: 3 parallel starts / 1 start (the baseline)': { value: engineRatio, unit: 'ratio', better: 'lower' },
    'multi-service cold start › engine alone: a network + 3 parallel starts on it with aliases / 1 start': { value: ratio(samples.engine3net, samples.engine1), unit: 'ratio', better: 'lower' },
    'multi-service cold start › engine alone: 3 parallel starts with aliases on a network made beforehand / 1 start': { value: ratio(samples.engine3pre, samples.engine1), unit: 'ratio', better: 'lower' },
    'multi-service cold start › clnrm: 3-service test / 1-service test, to the result, spare network ready (target ≤ engine + 10%)': { value: clnrmRatio, unit: 'ratio', better: 'lower' },
    'multi-service cold start › clnrm: 3-service test / 1-service test, to the result, network made on the test\'s path': { value: ratio(samples.clnrm3path, samples.clnrm1), unit: 'ratio', better: 'lower' },
    'multi-service cold start › clnrm: a run of one file, new pool told its plan → result, 3-service / 1-service': { value: ratio(samples.first3, samples.first1), unit: 'ratio', better: 'lower' },
    'multi-service cold start › engine alone: 1 start': { value: p50(samples.engine1), unit: 'ms', better: 'lower' },
    'multi-service cold start › engine alone: 3 parallel starts': { value: p50(samples.engine3), unit: 'ms', better: 'lower' },
    'multi-service cold start › engine alone: a network + 3 parallel starts': { value: p50(samples.engine3net), unit: 'ms', better: 'lower' },
    'multi-service cold start › clnrm: 1-service test cold, to the result': { value: p50(samples.clnrm1), unit: 'ms', better: 'lower' },
    'multi-service cold start › clnrm: 3-service test cold, to the result, spare network ready': { value: p50(samples.clnrm3), unit: 'ms', better: 'lower' },
    'multi-service cold start › clnrm: 3-service test cold, to the result, network made on the test\'s path': { value: p50(samples.clnrm3path), unit: 'ms', better: 'lower' },
  })
})

/** CPU time (user + system, ms) of the children this process has waited for (/proc's cutime + cstime, 10 ms ticks); undefined off Linux. */
function childrenCpuMs(): number | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[13]) + Number(fields[14])) * 10
  }
  catch {
    return undefined
  }
}

it(`clnrm run --reuse: the second run of the ${FILES}-file suite claims the first run's container`, { timeout: 600_000 }, () => {
  const wall = (args: string[]): { ms: number; cpuMs: number | undefined; pid: number } => {
    const cpu = childrenCpuMs()
    const start = performance.now()
    const child = spawnSync(process.execPath, [bin, 'run', '-j', '2', ...args, '.'], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
    const ms = performance.now() - start
    if (child.status !== 0) throw new Error(`clnrm run ${args.join(' ')} exited ${child.status}: ${child.stdout}${child.stderr}`)
    const after = childrenCpuMs()
    return { ms, cpuMs: cpu === undefined || after === undefined ? undefined : after - cpu, pid: child.pid! }
  }
  const pids: number[] = []
  try {
    const first = wall(['--reuse'])
    pids.push(first.pid)
    // The baseline, in this run and interleaved with the measured runs so both see the same load:
    // the same suite without --reuse (every container started and removed).
    const plain: number[] = []
    const again: number[] = []
    const againCpu: number[] = []
    for (let round = 0; round < REUSE_ROUNDS; round++) {
      plain.push(wall([]).ms)
      const next = wall(['--reuse'])
      pids.push(next.pid)
      again.push(next.ms)
      if (next.cpuMs !== undefined) againCpu.push(next.cpuMs)
    }
    const baseline = percentile(plain, 50)
    const second = percentile(again, 50)
    console.log(`  run --reuse, second run: ${second} ms wall (baseline without --reuse ${baseline} ms); target ≤ 500 ms: ${second <= 500 ? 'met' : 'NOT met'}`)
    record({
      [`run --reuse (${FILES} files) › without --reuse: clnrm run wall time (the baseline)`]: { value: baseline, unit: 'ms', better: 'lower' },
      [`run --reuse (${FILES} files) › second run, the first run's container claimed: wall time (target ≤ 500)`]: { value: second, unit: 'ms', better: 'lower' },
      ...(againCpu.length && { [`run --reuse (${FILES} files) › second run: CPU time of the clnrm process (user + system)`]: { value: percentile(againCpu, 50), unit: 'ms', better: 'lower' } as const }),
    })
  }
  finally {
    // Containers these runs left parked (created by them; `clnrm.pid` is 0 on such containers).
    for (const pid of pids) {
      const ids = spawnSync('docker', ['ps', '-aq', '--filter', `label=clnrm.creator=${pid}`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)
      if (ids.length) spawnSync('docker', ['rm', '-f', ...ids])
    }
  }
})
