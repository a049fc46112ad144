import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { it } from 'vitest'
import type { DevProcess } from '../test/runtimes/contract.ts'
import { node, startDev } from '../test/runtimes/contract.ts'
import type { BenchResult } from './results.ts'
import { percentile, record } from './results.ts'

/**
 * `clnrm dev` at scale: N test files in one folder, all including one partial that holds their
 * one service definition, each with one step that runs in its container. Start to ready is until
 * every test has run and shown its result (checked: N passing results before `ready`); the shared
 * partial's save reruns all N, steps included, until each has shown a new passing result. The
 * partial's save changes the service definition, so that rerun includes starting the new
 * definition's container. Each size is compared with the one-file case of the same run, so
 * machine load affects both sides.
 *
 * CLNRM_BENCH_SCALE picks the sizes (default "1,1000,3000"; "1,300" for a quick try) and
 * CLNRM_BENCH_SCALE_SAVES the one-file saves per size (default 15). CLNRM_BENCH_SCALE_STEPS=0
 * measures clnrm's own work only: the dev loop starts with a name filter no step matches (`-t`),
 * so every file is read, rendered, checked and watched but no step runs (labelled "no step runs").
 */
const SIZES = (process.env.CLNRM_BENCH_SCALE ?? '1,1000,3000').split(',').map(Number).filter(n => n > 0)
const SAVES = Number(process.env.CLNRM_BENCH_SCALE_SAVES ?? 15)
const IMAGE = 'clnrm-examples/busybox:1'
const NO_STEP = 'no step is named like this'
const STEPS = process.env.CLNRM_BENCH_SCALE_STEPS !== '0'
const LABEL = STEPS ? 'steps run' : 'no step runs'
const pause = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

/** A fixture of `count` template tests sharing `tests/_svc.eta`. */
function fixture(count: number): { dir: string; test: (i: number) => string; writeTest: (i: number, v: number) => void; partial: string } {
  const dir = mkdtempSync(join(tmpdir(), `clnrm-scale-${count}-`))
  mkdirSync(join(dir, 'tests'))
  writeFileSync(join(dir, 'clnrm.toml'), '# scale benchmark\n')
  const partial = join(dir, 'tests/_svc.eta')
  writeFileSync(partial, `[services.app]\nimage = "${IMAGE}"\n`)
  const test = (i: number): string => join(dir, 'tests', `t${String(i).padStart(5, '0')}.clnrm.toml.eta`)
  const writeTest = (i: number, v: number): void => writeFileSync(test(i), `[meta]\nname = "t${i}"\n\n<%~ include('./_svc.eta') %>\n\n[[steps]]\nname = "echo"\nservice = "app"\nrun = "echo ${i} ${v}"\nexpected_output_regex = "^${i} "\n`)
  for (let i = 0; i < count; i++) writeTest(i, 0)
  return { dir, test, writeTest, partial }
}

/** Resident and peak memory of a process, in MB (Linux). */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0)
  return { rss: Math.round(kb('VmRSS') / 1024), peak: Math.round(kb('VmHWM') / 1024) }
}

/** CPU time a process used so far, in ms (Linux; clock ticks are 10 ms). */
function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/** Pids of the processes whose command line matches `pattern` (the engine's daemons). */
function pidsOf(pattern: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number)
  }
  catch {
    return []
  }
}

/** CPU used so far by each container a clnrm process holds, in ms, from its cgroup (v1 or v2; absent when neither is readable). */
function containersCpuOf(pid: number): Map<string, number> {
  const ids = execFileSync('docker', ['ps', '-q', '--no-trunc', '--filter', `label=clnrm.pid=${pid}`], { encoding: 'utf8' }).split('\n').filter(Boolean)
  const used = new Map<string, number>()
  for (const id of ids) {
    try {
      used.set(id, Number(readFileSync(`/sys/fs/cgroup/cpuacct/docker/${id}/cpuacct.usage`, 'utf8')) / 1e6)
    }
    catch {
      try {
        used.set(id, Number(/^usage_usec (\d+)/m.exec(readFileSync(`/sys/fs/cgroup/system.slice/docker-${id}.scope/cpu.stat`, 'utf8'))?.[1] ?? 0) / 1e3)
      }
      catch {}
    }
  }
  return used
}

