import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import picomatch from 'picomatch'
import { matchesFileFilters } from '../core/index.ts'
import { UsageError } from './errors.ts'

export { filterPath, selectSteps } from '../core/index.ts'

/** The positionals of `clnrm run`, told apart as Vitest does: paths (and globs) to run, and substrings that filter them. */
export interface Positionals {
  paths: string[]
  filters: string[]
}

/**
 * A positional that names an existing file or directory, or is a glob, is a path; any other is a
 * filter on test file paths (`clnrm run hello` runs every test file whose path holds "hello").
 */
export function splitPositionals(positionals: readonly string[], cwd: string): Positionals {
  const paths: string[] = []
  const filters: string[] = []
  for (const arg of positionals) {
    if (existsSync(resolve(cwd, arg)) || picomatch.scan(arg).isGlob) paths.push(arg)
    else filters.push(arg)
  }
  return { paths, filters }
}

/** Files whose path (relative to the root) holds any of the filters; every file without filters. */
export function matchFileFilters(files: readonly string[], filters: readonly string[], root: string): string[] {
  return files.filter(file => matchesFileFilters(file, filters, root))
}

/** `-t <pattern>`: a regular expression, as Vitest reads `--testNamePattern`; a malformed one is a usage error. */
export function compileNamePattern(pattern: string): RegExp {
  try {
    return new RegExp(pattern)
  }
  catch (error) {
    throw new UsageError(`-t ${JSON.stringify(pattern)} is not a valid regular expression: ${(error as Error).message.replace(/^Invalid regular expression: /, '')}`, 'Escape special characters (\\( \\[ \\.), or pass a plain word.')
  }
}
