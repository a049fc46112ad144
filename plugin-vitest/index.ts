/// <reference types="vitest/config" />
import { existsSync } from 'node:fs'
import { basename, dirname, join, posix, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { glob } from 'tinyglobby'
import type { DevEnvironment, Plugin } from 'vite'
import { isTestFile, loadProject, TestFileError } from '../core/index.ts'
import { createProjectCaches } from './caches.ts'
import type { LoadedTestFile } from '../core/index.ts'
import { createModuleTracker } from '../plugin-vite/module-graph.ts'
import { generateModule } from './generate.ts'
import { describeProblems, planFile } from './plan.ts'
import type { SetupOptions } from './protocol.ts'
import { OPTIONS_KEY } from './protocol.ts'

export type { FilePlan, PlannedSuite, PlannedTest, SourcePosition } from './generate.ts'
export type { RunServerInfo } from './protocol.ts'

/** Options of the clnrm Vitest plugin. */
export interface ClnrmVitestOptions {
  /**
   * Test files Vitest collects as clnrm tests (globs relative to the Vitest root), added to
   * `test.include`. Without it, the `tests` globs of the project's clnrm.toml, as the CLI finds them.
   * @default clnrm.toml's `tests`, else '**\/*.clnrm.toml{,.eta}'
   */
  include?: string | string[]
  /** Template vars, overriding `clnrm.toml` [vars]. @default {} */
  vars?: Record<string, string>
}

/** The default `include` of the plugin. */
export const DEFAULT_INCLUDE: readonly string[] = ['**/*.clnrm.toml{,.eta}']
// Partials (`_*.eta`) are inputs of tests, not tests.
const PARTIALS = '**/_*.clnrm.toml{,.eta}'

// The runtime and global setup: built next to this file in dist/, the TypeScript sources when run from a clone.
const here = dirname(fileURLToPath(import.meta.url))
const beside = (name: string): string => [join(here, `${name}.mjs`), join(here, `${name}.ts`)].find(existsSync) ?? join(here, `${name}.ts`)
const runtimeFile = beside('runtime')
const setupFile = beside('global-setup')

/**
 * Makes every `*.clnrm.toml` and `*.clnrm.toml.eta` file a Vitest test file: each clnrm test a
 * `describe`, each step a `test` located at its `[[steps]]` line, run in warm containers the
 * main process pools for every worker. Editing a test, a partial, a `[watch] files` input or
 * anything its `[watch] modules` import reruns it in watch mode.
 */
export function clnrm(options: ClnrmVitestOptions = {}): Plugin {
  const vars = options.vars ?? {}
  const caches = createProjectCaches()
  let root = process.cwd()

  return {
    name: 'clnrm:vitest',
    // Before any other plugin sees TOML as something else.
    enforce: 'pre',

    async config(config) {
      const { configDefaults } = await import('vitest/config')
      const test = config.test ?? {}
      const include = options.include === undefined ? await projectGlobs(resolve(config.root ?? process.cwd()), vars) : [options.include].flat()
      const provided: SetupOptions = { vars }
      // Vite concatenates arrays when merging: add to the user's lists, or to Vitest's defaults
      // when the user has none (setting one would replace the defaults).
      return {
        test: {
          include: test.include ? include : [...configDefaults.include, ...include],
          exclude: test.exclude ? [PARTIALS] : [...configDefaults.exclude, PARTIALS],
          globalSetup: [setupFile],
          provide: { [OPTIONS_KEY]: provided },
          // Steps' locations are their TOML lines: reporters, the UI and editors show them.
          ...(test.includeTaskLocation === undefined && { includeTaskLocation: true }),
        },
      }
    },

    configResolved(config) {
      root = config.root
    },

    async transform(code, id) {
      // Only the test module itself: `?raw`, `?url` and other queries keep Vite's meaning.
      if (!isTestFile(id)) return
      const file = id
      let loaded: LoadedTestFile
      let projectRoot = root
      try {
        const project = await loadProject({ cwd: root, vars })
        projectRoot = project.root
        // `clnrm.toml` (vars, default image) changes what every test means.
        if (project.file) this.addWatchFile(project.file)
        loaded = caches.loaderFor(project, file).loadSource(file, code)
      }
      catch (error) {
        if (!(error instanceof TestFileError)) throw error
        // A broken clnrm.toml: every test file reports it, located in clnrm.toml.
        const at = { line: 1, column: 1 }
        const plan = { file, suites: [{ name: basename(file), at, tests: [] }], invalid: { message: describeProblems(error.diagnostics, projectRoot), at } }
        return generateModule(plan, runtimeFile, code)
      }
      // A save of a partial or of a `[watch] files` input reruns this file: Vite's module graph
      // makes them its imports.
      for (const partial of loaded.inputs.partials) this.addWatchFile(partial)
      const watched = loaded.spec?.watch.files ?? []
      if (watched.length) for (const path of await glob(watched, { absolute: true, dot: true, ignore: ['**/node_modules/**', '**/.git/**'] })) this.addWatchFile(path)
      // `[watch] modules`: everything those entry modules import, as Vite's module graph sees it.
      const modules = loaded.spec?.watch.modules ?? []
      const environment = this.environment
      if (modules.length && 'transformRequest' in environment) {
        for (const path of await createModuleTracker(() => environment as DevEnvironment).closure(modules)) this.addWatchFile(path)
      }
      return generateModule(await planFile(loaded, projectRoot), runtimeFile, code)
    },
  }
}

/**
 * The `tests` globs of clnrm.toml, relative to the Vitest root, so Vitest collects the files
 * `clnrm run` would. The plugin's default without a project file, with one that does not load
 * (its tests then report why), or with one above the Vitest root (whose globs would reach
 * outside it: Vitest then collects the clnrm files below its root, as it does its own).
 */
async function projectGlobs(viteRoot: string, vars: Record<string, string>): Promise<string[]> {
  const project = await loadProject({ cwd: viteRoot, vars }).catch(() => undefined)
  const prefix = project?.file && relative(viteRoot, project.root).split(sep).join('/')
  if (!project?.file || prefix === undefined || prefix.startsWith('..')) return [...DEFAULT_INCLUDE]
  return project.tests.map(glob => (prefix ? posix.join(prefix, glob) : glob))
}
