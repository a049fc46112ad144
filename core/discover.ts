import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { glob, isDynamicPattern } from 'tinyglobby'
import { isTestFile } from './format/load.ts'

const TEST_GLOBS = ['**/*.clnrm.toml', '**/*.clnrm.toml.eta']
const IGNORE = ['**/node_modules/**', '**/.git/**']

/** Test files found for some paths, and the paths that matched nothing. */
export interface Discovered {
  /** Absolute, sorted, without duplicates. */
  files: string[]
  unmatched: string[]
}

/**
 * Resolves CLI paths to test files. A path may be a file (taken as is), a directory (walked for
 * `*.clnrm.toml` and `*.clnrm.toml.eta`, skipping node_modules and .git) or a glob.
 */
export async function discoverTestFiles(paths: readonly string[], cwd: string): Promise<Discovered> {
  const files = new Set<string>()
  const unmatched: string[] = []
  for (const path of paths) {
    const found = await discoverOne(path, cwd)
    if (found.length === 0) unmatched.push(path)
    for (const file of found) files.add(file)
  }
  return { files: [...files].sort(), unmatched }
}

/** Test files matching globs relative to `cwd` (a project's `tests`), absolute and sorted. */
export async function globTestFiles(globs: string | readonly string[], cwd: string): Promise<string[]> {
  return (await glob([globs].flat(), { cwd, absolute: true, ignore: IGNORE })).filter(isTestFile).sort()
}

async function discoverOne(path: string, cwd: string): Promise<string[]> {
  const absolute = resolve(cwd, path)
  const info = await stat(absolute).catch(() => undefined)
  if (info?.isFile()) return [absolute]
  if (info?.isDirectory()) {
    return globTestFiles(TEST_GLOBS, absolute)
  }
  if (!isDynamicPattern(path)) return []
  return globTestFiles(path, cwd)
}