/**
 * Where the CPU of a stretch of work goes: the clnrm process, the engine (dockerd, containerd
 * and the shims), and the clnrm process's containers (what their shells and steps ran; a
 * container removed meanwhile is left out).
 */
function cpuSplit(pid: number): () => { clnrm: number; engine: number; containers: number } {
  const engine = (): number => [...pidsOf('^dockerd'), ...pidsOf('^containerd'), ...pidsOf('containerd-shim')].reduce((sum, p) => sum + cpuOrZero(p), 0)
  const before = { clnrm: cpuOf(pid), engine: engine(), containers: containersCpuOf(pid) }
  return () => {
    let containers = 0
    for (const [id, ms] of containersCpuOf(pid)) containers += ms - (before.containers.get(id) ?? 0)
    return { clnrm: cpuOf(pid) - before.clnrm, engine: engine() - before.engine, containers }
  }
}

const cpuOrZero = (pid: number): number => {
  try {
    return cpuOf(pid)
  }
  catch {
    return 0
  }
}

/** Containers a clnrm process holds now (its pid label). */
function containersOf(pid: number): number {
  return execFileSync('docker', ['ps', '-aq', '--filter', `label=clnrm.pid=${pid}`], { encoding: 'utf8' }).split('\n').filter(Boolean).length
}

interface SizeResult {
  readyMs: number
  containers: number
  rss: number
  peak: number
  save: number[]
  saveCpuMs: number
  partialMs?: number
  partialSelected?: number
  /** CPU per rerun test of the shared partial's save, in ms (steps run only). */
  partialCpu?: { clnrm: number; engine: number; containers: number }
}

/** Throws unless reload `id` showed `count` passing results (the steps ran and passed). */
function expectPassed(lines: ReadonlyArray<Record<string, any>>, id: number, count: number): void {
  const shown = lines.filter(line => line.type === 'test' && line.reload === id)
  const passed = shown.filter(line => line.status === 'pass').length
  if (passed !== count) throw new Error(`reload ${id}: expected ${count} passing results, got ${passed} of ${shown.length} (${JSON.stringify(shown.find(line => line.status !== 'pass'))})`)
}

/**
 * Resolves with `count` once `count` distinct tests have shown a passing result in a reload after
 * `after` (NDJSON lines from index `from` on, polled every 2 ms); throws on any other result.
 */
async function newResults(dev: DevProcess, from: number, after: number, count: number): Promise<number> {
  const passed = new Set<string>()
  const deadline = performance.now() + 300_000
  for (let at = from; passed.size < count;) {
    const lines = dev.lines()
    for (; at < lines.length; at++) {
      const line = lines[at]!
      if (line.type !== 'test' || line.reload <= after) continue
      if (line.status !== 'pass') throw new Error(`a rerun test did not pass: ${JSON.stringify(line)}`)
      passed.add(line.file)
    }
    if (passed.size < count) {
      if (performance.now() > deadline) throw new Error(`only ${passed.size} of ${count} tests reran`)
      await pause(2)
    }
  }
  return passed.size
}

