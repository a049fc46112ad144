import { existsSync } from 'node:fs'
import { relative, resolve, sep } from 'node:path'
import picomatch from 'picomatch'
import type { TestSpec } from '../core/index.ts'
import { UsageError } from './errors.ts'

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

/** The path a filter is matched against: relative to the project root, with `/` separators on every OS. */
export function filterPath(file: string, root: string): string {
  const rel = relative(root, file)
  return (rel.startsWith('..') ? file : rel).split(sep).join('/')
}

/** Files whose path (relative to the root) holds any of the filters; every file without filters. */
export function matchFileFilters(files: readonly string[], filters: readonly string[], root: string): string[] {
  if (!filters.length) return [...files]
  // Written with either separator, a filter matches the same files.
  const wanted = filters.map(f => f.split('\\').join('/'))
  return files.filter(file => wanted.some(f => filterPath(file, root).includes(f)))
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

/**
 * Which steps of a test a name pattern selects. As in Vitest, where a test's full name holds its
 * describe blocks' names, a step's full name is `<test name> <step name>`: a pattern matching the
 * test's name selects every step. `undefined` selects every step; an empty list none.
 */
export function selectSteps(spec: Pick<TestSpec, 'name' | 'steps'>, pattern: RegExp | undefined): number[] {
  const all = spec.steps.map((_, i) => i)
  if (!pattern) return all
  return all.filter(i => pattern.test(`${spec.name} ${spec.steps[i]!.name}`))
}
