import { relative } from 'node:path'
import { followImports } from '../core/index.ts'
import type { ModuleClosure, Selection, TestSpec } from '../core/index.ts'
import type { CommandContext } from './context.ts'
import { displayPath, printable } from './output.ts'

/** `[watch] modules` in `clnrm dev` without Vite: what each test's entry modules import, and which tests a saved file reruns. */
export interface ModuleWatch {
  /** Recomputes a test's closure from its spec (after each of its runs: an edit may add imports). */
  refresh: (file: string, spec: TestSpec | undefined) => Promise<void>
  /** The tests a changed path reruns because one of their modules imports it. */
  resolveAffected: (path: string) => Selection[]
  /** Every module file of every test, for the watcher. */
  files: () => string[]
  /** Resolves once every refresh started so far is done. */
  settled: () => Promise<void>
}

/**
 * Follows each test's `[watch] modules` with es-module-lexer, as the Vite plugin follows Vite's
 * module graph. What it cannot follow (packages, dynamic imports, files it cannot lex) is said
 * once per test and per change of that list, never ignored silently.
 */
export function createModuleWatch(ctx: CommandContext, root: string, onNewFiles: (paths: string[]) => void): ModuleWatch {
  const closures = new Map<string, Set<string>>()
  const noted = new Map<string, string>()
  const watched = new Set<string>()
  const pending = new Set<Promise<void>>()

  const note = (file: string, closure: ModuleClosure): void => {
    const parts: string[] = []
    if (closure.bare.size) parts.push(`packages (${[...closure.bare].slice(0, 5).join(', ')}${closure.bare.size > 5 ? ', …' : ''})`)
    if (closure.dynamic.length) parts.push(`dynamic import() at ${closure.dynamic.slice(0, 3).join(', ')}${closure.dynamic.length > 3 ? ', …' : ''}`)
    if (closure.unreadable.length) parts.push(`files the lexer could not read: ${closure.unreadable.slice(0, 3).join('; ')}`)
    if (closure.unresolved.length) parts.push(`imports that name no file: ${closure.unresolved.slice(0, 3).join(', ')}`)
    const text = parts.join('; ')
    if ((noted.get(file) ?? '') === text) return
    noted.set(file, text)
    if (text) ctx.stderr(`${ctx.c.yellow('note:')} [watch] modules of ${displayPath(ctx, file)}: not followed: ${printable(text)}. A change there does not rerun the test (the Vite plugin, clnrm/vite, follows what Vite serves).\n`)
  }

  const refresh = async (file: string, spec: TestSpec | undefined): Promise<void> => {
    const modules = spec?.watch.modules ?? []
    if (!modules.length) {
      closures.delete(file)
      return
    }
    const closure = await followImports(modules, root)
    closures.set(file, closure.files)
    note(file, closure)
    const fresh = [...closure.files].filter(path => !watched.has(path))
    for (const path of fresh) watched.add(path)
    if (fresh.length) onNewFiles(fresh)
  }

  return {
    refresh(file, spec) {
      const job = refresh(file, spec).catch(error => ctx.stderr(`${ctx.c.yellow('note:')} [watch] modules of ${displayPath(ctx, file)}: ${printable(String(error))}\n`))
      pending.add(job)
      void job.finally(() => pending.delete(job))
      return job
    },
    resolveAffected(path) {
      const selected: Selection[] = []
      for (const [test, files] of closures) if (files.has(path)) selected.push({ test, reason: `imports ${relative(root, path)}` })
      return selected
    },
    files: () => [...watched],
    settled: async () => void await Promise.all([...pending]),
  }
}