async function measure(count: number): Promise<SizeResult> {
  const { dir, writeTest, partial } = fixture(count)
  const started = performance.now()
  const dev = startDev(node, STEPS ? [] : ['-t', NO_STEP], dir)
  try {
    const ready = await dev.waitFor(line => line.type === 'ready', 300_000)
    const readyMs = performance.now() - started
    if (ready.tests !== count) throw new Error(`expected ${count} valid tests, dev reported ${JSON.stringify(ready)}`)
    // Ready means every test has run in its container and shown its result.
    if (STEPS) expectPassed(dev.lines(), 1, count)
    const { rss, peak } = memoryOf(dev.pid)
    const containers = containersOf(dev.pid)
    let reload = 1
    const save: number[] = []
    await pause(300)
    const cpuBefore = cpuOf(dev.pid)
    // Saves of one test (the middle one): save → the reload's line, clnrm's whole own work.
    for (let v = 1; v <= SAVES; v++) {
      const t0 = performance.now()
      writeTest(Math.floor(count / 2), v)
      const done = await dev.waitFor(line => line.type === 'reload' && line.id > reload, 60_000)
      save.push(performance.now() - t0 - done.metrics.debounceMs)
      reload = done.id
      await pause(120)
    }
    const saveCpuMs = (cpuOf(dev.pid) - cpuBefore) / SAVES
    let partialMs: number | undefined
    let partialSelected: number | undefined
    let partialCpu: SizeResult['partialCpu']
    if (count > 1) {
      const from = dev.lines().length
      const cpu = STEPS ? cpuSplit(dev.pid) : undefined
      const t0 = performance.now()
      writeFileSync(partial, `[services.app]\nimage = "${IMAGE}"\nenv = { CHANGED = "1" }\n`)
      if (STEPS) {
        // Until every test has shown a new passing result, whichever reload shows it: a save the
        // watcher reports twice starts a second reload that takes the first one's tests over.
        partialSelected = await newResults(dev, from, reload, count)
        partialMs = performance.now() - t0
        const used = cpu!()
        partialCpu = { clnrm: used.clnrm / count, engine: used.engine / count, containers: used.containers / count }
      }
      else {
        const done = await dev.waitFor(line => line.type === 'reload' && line.id > reload, 300_000)
        partialMs = performance.now() - t0
        partialSelected = done.selected.length
      }
    }
    return { readyMs, containers, rss, peak, save, saveCpuMs, partialMs, partialSelected, partialCpu }
  }
  finally {
    dev.send('q\n')
    await dev.exited
    rmSync(dir, { recursive: true, force: true })
  }
}

it(`clnrm dev at scale (${SIZES.join(', ')} files; ${LABEL})`, async () => {
  const results = new Map<number, SizeResult>()
  for (const size of SIZES) results.set(size, await measure(size))
  const base = results.get(Math.min(...SIZES))!
  const out: Record<string, BenchResult> = {}
  const round = (n: number): number => Math.round(n * 10) / 10
  for (const [size, r] of results) {
    const p = `dev at scale (${size} files${STEPS ? ', steps run' : ''})`
    out[`${p} › start to ready (load, render, check, watch${STEPS ? ', run every test' : '; no step runs'})`] = { value: Math.round(r.readyMs), unit: 'ms', better: 'lower' }
    if (STEPS) out[`${p} › containers at ready`] = { value: r.containers, unit: 'count', better: 'lower' }
    out[`${p} › RSS at ready`] = { value: r.rss, unit: 'MB', better: 'lower' }
    out[`${p} › peak RSS`] = { value: r.peak, unit: 'MB', better: 'lower' }
    out[`${p} › one-file save → reload shown p50 (debounce excluded)`] = { value: percentile(r.save, 50), unit: 'ms', better: 'lower' }
    out[`${p} › one-file save › CPU per save`] = { value: round(r.saveCpuMs), unit: 'ms', better: 'lower' }
    if (size !== Math.min(...SIZES)) out[`${p} › one-file save p50 minus the ${Math.min(...SIZES)}-file case`] = { value: round(percentile(r.save, 50) - percentile(base.save, 50)), unit: 'ms', better: 'lower' }
    if (r.partialMs !== undefined) out[`${p} › shared partial saved → ${r.partialSelected} tests ${STEPS ? 'rerun, every result shown' : 'reloaded'}`] = { value: Math.round(r.partialMs), unit: 'ms', better: 'lower' }
    if (r.partialCpu) {
      const cpu = (n: number): BenchResult => ({ value: Math.round(n * 100) / 100, unit: 'ms', better: 'lower' })
      out[`${p} › shared partial rerun › CPU per test: clnrm process`] = cpu(r.partialCpu.clnrm)
      out[`${p} › shared partial rerun › CPU per test: engine (dockerd, containerd, shims)`] = cpu(r.partialCpu.engine)
      out[`${p} › shared partial rerun › CPU per test: in the containers (shell, steps)`] = cpu(r.partialCpu.containers)
    }
  }
  record(out)
})
