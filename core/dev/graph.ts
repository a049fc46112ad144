import { sep } from 'node:path'
import picomatch from 'picomatch'

/** What one test depends on, besides its own file. */
export interface TestInputs {
  /** Files whose content feeds the test: partials. */
  files: readonly string[]
  /** Absolute globs (`[watch] files`). */
  globs: readonly string[]
  /** Files or directories mounted into containers (volume host paths). */
  mounts: readonly string[]
  /** Environment variables templates read. */
  env: readonly string[]
}

/** Why a test was selected for a change. */
export interface Selection {
  test: string
  reason: string
}

interface GlobEntry {
  glob: string
  match: (path: string) => boolean
  base: string
}

/**
 * The reverse dependency graph of the dev loop: from every input (partial, watched glob, mounted
 * path, env var) to the tests that use it. Tests replace their inputs after each render, so the
 * graph follows `include()`s as they change.
 */
export class DependencyGraph {
  readonly #inputs = new Map<string, { files: Set<string>; globs: GlobEntry[]; mounts: string[]; env: Set<string> }>()
  readonly #byFile = new Map<string, Set<string>>()
  // Flat lists for the per-change scan, rebuilt only after the graph changes.
  #index: { globs: Array<GlobEntry & { test: string }>; mounts: Array<{ test: string; path: string; prefix: string }> } | undefined

  /** Sets a test's inputs; returns the paths that were not known before (to start watching). */
  set(test: string, inputs: TestInputs): string[] {
    // Most reloads change a value, not an input: leave the graph (and its scan index) alone.
    const previous = this.#inputs.get(test)
    if (previous && sameInputs(previous, inputs)) return []
    this.delete(test)
    const fresh: string[] = []
    const files = new Set(inputs.files)
    for (const file of files) {
      let users = this.#byFile.get(file)
      if (!users) {
        users = new Set()
        this.#byFile.set(file, users)
        fresh.push(file)
      }
      users.add(test)
    }
    const globs = inputs.globs.map(glob => ({ glob, match: picomatch(glob, { dot: true }), base: picomatch.scan(glob).base }))
    fresh.push(...globs.map(g => g.base), ...inputs.mounts)
    this.#inputs.set(test, { files, globs, mounts: [...inputs.mounts], env: new Set(inputs.env) })
    this.#index = undefined
    return fresh
  }

  /** Forgets a test (its file was deleted). */
  delete(test: string): void {
    const previous = this.#inputs.get(test)
    if (!previous) return
    for (const file of previous.files) {
      const users = this.#byFile.get(file)
      users?.delete(test)
      if (users?.size === 0) this.#byFile.delete(file)
    }
    this.#inputs.delete(test)
    this.#index = undefined
  }

  /** The tests a changed path affects, with the reason for each. The test files themselves are the caller's. */
  affected(path: string): Selection[] {
    const selected: Selection[] = []
    for (const test of this.#byFile.get(path) ?? []) selected.push({ test, reason: `includes ${path}` })
    const index = this.#index ??= {
      globs: [...this.#inputs].flatMap(([test, inputs]) => inputs.globs.map(g => ({ ...g, test }))),
      mounts: [...this.#inputs].flatMap(([test, inputs]) => inputs.mounts.map(m => ({ test, path: m, prefix: m.endsWith(sep) ? m : m + sep }))),
    }
    const seen = new Set<string>()
    // The base-directory prefix check is a string compare; the matcher runs only below it.
    for (const g of index.globs) {
      if (!seen.has(g.test) && path.startsWith(g.base) && g.match(path)) {
        seen.add(g.test)
        selected.push({ test: g.test, reason: `watches ${g.glob}` })
      }
    }
    for (const m of index.mounts) {
      if (!seen.has(m.test) && (path === m.path || path.startsWith(m.prefix))) {
        seen.add(m.test)
        selected.push({ test: m.test, reason: `mounts ${m.path}` })
      }
    }
    return selected
  }

  /** A test's current globs (kept when a broken render cannot say). */
  globsOf(test: string): string[] {
    return this.#inputs.get(test)?.globs.map(g => g.glob) ?? []
  }

  /** A test's current mounts (kept when a broken render cannot say). */
  mountsOf(test: string): string[] {
    return [...(this.#inputs.get(test)?.mounts ?? [])]
  }

  /** Every path worth watching: partials, glob bases and mounts. */
  watchedPaths(): string[] {
    const paths = new Set<string>(this.#byFile.keys())
    for (const inputs of this.#inputs.values()) {
      for (const glob of inputs.globs) paths.add(glob.base)
      for (const mount of inputs.mounts) paths.add(mount)
    }
    return [...paths]
  }

  get size(): number {
    return this.#inputs.size
  }
}

function sameInputs(previous: { files: Set<string>; globs: GlobEntry[]; mounts: string[]; env: Set<string> }, next: TestInputs): boolean {
  const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i])
  return same([...previous.files], [...new Set(next.files)])
    && same(previous.globs.map(g => g.glob), next.globs)
    && same(previous.mounts, next.mounts)
    && same([...previous.env], [...new Set(next.env)])
}
