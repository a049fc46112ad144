import { relative, sep } from 'node:path'
import type { TestSpec } from './format/spec.ts'

/**
 * What runs, as Vitest filters: test files by substrings of their path (OR'ed), steps by a name
 * pattern. `clnrm run hello -t login`, and the dev loop's `p` and `t` keys.
 */
export interface TestFilter {
  /** Substrings of the path relative to the project root; empty or absent: every file. */
  files?: readonly string[]
  /** Matched against `<test name> <step name>`; absent: every step. */
  pattern?: RegExp
}

/** The path a filter is matched against: relative to the project root, with `/` separators on every OS. */
export function filterPath(file: string, root: string): string {
  const rel = relative(root, file)
  return (rel.startsWith('..') ? file : rel).split(sep).join('/')
}

/** Whether a file's path (relative to the root) holds any of the filters; true without filters. */
export function matchesFileFilters(file: string, filters: readonly string[] | undefined, root: string): boolean {
  if (!filters?.length) return true
  const path = filterPath(file, root)
  // Written with either separator, a filter matches the same files.
  return filters.some(f => path.includes(f.split('\\').join('/')))
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
