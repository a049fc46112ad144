import { execFile } from 'node:child_process'
import { realpathSync } from 'node:fs'
import { relative, resolve } from 'node:path'
import { promisify } from 'node:util'
import { DependencyGraph, followImports, PROJECT_FILE } from '../core/index.ts'
import type { LoadedTestFile } from '../core/index.ts'
import { UsageError } from './errors.ts'

const run = promisify(execFile)

async function git(cwd: string, args: string[]): Promise<string> {
  try {
    return (await run('git', args, { cwd, maxBuffer: 64 * 1024 * 1024 })).stdout
  }
  catch (error) {
    const e = error as { code?: string; stderr?: string; message: string }
    if (e.code === 'ENOENT') throw new UsageError('--changed needs git, and git is not on the PATH', 'Install git, or name the test files to run.')
    throw new UsageError(`--changed: git ${args.join(' ')} failed: ${(e.stderr || e.message).trim().split('\n')[0]}`, `Run it inside a git repository, with a ref git knows (e.g. --changed=main).`)
  }
}

/**
 * The files changed against `ref` (HEAD by default): what `git diff --name-only <ref>` lists
 * (staged and unstaged changes) and untracked files that are not ignored. Absolute paths.
 */
export async function changedFiles(root: string, ref = 'HEAD'): Promise<string[]> {
  const top = (await git(root, ['rev-parse', '--show-toplevel'])).trim()
  const [diff, untracked] = await Promise.all([
    git(top, ['diff', '--name-only', ref, '--']),
    git(top, ['ls-files', '--others', '--exclude-standard']),
  ])
  // git names real paths; tests are known by the root as given (a symlinked checkout, /tmp on macOS).
  const real = realpathSync(root)
  return [...new Set([...diff.split('\n'), ...untracked.split('\n')].filter(Boolean).map(f => resolve(root, relative(real, resolve(top, f)))))]
}

/**
 * The test files a change touches: changed test files, and tests whose inputs changed (partials
 * they include, `[watch] files`, mounted host paths), read from the same dependency graph as the
 * dev loop. A changed clnrm.toml touches every test. Each with the reason. `[watch] modules` are
 * followed by `affectedByModules`.
 */
export function affectedTests(loaded: readonly LoadedTestFile[], changed: readonly string[], root: string): Map<string, string> {
  const graph = new DependencyGraph()
  for (const l of loaded) {
    graph.set(l.file, {
      files: l.inputs.partials,
      globs: l.spec?.watch.files ?? [],
      mounts: l.spec ? Object.values(l.spec.services).flatMap(s => s.volumes.map(v => v.hostPath)) : [],
      env: [],
    })
  }
  const tests = new Set(loaded.map(l => l.file))
  const selected = new Map<string, string>()
  for (const path of changed) {
    if (path === resolve(root, PROJECT_FILE)) for (const test of tests) if (!selected.has(test)) selected.set(test, `${PROJECT_FILE} changed`)
    if (tests.has(path) && !selected.has(path)) selected.set(path, 'changed')
    for (const { test, reason } of graph.affected(path)) if (!selected.has(test)) selected.set(test, reason)
  }
  return selected
}

/**
 * Adds the tests whose `[watch] modules` import a changed file, directly or not (their static
 * imports within the root, as `clnrm dev` follows them). Only tests not already selected are read.
 */
export async function affectedByModules(loaded: readonly LoadedTestFile[], changed: readonly string[], root: string, selected: Map<string, string>): Promise<void> {
  const paths = new Set(changed)
  for (const l of loaded) {
    const modules = l.spec?.watch.modules ?? []
    if (!modules.length || selected.has(l.file)) continue
    const { files } = await followImports(modules, root)
    const hit = [...files].find(f => paths.has(f))
    if (hit) selected.set(l.file, `imports ${hit}`)
  }
}
