import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { node, startDev } from '../test/runtimes/contract.ts'
import { gatedMedian, percentile, record } from './results.ts'

// Save → result of `clnrm dev` at its default settings, for each way editors write a file. The
// clock starts at the write that completes the save (the last burst, the rename) and stops when
// the passing result line reaches this process. Everything shown between saves is counted: an
// error (a half-written file's) or a result of other content than the save's is a spurious one.

// CLNRM_BENCH_SAVES: fewer saves for a quick try of the measurement itself.
const SAVES = Number(process.env.CLNRM_BENCH_SAVES ?? 30)
const IMAGE = 'clnrm-examples/busybox:1'
/** Target of issue #12 for the p50 of every pattern. */
const TARGET_MS = 10
const pause = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))
const sleepSync = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
const content = (n: number): string =>
  `[meta]\nname = "save ${n}"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "echo"\nrun = "echo v${n}"\nexpected_output_regex = "(?m)^v${n}$"\n`

/**
 * Each pattern writes save `n` (two valid saves also write `n + 1`) and returns the time of the
 * write that completes the save. Writes are synchronous so the gap between bursts is the editor's
 * few milliseconds, not this process's event loop.
 */
const patterns: Record<string, { write: (file: string, n: number) => number; saves: number }> = {
  'one write': { saves: 1, write: (file, n) => {
    const at = performance.now()
    writeFileSync(file, content(n))
    return at
  } },
  'atomic rename': { saves: 1, write: (file, n) => {
    writeFileSync(`${file}.tmp`, content(n))
    const at = performance.now()
    renameSync(`${file}.tmp`, file)
    return at
  } },
  'two bursts 3 ms apart (truncate, write)': { saves: 1, write: (file, n) => {
    writeFileSync(file, '')
    sleepSync(3)
    const at = performance.now()
    writeFileSync(file, content(n))
    return at
  } },
  'two bursts 3 ms apart (half, rest)': { saves: 1, write: (file, n) => {
    const text = content(n)
    const cut = text.indexOf('image = "') + 14
    writeFileSync(file, text.slice(0, cut))
    sleepSync(3)
    const at = performance.now()
    appendFileSync(file, text.slice(cut))
    return at
  } },
  'two valid saves 3 ms apart': { saves: 2, write: (file, n) => {
    writeFileSync(file, content(n))
    sleepSync(3)
    const at = performance.now()
    writeFileSync(file, content(n + 1))
    return at
  } },
}

it(`save → result of clnrm dev at default settings, ${SAVES} saves per editor write pattern`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clnrm-save-patterns-'))
  const file = join(dir, 'tests/check.clnrm.toml')
  mkdirSync(join(dir, 'tests'))
  writeFileSync(file, content(0))
  const dev = startDev(node, [], dir)
  const latencies: Record<string, number[]> = {}
  const spurious: Record<string, { errors: number; intermediate: number }> = {}
  try {
    await dev.waitFor(line => line.type === 'ready')
    let n = 0
    // Patterns take turns, so each sees the same machine conditions.
    for (let i = 0; i < SAVES; i++) {
      for (const [name, pattern] of Object.entries(patterns)) {
        await pause(120)
        const mark = dev.lines().length
        const first = n + 1
        const at = pattern.write(file, first)
        n += pattern.saves
        const last = n
        await dev.waitFor(line => line.type === 'test' && line.name === `save ${last}` && line.status === 'pass', 30_000)
        ;(latencies[name] ??= []).push(performance.now() - at)
        // Anything held back or stale would show within the quiet window; count it on the next turn's mark.
        await pause(60)
        const shown = dev.lines().slice(mark)
        const counts = (spurious[name] ??= { errors: 0, intermediate: 0 })
        counts.errors += shown.filter(l => l.type === 'error' || l.type === 'session-error').length
        // The first of two valid saves may show (its run can end before the second lands); nothing else may.
        counts.intermediate += shown.filter(l => l.type === 'test' && l.name !== `save ${last}` && !(pattern.saves === 2 && l.name === `save ${first}`)).length
      }
    }
  }
  finally {
    dev.send('q\n')
    await dev.exited
    rmSync(dir, { recursive: true, force: true })
  }

  const s = 'save → result, clnrm dev default settings'
  const results: Parameters<typeof record>[0] = {}
  for (const [name, samples] of Object.entries(latencies)) {
    results[`${s} › ${name} › p50`] = gatedMedian(samples, 'ms', 1)
    results[`${s} › ${name} › p95`] = { value: percentile(samples, 95), unit: 'ms', better: 'lower' }
    results[`${s} › ${name} › spurious errors + intermediate results`] = { value: spurious[name]!.errors + spurious[name]!.intermediate, unit: 'count', better: 'lower' }
  }
  record(results)
  console.log(`\n  target: p50 ≤ ${TARGET_MS} ms for every pattern, zero spurious errors and intermediate results`)
  for (const [name, samples] of Object.entries(latencies)) {
    const p50 = percentile(samples, 50)
    console.log(`    ${name.padEnd(42)} p50 ${String(p50).padStart(6)} ms  p95 ${String(percentile(samples, 95)).padStart(6)} ms  errors ${spurious[name]!.errors}  intermediate ${spurious[name]!.intermediate}  ${p50 <= TARGET_MS ? 'ok' : 'OVER TARGET'}`)
  }
  // Spurious output is a bug, not a number: the measurement fails on it.
  for (const [name, counts] of Object.entries(spurious)) expect({ name, ...counts }).toEqual({ name, errors: 0, intermediate: 0 })
})
