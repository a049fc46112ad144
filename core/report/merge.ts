import { isAbsolute, resolve } from 'node:path'
import type { TestResult } from '../run.ts'
import type { PullRecord } from '../engine/images.ts'
import type { InvalidFile, RunReport, ShardInfo, SkippedTest } from './json.ts'
import { summarize } from './json.ts'

/** The JSON report format `clnrm run --reporter json` writes, and the only one `mergeReports` reads. */
export const JSON_REPORT_VERSION = 1

/** One JSON report as read from disk: where it came from, and what it holds. */
export interface ReportInput {
  /** The file it was read from, for messages. */
  file: string
  report: RunReport
}

/** Thrown when a report cannot be read as a clnrm JSON report: names the file and what is wrong. */
export class ReportReadError extends Error {
  override name = 'ReportReadError'
  readonly file: string
  readonly hint: string
  constructor(file: string, message: string, hint = 'Give the JSON files `clnrm run --reporter json --output json=<file>` wrote.') {
    super(message)
    this.file = file
    this.hint = hint
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * Reads one JSON report's text. Paths in the report are relative to the root it was written under;
 * they are resolved against `base` (the merging machine's project root), since in CI every shard
 * checks the repository out at its own path. Throws `ReportReadError` on anything else.
 */
export function parseJsonReport(file: string, text: string, base: string): ReportInput {
  let data: unknown
  try {
    data = JSON.parse(text)
  }
  catch (error) {
    throw new ReportReadError(file, `not JSON: ${(error as Error).message}`)
  }
  if (!isObject(data)) throw new ReportReadError(file, 'not a clnrm JSON report (not an object)')
  if (data.version !== JSON_REPORT_VERSION) {
    throw new ReportReadError(file, `report format version ${JSON.stringify(data.version)}, this clnrm reads version ${JSON_REPORT_VERSION}`, 'Merge reports written by the same clnrm version that merges them.')
  }
  const summary = data.summary
  if (!isObject(summary) || !Array.isArray(data.tests)) throw new ReportReadError(file, 'not a clnrm JSON report (no summary or tests)')
  const tests = data.tests as unknown[]
  tests.forEach((test, i) => {
    if (!isObject(test) || typeof test.file !== 'string' || typeof test.name !== 'string' || !Array.isArray(test.steps) || typeof test.durationMs !== 'number' || !['pass', 'fail', 'error'].includes(test.status as string)) {
      throw new ReportReadError(file, `tests[${i}] is not a test result (file, name, status, durationMs, steps)`)
    }
  })
  const list = <T>(key: string): T[] => {
    const value = data[key]
    if (value === undefined) return []
    if (!Array.isArray(value)) throw new ReportReadError(file, `"${key}" is not a list`)
    return value as T[]
  }
  const path = (f: string): string => (isAbsolute(f) ? f : resolve(base, f))
  let shard: ShardInfo | undefined
  if (data.shard !== undefined) {
    const s = data.shard
    if (!isObject(s) || !Number.isInteger(s.index) || !Number.isInteger(s.total) || (s.index as number) < 1 || (s.index as number) > (s.total as number)) {
      throw new ReportReadError(file, `"shard" is not {index, total} with 1 ≤ index ≤ total: ${JSON.stringify(s)}`)
    }
    shard = { index: s.index as number, total: s.total as number }
  }
  const report: ReportInput['report'] = {
    summary: { total: 0, passed: 0, failed: 0, errors: 0, skipped: 0, invalid: 0, durationMs: Number(summary.durationMs) || 0 },
    tests: (tests as TestResult[]).map(t => ({ ...t, file: path(t.file) })),
    invalid: list<InvalidFile>('invalid').map(i => ({ ...i, file: path(i.file), diagnostics: (i.diagnostics ?? []).map(d => ({ ...d, file: path(d.file) })) })),
    skipped: list<SkippedTest>('skipped').map(s => ({ ...s, file: path(s.file) })),
    ...(shard && { shard }),
    ...(Array.isArray(data.pulls) && { pulls: data.pulls as PullRecord[] }),
  }
  return { file, report }
}

/** The merged report, and what the merge noticed. */
export interface MergedReport {
  report: RunReport
  /** Every input's shard and wall time, in input order. */
  shards: Array<{ file: string; shard?: ShardInfo; durationMs: number }>
  /** The longest shard's wall time: how long the sharded run took. */
  wallMs: number
  /** Every shard's wall time added up: what the run cost in machine time. */
  totalMs: number
  /** Overlapping test files, missing or repeated shards, mixed shard counts. */
  warnings: string[]
}

/**
 * Merges the JSON reports of a sharded run into one: tests, invalid files and skipped tests are
 * concatenated, counts recomputed from them, and the duration is the longest shard's (the wall
 * time of the whole run); `totalMs` is their sum. Warns when two reports hold the same test file
 * (a file counted twice) and, when the reports carry shard info, when shards are missing or repeated.
 * `show` turns a path into how warnings name it.
 */
export function mergeReports(inputs: readonly ReportInput[], show: (file: string) => string = file => file): MergedReport {
  const warnings: string[] = []
  const tests: TestResult[] = []
  const invalid: InvalidFile[] = []
  const skipped: SkippedTest[] = []
  const pulls: PullRecord[] = []
  // A test file's owner: the first report that holds it (tests, invalid or skipped).
  const owner = new Map<string, string>()
  const overlaps = new Map<string, Set<string>>()
  for (const { file, report } of inputs) {
    const files = new Set([...report.tests, ...report.invalid, ...report.skipped].map(t => t.file))
    for (const f of files) {
      const first = owner.get(f)
      if (first === undefined) owner.set(f, file)
      else overlaps.set(f, (overlaps.get(f) ?? new Set([first])).add(file))
    }
    tests.push(...report.tests)
    invalid.push(...report.invalid)
    skipped.push(...report.skipped)
    pulls.push(...report.pulls ?? [])
  }
  for (const [f, reports] of overlaps) warnings.push(`test file ${show(f)} is in ${reports.size} reports (${[...reports].map(show).join(', ')}): its results are counted once per report`)

  const sharded = inputs.filter(i => i.report.shard)
  if (sharded.length) {
    const totals = new Set(sharded.map(i => i.report.shard!.total))
    if (totals.size > 1) warnings.push(`the reports come from different shard counts (${[...totals].sort((a, b) => a - b).map(t => `/${t}`).join(', ')}): are they from one run?`)
    const total = Math.max(...totals)
    const seen = new Map<number, string[]>()
    for (const i of sharded) seen.set(i.report.shard!.index, [...(seen.get(i.report.shard!.index) ?? []), i.file])
    const missing = Array.from({ length: total }, (_, k) => k + 1).filter(k => !seen.has(k))
    if (missing.length) warnings.push(`missing shard${missing.length === 1 ? '' : 's'} ${missing.map(k => `${k}/${total}`).join(', ')}: the merged report does not hold every test`)
    for (const [index, files] of seen) if (files.length > 1) warnings.push(`shard ${index}/${total} is in ${files.length} reports (${files.map(show).join(', ')})`)
    const unsharded = inputs.filter(i => !i.report.shard)
    if (unsharded.length) warnings.push(`${unsharded.map(i => show(i.file)).join(', ')} ${unsharded.length === 1 ? 'is' : 'are'} not from a sharded run (no --shard)`)
  }

  const durations = inputs.map(i => i.report.summary.durationMs)
  const wallMs = durations.length ? Math.max(...durations) : 0
  const totalMs = durations.reduce((a, b) => a + b, 0)
  const summary = summarize(tests, { invalid: invalid.length, skipped: skipped.length }, wallMs)
  const shards = inputs.map(i => ({ file: i.file, ...(i.report.shard && { shard: i.report.shard }), durationMs: i.report.summary.durationMs }))
  return {
    report: { summary, tests, invalid, skipped, ...(pulls.length ? { pulls } : {}), merged: { reports: shards, wallMs, totalMs } },
    shards,
    wallMs,
    totalMs,
    warnings,
  }
}
