import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { filterPath } from './filters.ts'

/**
 * Where `clnrm run` records the test files that failed, relative to the project root. A folder of
 * the project's own (as pytest's `.pytest_cache`), not `node_modules/.cache`: clnrm projects need
 * not be Node projects. It holds a `.gitignore` of `*`, so it is never committed.
 */
export const LAST_FAILED_FILE = '.clnrm/last-failed.json'

/** One test file's outcome in this run, for the record. */
export interface FileOutcome {
  file: string
  /** Failed, errored or invalid. */
  failed: boolean
  /** Passed in full: every step ran (no `-t` filter left one out). Only this clears an earlier failure. */
  passed: boolean
}

/** The recorded failed test files (absolute), or `undefined` when there is no record. */
export async function readLastFailed(root: string): Promise<string[] | undefined> {
  const text = await readFile(join(root, LAST_FAILED_FILE), 'utf8').catch(() => undefined)
  if (text === undefined) return undefined
  try {
    const data = JSON.parse(text) as { failed?: unknown }
    return Array.isArray(data.failed) ? data.failed.filter((f): f is string => typeof f === 'string').map(f => resolve(root, f)) : undefined
  }
  catch {
    return undefined
  }
}

/**
 * Merges a run into the record, as pytest's `--lf` does: files that failed are added, files that
 * passed in full are dropped, files this run did not touch keep their state. Best effort: a
 * read-only checkout loses the record, never the run.
 */
export async function recordLastFailed(root: string, outcomes: readonly FileOutcome[]): Promise<void> {
  const failed = new Set(await readLastFailed(root) ?? [])
  // A [matrix] file has several outcomes: one failure keeps it, only all passing in full clears it.
  const byFile = new Map<string, { failed: boolean; passed: boolean }>()
  for (const o of outcomes) {
    const seen = byFile.get(o.file)
    byFile.set(o.file, seen ? { failed: seen.failed || o.failed, passed: seen.passed && o.passed } : { failed: o.failed, passed: o.passed })
  }
  for (const [file, o] of byFile) {
    if (o.failed) failed.add(file)
    else if (o.passed) failed.delete(file)
  }
  try {
    const dir = join(root, '.clnrm')
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, '.gitignore'), '# written by clnrm: run state, never committed\n*\n')
    await writeFile(join(root, LAST_FAILED_FILE), `${JSON.stringify({ version: 1, failed: [...failed].map(f => filterPath(f, root)).sort() }, null, 2)}\n`)
  }
  catch {}
}
