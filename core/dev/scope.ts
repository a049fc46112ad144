import { readFileSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { isAbsolute, relative, resolve } from 'node:path'
import picomatch from 'picomatch'
import type { Diagnostic } from '../format/diagnostics.ts'
import { hasErrors, TestFileError } from '../format/diagnostics.ts'
import { discoverTestFiles, globTestFiles } from '../discover.ts'
import type { DevEvents, SessionEmitter } from '../events.ts'
import { contentHash } from '../hash.ts'
import type { LoadedTestFile, TestLoader } from '../format/load.ts'
import { createTestLoader, isTestFile } from '../format/load.ts'
import type { Project } from '../format/project.ts'
import { loadProject, PROJECT_FILE } from '../format/project.ts'
import type { TestResult } from '../run.ts'
import type { TestSpec } from '../format/spec.ts'
import type { TestFilter } from '../test-filter.ts'
import { matchesFileFilters } from '../test-filter.ts'
import type { ChangeBatch } from './change-batcher.ts'
import type { Selection } from './graph.ts'
import { DependencyGraph } from './graph.ts'

/** What the session knows of one test file. */
export interface TestFileState {
  file: string
  spec?: TestSpec
  /** The TOML of the last load (the render, for templates). */
  toml?: string
  diagnostics: Diagnostic[]
  /** The latest current result. */
  result?: TestResult
  /** The warnings last announced with `test:warnings` (a signature), so unchanged ones are not repeated. */
  warningsShown?: string
}

/** A test file's state plus the runner's bookkeeping: the newest run's token and its abort handle. */
export interface FileEntry extends TestFileState {
  token: number
  controller?: AbortController
}

/** Options of `DevScope`: where the tests are, and who hears about what a change did. */
export interface DevScopeOptions {
  cwd: string
  tests?: readonly string[]
  root?: string
  vars?: Record<string, string>
  renderTimeoutMs?: number
  env?: Readonly<Record<string, string | undefined>>
  resolveAffected?: (path: string) => Selection[]
  emit: SessionEmitter<DevEvents>['emit']
  /** The id of the latest reload (a broken clnrm.toml is reported under it). */
  reloadId: () => number
  /** A test file was deleted: its containers can go. */
  onRemoved?: (file: string) => void
}

/** What one batch of changed paths selects: the tests to run, and the text each changed file had when read. */
export interface ChangeSelection {
  changed: string[]
  selected: Selection[]
  texts: Map<string, string>
  /** The longest delay from a file's modification time to its change event. */
  detectionMs: number
}

/** Reads a file, `undefined` when it is gone (a delete, or the instant of an atomic rename). */
export async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  }
  catch {
    return undefined
  }
}

/** Reads at once: enough to keep the file system busy, few enough not to run out of descriptors. */
const READS_AT_ONCE = 32

/**
 * Reads many files, several at a time, in the order given (undefined for one that cannot be
 * read). One after another, 3000 test files took 0.6 to 0.8 s on a busy machine; 32 at a time,
 * 0.2 to 0.5 s.
 */
export async function readTexts(paths: readonly string[]): Promise<Array<string | undefined>> {
  const texts = new Array<string | undefined>(paths.length)
  let next = 0
  const reader = async (): Promise<void> => {
    for (let i = next++; i < paths.length; i = next++) texts[i] = await readText(paths[i]!)
  }
  await Promise.all(Array.from({ length: Math.min(READS_AT_ONCE, paths.length) }, reader))
  return texts
}

/** `readText`, synchronously: for a small file read on the way to the screen. */
export function readTextNow(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  }
  catch {
    return undefined
  }
}

/**
 * The session's scope: the project, which files are tests, what each test depends on, the last
 * content seen of every watched file, and the file/step filter. It turns changed paths into a
 * selection of tests; running them is the runner's.
 */
export class DevScope {
  readonly graph: DependencyGraph = new DependencyGraph()
  readonly states: Map<string, FileEntry> = new Map()
  /** Content hash of every file last seen, so saves without changes select nothing. */
  readonly hashes: Map<string, string> = new Map()
  /** Test files deleted since they were last seen: nothing about them is shown after `test:removed`. */
  readonly removed: Set<string> = new Set()
  filter: TestFilter = {}
  /**
   * New test files not yet shown with a result. A file's first write often comes in two events
   * (created, then written): the reload of the second supersedes the first's, and must still
   * call the file new.
   */
  readonly #unseen: Set<string> = new Set()
  readonly #options: DevScopeOptions
  #project: Project | undefined
  #loader: TestLoader | undefined
  #inScope: (path: string) => boolean = () => false
  #testRoots: string[] = []

