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

  /** Sets a test's inputs; returns the paths that were not known before (to start watching). */
  set(test: string, inputs: TestInputs): string[] {
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
  }

  /** The tests a changed path affects, with the reason for each. The test files themselves are the caller's. */
  affected(path: string): Selection[] {
    const selected: Selection[] = []
    for (const test of this.#byFile.get(path) ?? []) selected.push({ test, reason: `includes ${path}` })
    for (const [test, inputs] of this.#inputs) {
      const glob = inputs.globs.find(g => g.match(path))
      if (glob) {
        selected.push({ test, reason: `watches ${glob.glob}` })
        continue
      }
      const mount = inputs.mounts.find(m => path === m || path.startsWith(m.endsWith(sep) ? m : m + sep))
      if (mount) selected.push({ test, reason: `mounts ${mount}` })
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

  /** Tests that read an environment variable. */
  readersOf(name: string): string[] {
    return [...this.#inputs].filter(([, inputs]) => inputs.env.has(name)).map(([test]) => test)
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