  constructor(options: DevScopeOptions) {
    this.#options = options
  }

  get project(): Project {
    if (!this.#project) throw new Error('the dev session has not loaded its project yet')
    return this.#project
  }

  get loader(): TestLoader {
    if (!this.#loader) throw new Error('the dev session has not loaded its project yet')
    return this.#loader
  }

  get projectFile(): string {
    return resolve(this.project.root, PROJECT_FILE)
  }

  /** Loads (or reloads) clnrm.toml; throws `TestFileError` when it is broken. */
  async open(): Promise<void> {
    const { cwd, root, vars, renderTimeoutMs, env } = this.#options
    this.#project = await loadProject({ cwd, root, vars, renderTimeoutMs })
    // Caches survive a project reload: templates are keyed by content, configs by rendered text.
    this.#loader = createTestLoader({ project: this.#project, env, templateCache: this.#loader?.templateCache, configCache: this.#loader?.configCache })
  }

  /** Finds the session's test files and learns which paths could be tests later. */
  async discover(): Promise<string[]> {
    const { tests, cwd } = this.#options
    if (tests?.length) {
      const absolute = tests.map(t => resolve(cwd, t))
      const matchers = tests.filter(t => picomatch.scan(t).isGlob).map(t => picomatch(resolve(cwd, t)))
      this.#testRoots = absolute.map(p => (picomatch.scan(p).isGlob ? picomatch.scan(p).base : p))
      this.#inScope = path => isTestFile(path) && (absolute.some(p => path === p || path.startsWith(`${p}/`)) || matchers.some(m => m(path)))
      return (await discoverTestFiles(tests, cwd)).files
    }
    const project = this.project
    const matchers = project.tests.map(g => picomatch(g, { dot: false }))
    this.#testRoots = [project.root]
    this.#inScope = (path) => {
      const rel = relative(project.root, path)
      return isTestFile(path) && !rel.startsWith('..') && !isAbsolute(rel) && !rel.split(/[\\/]/).includes('node_modules') && matchers.some(m => m(rel))
    }
    return globTestFiles(project.tests, project.root)
  }

  /** Whether a path could be a test of this session (for watchers that see new files). */
  isTestPath(path: string): boolean {
    return this.#inScope(path)
  }

  /** Every path the session wants watched: test roots, the project file, each test's inputs. */
  watchedPaths(): string[] {
    return [...new Set([...this.#testRoots, ...(this.#project ? [this.projectFile] : []), ...this.graph.watchedPaths()])]
  }

  /** Whether a file passes the file filter (`p` key, positional filters). */
  matchesFilter(file: string): boolean {
    return matchesFileFilters(file, this.filter.files, this.project.root)
  }

  /**
   * Loads one file from the text just read (or takes `loaded`, a load of exactly that text made
   * before), and updates its state and the graph with what the load read.
   */
  load(file: string, text: string, loaded: LoadedTestFile = this.#loadNow(file, text)): LoadedTestFile {
    const state = this.states.get(file) ?? { file, diagnostics: [], token: 0 }
    this.states.set(file, state)
    state.spec = loaded.spec
    state.toml = loaded.toml
    state.diagnostics = loaded.diagnostics
    const spec = loaded.spec
    const fresh = this.graph.set(file, {
      files: loaded.inputs.partials,
      globs: spec?.watch.files ?? this.graph.globsOf(file),
      mounts: spec ? Object.values(spec.services).flatMap(s => s.volumes.map(v => v.hostPath)) : this.graph.mountsOf(file),
      env: loaded.inputs.env.map(e => e.name),
    })
    if (fresh.length) this.#options.emit('watch:add', { paths: fresh })
    return loaded
  }

  #loadNow(file: string, text: string): LoadedTestFile {
    // Caches sized to the project: a pass over every test must not evict what it needs next.
    if (!this.states.has(file)) this.loader.sizeFor(this.states.size + 1)
    return this.loader.loadSource(file, text)
  }

  /** Emits `test:warnings` when a valid file's warnings differ from those last shown. */
  announceWarnings(id: number, state: TestFileState): void {
    const warnings = state.diagnostics.filter(d => d.severity === 'warning')
    const signature = warnings.map(d => `${d.code} ${d.line}:${d.column} ${d.message}`).join('\n')
    if (signature === (state.warningsShown ?? '')) return
    state.warningsShown = signature
    this.#options.emit('test:warnings', { id, file: state.file, diagnostics: warnings })
  }

  /** Remembers a file's current content, so a later event with the same content selects nothing. */
  remember(path: string, text: string): void {
    this.hashes.set(path, contentHash(text))
  }

  /** Watched files whose content differs from what the session last saw (saves made while it was not watching). */
  async missed(): Promise<string[]> {
    const known = [...this.hashes]
    const texts = await readTexts(known.map(([path]) => path))
    return known.filter(([, hash], i) => texts[i] === undefined || contentHash(texts[i]!) !== hash).map(([path]) => path)
  }

  /** The session's test files a rerun selects: all, those failing or invalid, or one file. */
  rerunFiles(which: 'all' | 'failed' | { file: string }): string[] {
    const failed = (s: TestFileState): boolean => (s.result ? s.result.status !== 'pass' : hasErrors(s.diagnostics))
    const files = typeof which === 'object'
      ? (this.states.has(resolve(this.#options.cwd, which.file)) ? [resolve(this.#options.cwd, which.file)] : [])
      : [...this.states.values()].filter(s => which === 'all' || failed(s)).map(s => s.file)
    return files.filter(f => this.matchesFilter(f))
  }

  /**
   * Turns a batch of changed paths into a selection of tests: reads each path that can matter,
   * skips unchanged content, reloads clnrm.toml, forgets deleted tests. `undefined`: nothing to run.
   */
  async select(batch: ChangeBatch): Promise<ChangeSelection | undefined> {
    const { emit, resolveAffected } = this.#options
    const changed: string[] = []
    const texts = new Map<string, string>()
    const selected = new Map<string, string>()
    let detectionMs = 0
    let all = false
    const projectFile = this.projectFile
    for (const [path, wallAt] of batch.paths) {
      // Only read what can matter: watchers report every file under the test roots.
      const affected = [...this.graph.affected(path), ...(resolveAffected?.(path) ?? [])]
      if (path !== projectFile && !this.states.has(path) && !this.#inScope(path) && affected.length === 0) continue
      // The modification time only measures detection: asked for alongside the read, not after it.
      const [text, mtime] = await Promise.all([readText(path), stat(path).then(s => s.mtimeMs, () => wallAt)])
      const hash = text === undefined ? undefined : contentHash(text)
      if (hash !== undefined && this.hashes.get(path) === hash) continue
      if (hash === undefined && !this.hashes.has(path) && !this.states.has(path)) continue
      if (hash === undefined) this.hashes.delete(path)
      else this.hashes.set(path, hash)
      changed.push(path)
      if (text !== undefined) {
        texts.set(path, text)
        detectionMs = Math.max(detectionMs, Math.max(0, wallAt - mtime))
      }
      if (path === projectFile) {
        try {
          await this.open()
          all = true
          emit('project:reloaded', { file: projectFile })
        }
        catch (error) {
          // A broken clnrm.toml is shown like any invalid file; the last good project stays.
          if (!(error instanceof TestFileError)) throw error
          emit('test:invalid', { id: this.#options.reloadId(), file: projectFile, diagnostics: [...error.diagnostics] })
        }
      }
      else if (this.states.has(path) && text === undefined) {
        this.removed.add(path)
        this.states.get(path)?.controller?.abort()
        this.states.delete(path)
        this.#unseen.delete(path)
        this.graph.delete(path)
        emit('test:removed', { file: path })
        this.#options.onRemoved?.(path)
      }
      else if (this.#inScope(path) && text === undefined) {
        // A new file deleted before its first run: a queued run must not use its old text.
        this.removed.add(path)
      }
      else if (this.#inScope(path) && text !== undefined) {
        this.removed.delete(path)
        const state = this.states.get(path)
        if (state?.result) this.#unseen.delete(path)
        else if (!state) this.#unseen.add(path)
        selected.set(path, this.#unseen.has(path) ? 'new test' : 'changed')
      }
      for (const { test, reason } of affected) if (!selected.has(test)) selected.set(test, reason)
    }
    if (all) for (const file of this.states.keys()) if (!selected.has(file)) selected.set(file, `${PROJECT_FILE} changed`)
    if (selected.size === 0) return undefined
    return { changed, selected: [...selected].map(([test, reason]) => ({ test, reason })), texts, detectionMs }
  }
}
