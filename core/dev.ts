import { readFile, stat } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { isAbsolute, relative, resolve } from 'node:path'
import picomatch from 'picomatch'
import type { Diagnostic } from './diagnostics.ts'
import { hasErrors, TestFileError } from './diagnostics.ts'
import type { ChangeBatch } from './batch.ts'
import { createChangeBatcher } from './batch.ts'
import { discoverTestFiles, globTestFiles } from './discover.ts'
import type { DevEvents, SessionEmitter } from './events.ts'
import { createEmitter } from './events.ts'
import type { Selection } from './graph.ts'
import { DependencyGraph } from './graph.ts'
import { contentHash } from './hash.ts'
import type { LoadedTestFile, TestLoader } from './load.ts'
import { createTestLoader, isTemplateFile, isTestFile } from './load.ts'
import type { HotReloadMetrics } from './metrics.ts'
import { roundMs } from './metrics.ts'
import type { ContainerPoolOptions } from './engine/pool.ts'
import { ContainerPool } from './engine/pool.ts'
import type { Project } from './project.ts'
import { loadProject, PROJECT_FILE } from './project.ts'
import type { TestResult } from './run.ts'
import { leasedSpec } from './otel/collect.ts'
import { runTest } from './run.ts'
import type { TestSpec } from './spec.ts'
import type { TestFilter } from './test-filter.ts'
import { matchesFileFilters, selectSteps } from './test-filter.ts'

/** Options of `createDevSession`. */
export interface DevSessionOptions {
  /** Test files, directories or globs. @default the project's `tests` globs */
  tests?: readonly string[]
  /** Resolves relative paths and finds the project. @default process.cwd() */
  cwd?: string
  /** The project root. @default the nearest directory holding clnrm.toml */
  root?: string
  /** `--var` overrides of `[vars]`. */
  vars?: Record<string, string>
  /** How long one template render may run; overrides `render_timeout`. @default 2000 */
  renderTimeoutMs?: number
  /** Quiet window after the last change before a reload. @default 30 */
  debounceMs?: number
  /** Test files run at once. @default the number of CPUs */
  jobs?: number
  /** The environment templates read. @default process.env */
  env?: Readonly<Record<string, string | undefined>>
  /** A pool to use (the caller closes it); by default the session creates and closes its own. */
  pool?: ContainerPool
  poolOptions?: Omit<ContainerPoolOptions, 'onEvent'>
  /**
   * Starts the caller's watcher on `watchedPaths()` and resolves once it sees changes. The session
   * calls it after the first run and announces `session:ready` only then; saves made meanwhile are
   * caught by comparing content hashes.
   */
  startWatching?: (paths: string[]) => Promise<void>
  /**
   * Tests a changed path affects that only the caller can know: the Vite plugin answers from
   * Vite's module graph for tests with `[watch] modules`.
   */
  resolveAffected?: (path: string) => Selection[]
}

/** Default quiet window: long enough to merge an editor's write bursts, short enough to stay unnoticed. */
export const DEFAULT_DEBOUNCE_MS = 30

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

/** A running hot-reload loop. Feed it changed paths; listen to its events. */
export interface DevSession {
  readonly events: SessionEmitter<DevEvents>
  /** Loads every test, pre-warms their containers, runs them all once, then emits `session:ready`. */
  start: () => Promise<void>
  /** Reports changed, added or deleted paths. Debounced; unchanged content triggers nothing. */
  notify: (paths: readonly string[]) => void
  /**
   * Reruns every test, those that failed, or one test file of the session; returns how many tests
   * it started (0: nothing failed, or the file is not one of the session's tests).
   */
  rerun: (which: 'all' | 'failed' | { file: string }) => number
  /**
   * Narrows every later run (saves and reruns) to the files and steps the filter selects, until
   * replaced (`{}` clears it): the CLI's `p` and `t` keys. Steps left out are reported skipped with
   * `filtered`, never passed; a test with no selected step does not run.
   */
  setFilter: (filter: TestFilter) => void
  /** The filter set with `setFilter`. */
  filter: () => TestFilter
  /** Every path the session wants watched: test roots, the project file, each test's inputs. */
  watchedPaths: () => string[]
  /** Whether a path could be a test of this session (for watchers that see new files). */
  isTestPath: (path: string) => boolean
  tests: () => ReadonlyMap<string, TestFileState>
  /** Resolves when no reload is pending or running (tests use it). */
  idle: () => Promise<void>
  close: () => Promise<void>
}

/** Creates a dev session. Watching is the caller's: chokidar in the CLI, Vite's watcher in the plugin. */
export function createDevSession(options: DevSessionOptions = {}): DevSession {
  const cwd = options.cwd ?? process.cwd()
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS
  const jobs = Math.max(1, options.jobs ?? availableParallelism())
  const events = createEmitter<DevEvents>((type, error) => {
    if (type !== 'session:error') events.emit('session:error', { message: `a ${String(type)} listener threw: ${(error as Error)?.message ?? error}` })
  })
  const graph = new DependencyGraph()
  const states = new Map<string, TestFileState & { token: number; controller?: AbortController }>()
  const hashes = new Map<string, string>()
  let project: Project
  let loader: TestLoader
  let pool: ContainerPool | undefined = options.pool
  let poolCreation: Promise<ContainerPool> | undefined
  let inScope: (path: string) => boolean = () => false
  let testRoots: string[] = []
  let closed = false
  let closing: Promise<void> | undefined
  // Test files deleted since they were last seen: nothing about them is shown after `test:removed`.
  const removed = new Set<string>()
  let reloadId = 0
  let filter: TestFilter = {}
  let tokens = 0
  // A reload may begin while another runs: that is what pre-empts a superseded run.
  const batcher = createChangeBatcher(debounceMs, batch => track(flush(batch).catch((error) => {
    if (!closed) emit('session:error', { message: `reload failed: ${(error as Error).message}` })
  })))
  const running = new Set<Promise<unknown>>()

  const emit = events.emit
  const track = <T>(promise: Promise<T>): Promise<T> => {
    running.add(promise)
    promise.finally(() => running.delete(promise)).catch(() => {})
    return promise
  }

  async function openProject(): Promise<void> {
    project = await loadProject({ cwd, root: options.root, vars: options.vars, renderTimeoutMs: options.renderTimeoutMs })
    // Caches survive a project reload: templates are keyed by content, configs by rendered text.
    loader = createTestLoader({ project, env: options.env, templateCache: loader?.templateCache, configCache: loader?.configCache })
  }

  async function discover(): Promise<string[]> {
    if (options.tests?.length) {
      const absolute = options.tests.map(t => resolve(cwd, t))
      const matchers = options.tests.filter(t => picomatch.scan(t).isGlob).map(t => picomatch(resolve(cwd, t)))
      testRoots = absolute.map(p => (picomatch.scan(p).isGlob ? picomatch.scan(p).base : p))
      inScope = path => isTestFile(path) && (absolute.some(p => path === p || path.startsWith(`${p}/`)) || matchers.some(m => m(path)))
      return (await discoverTestFiles(options.tests, cwd)).files
    }
    const matchers = project.tests.map(g => picomatch(g, { dot: false }))
    testRoots = [project.root]
    inScope = (path) => {
      const rel = relative(project.root, path)
      return isTestFile(path) && !rel.startsWith('..') && !isAbsolute(rel) && !rel.split(/[\\/]/).includes('node_modules') && matchers.some(m => m(rel))
    }
    return globTestFiles(project.tests, project.root)
  }

  /** Loads one file from the text just read, and updates the graph with what the load read. */
  function load(file: string, text: string): LoadedTestFile {
    const loaded = loader.loadSource(file, text)
    const state = states.get(file) ?? { file, diagnostics: [], token: 0 }
    states.set(file, state)
    state.spec = loaded.spec
    state.toml = loaded.toml
    state.diagnostics = loaded.diagnostics
    const spec = loaded.spec
    const fresh = graph.set(file, {
      files: loaded.inputs.partials,
      globs: spec?.watch.files ?? graph.globsOf(file),
      mounts: spec ? Object.values(spec.services).flatMap(s => s.volumes.map(v => v.hostPath)) : graph.mountsOf(file),
      env: loaded.inputs.env.map(e => e.name),
    })
    if (fresh.length) emit('watch:add', { paths: fresh })
    return loaded
  }

  /** Emits `test:warnings` when a valid file's warnings differ from those last shown. */
  function announceWarnings(id: number, state: TestFileState): void {
    const warnings = state.diagnostics.filter(d => d.severity === 'warning')
    const signature = warnings.map(d => `${d.code} ${d.line}:${d.column} ${d.message}`).join('\n')
    if (signature === (state.warningsShown ?? '')) return
    state.warningsShown = signature
    emit('test:warnings', { id, file: state.file, diagnostics: warnings })
  }

  async function readText(path: string): Promise<string | undefined> {
    try {
      return await readFile(path, 'utf8')
    }
    catch {
      return undefined
    }
  }

  /** Runs the selected tests, newest content wins: a test already running is cancelled first. */
  async function reload(changed: string[], all: Selection[], texts: Map<string, string>, timing: { firstAt: number; detectionMs: number }): Promise<void> {
    const selected = all.filter(s => matchesFileFilters(s.test, filter.files, project.root))
    if (closed || !selected.length) return
    const id = ++reloadId
    emit('reload:start', { id, changed, selected })
    const metrics: HotReloadMetrics = {
      fileDetectionMs: roundMs(timing.detectionMs),
      debounceMs: roundMs(performance.now() - timing.firstAt),
      templateRenderMs: 0,
      configParseMs: 0,
      containerStartMs: 0,
      testExecutionMs: 0,
      resultFormattingMs: 0,
      totalLatencyMs: 0,
      templateCacheHitRate: 0,
      configCacheHitRate: 0,
      containerReuseRate: 0,
      memoryMb: 0,
      tests: [],
    }
    let services = 0
    let reused = 0
    const queue = [...selected]
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next && !closed; next = queue.shift()) {
        const { test: file, reason } = next
        const state = states.get(file)
        state?.controller?.abort()
        const text = texts.get(file) ?? await readText(file)
        if (text === undefined || removed.has(file) || closed) continue
        const token = ++tokens
        const loaded = load(file, text)
        const current = states.get(file)!
        current.token = token
        metrics.templateRenderMs += loaded.timings.renderMs
        metrics.configParseMs += loaded.timings.parseMs
        if (!loaded.spec || hasErrors(loaded.diagnostics)) {
          if (closed) continue
          current.result = undefined
          // The invalid view lists every diagnostic; once fixed, its warnings are news again.
          current.warningsShown = undefined
          metrics.tests.push({ file, reason, status: 'invalid', durationMs: 0 })
          const started = performance.now()
          emit('test:invalid', { id, file, diagnostics: loaded.diagnostics })
          metrics.resultFormattingMs += performance.now() - started
          continue
        }
        announceWarnings(id, current)
        const steps = new Set(selectSteps(loaded.spec, filter.pattern))
        // No step matches the name filter: the test does not run, and its last result stays.
        if (!steps.size) continue
        const controller = new AbortController()
        current.controller = controller
        emit('test:start', { id, file })
        const result = await track(runTest(loaded.spec, { pool: await getPool(), signal: controller.signal, load: loaded.timings, source: { toml: loaded.toml ?? text, template: isTemplateFile(file) ? text : undefined }, ...(steps.size < loaded.spec.steps.length && { selectStep: (_, i) => steps.has(i) }) }))
        // Superseded by a newer save, deleted meanwhile (its state is gone), or the session closed.
        if (current.token !== token || closed || states.get(file) !== current) {
          metrics.tests.push({ file, name: result.name, reason, status: 'superseded', durationMs: result.durationMs })
          continue
        }
        current.controller = undefined
        current.result = result
        services += Object.keys(result.timings.reused).length
        reused += Object.values(result.timings.reused).filter(Boolean).length
        metrics.containerStartMs = Math.max(metrics.containerStartMs, result.timings.acquireMs)
        metrics.testExecutionMs = Math.max(metrics.testExecutionMs, result.timings.steps.reduce((sum, s) => sum + s.ms, 0))
        if (result.timings.settleMs !== undefined) metrics.settleMs = Math.max(metrics.settleMs ?? 0, result.timings.settleMs)
        metrics.tests.push({ file, name: result.name, reason, status: result.status, durationMs: roundMs(result.durationMs) })
        const started = performance.now()
        emit('test:result', { id, result })
        metrics.resultFormattingMs += performance.now() - started
      }
    }
    await Promise.all(Array.from({ length: Math.min(jobs, selected.length) }, worker))
    if (closed) return
    metrics.totalLatencyMs = roundMs(performance.now() - timing.firstAt)
    for (const key of ['templateRenderMs', 'configParseMs', 'containerStartMs', 'testExecutionMs', 'resultFormattingMs'] as const) metrics[key] = roundMs(metrics[key])
    if (metrics.settleMs !== undefined) metrics.settleMs = roundMs(metrics.settleMs)
    metrics.templateCacheHitRate = loader.templateCache.stats().hitRate
    metrics.configCacheHitRate = loader.configCache.stats().hitRate
    metrics.containerReuseRate = services ? reused / services : 0
    metrics.memoryMb = Math.round(process.memoryUsage().rss / 1048576)
    emit('reload:done', { id, changed, selected, metrics })
  }

  async function getPool(): Promise<ContainerPool> {
    // A closed session never creates a pool: it would outlive close() with its containers.
    if (closed) throw new Error('the dev session is closed')
    if (pool) return pool
    poolCreation ??= ContainerPool.create({ ...options.poolOptions, onEvent: event => emit('pool:event', event) })
    try {
      pool = await poolCreation
    }
    catch (error) {
      // No engine yet: a later start (the Vite plugin retries) tries again.
      poolCreation = undefined
      throw error
    }
    return pool
  }

  /** Turns a batch of changed paths into a selection of tests. */
  async function flush(batch: ChangeBatch): Promise<void> {
    if (closed) return
    const changed: string[] = []
    const texts = new Map<string, string>()
    const selected = new Map<string, string>()
    let detectionMs = 0
    let all = false
    const projectFile = resolve(project.root, PROJECT_FILE)
    for (const [path, wallAt] of batch.paths) {
      // Only read what can matter: watchers report every file under the test roots.
      const affected = [...graph.affected(path), ...(options.resolveAffected?.(path) ?? [])]
      if (path !== projectFile && !states.has(path) && !inScope(path) && affected.length === 0) continue
      const text = await readText(path)
      const hash = text === undefined ? undefined : contentHash(text)
      if (hash !== undefined && hashes.get(path) === hash) continue
      if (hash === undefined && !hashes.has(path) && !states.has(path)) continue
      if (hash === undefined) hashes.delete(path)
      else hashes.set(path, hash)
      changed.push(path)
      if (text !== undefined) {
        texts.set(path, text)
        const mtime = await stat(path).then(s => s.mtimeMs, () => wallAt)
        detectionMs = Math.max(detectionMs, Math.max(0, wallAt - mtime))
      }
      if (path === projectFile) {
        try {
          await openProject()
          all = true
          emit('project:reloaded', { file: projectFile })
        }
        catch (error) {
          // A broken clnrm.toml is shown like any invalid file; the last good project stays.
          if (!(error instanceof TestFileError)) throw error
          emit('test:invalid', { id: reloadId, file: projectFile, diagnostics: [...error.diagnostics] })
        }
      }
      else if (states.has(path) && text === undefined) {
        removed.add(path)
        states.get(path)?.controller?.abort()
        states.delete(path)
        graph.delete(path)
        emit('test:removed', { file: path })
        void pool?.retire(path)
      }
      else if (inScope(path) && text === undefined) {
        // A new file deleted before its first run: a queued run must not use its old text.
        removed.add(path)
      }
      else if (inScope(path) && text !== undefined) {
        removed.delete(path)
        selected.set(path, states.has(path) ? 'changed' : 'new test')
      }
      for (const { test, reason } of affected) if (!selected.has(test)) selected.set(test, reason)
    }
    if (all) for (const file of states.keys()) if (!selected.has(file)) selected.set(file, `${PROJECT_FILE} changed`)
    if (selected.size === 0) return
    await reload(changed, [...selected].map(([test, reason]) => ({ test, reason })), texts, { firstAt: batch.firstAt, detectionMs })
  }

  /** Resolves when every promise settled, or after `ms`; its timer never outlives it. */
  async function settleWithin(promises: Array<Promise<unknown>>, ms: number): Promise<void> {
    let timeout: ReturnType<typeof setTimeout> | undefined
    await Promise.race([Promise.allSettled(promises), new Promise(r => (timeout = setTimeout(r, ms)))])
    clearTimeout(timeout)
  }

  async function startOnce(): Promise<void> {
    if (debounceMs < 10 || debounceMs > 2000) {
      emit('session:warning', { message: `debounce of ${debounceMs}ms is ${debounceMs < 10 ? 'very low: editors write in bursts, expect extra runs' : 'very high: reloads will feel sluggish'} (10..2000ms recommended)` })
    }
    const started = performance.now()
    await openProject()
    const files = await discover()
    if (closed) return
    const texts = new Map<string, string>()
    for (const file of files) {
      const text = await readText(file)
      if (text === undefined) continue
      texts.set(file, text)
      hashes.set(file, contentHash(text))
    }
    const projectText = await readText(resolve(project.root, PROJECT_FILE))
    if (projectText !== undefined) hashes.set(resolve(project.root, PROJECT_FILE), contentHash(projectText))
    const loaded = files.filter(f => texts.has(f)).map(file => load(file, texts.get(file)!))
    for (const partial of graph.watchedPaths()) {
      const text = await readText(partial)
      if (text !== undefined) hashes.set(partial, contentHash(text))
    }
    const valid = loaded.filter(l => l.spec && !hasErrors(l.diagnostics)).map(l => l.spec!)
    if (closed) return
    const p = await getPool()
    if (closed) return
    // The containers runs will lease: OTel tests' services carry the injected env.
    await p.prewarm(await Promise.all(valid.map(spec => leasedSpec(spec, p))), { jobs })
    if (closed) return
    await reload([], loaded.map(l => ({ test: l.file, reason: 'start' })), texts, { firstAt: performance.now(), detectionMs: 0 })
    if (closed) return
    await options.startWatching?.(session.watchedPaths())
    if (closed) return
    // Anything saved while the first run went on and the watcher started is a change too.
    const missed: string[] = []
    for (const [path, hash] of hashes) {
      const text = await readText(path)
      if (text === undefined || contentHash(text) !== hash) missed.push(path)
    }
    if (closed) return
    emit('session:ready', { tests: valid.length, invalid: loaded.length - valid.length, durationMs: roundMs(performance.now() - started) })
    if (missed.length) session.notify(missed)
    batcher.arm()
  }

  const session: DevSession = {
    events,
    start() {
      // Tracked, so close() waits for it; every step checks `closed`, so a start interrupted by
      // close() (Ctrl-C while containers start) ends there: no watcher, no `session:ready`.
      return track(startOnce().catch((error: unknown) => {
        if (!closed) throw error
      }))
    },
    notify(paths) {
      if (!closed) batcher.add(paths.map(path => resolve(cwd, path)))
    },
    rerun(which) {
      const failed = (s: TestFileState): boolean => (s.result ? s.result.status !== 'pass' : hasErrors(s.diagnostics))
      let files = typeof which === 'object'
        ? (states.has(resolve(cwd, which.file)) ? [resolve(cwd, which.file)] : [])
        : [...states.values()].filter(s => which === 'all' || failed(s)).map(s => s.file)
      files = files.filter(f => matchesFileFilters(f, filter.files, project.root))
      if (!files.length || closed) return 0
      const reason = typeof which === 'object' ? 'rerun' : `rerun ${which}`
      const run = reload([], files.map(test => ({ test, reason })), new Map(), { firstAt: performance.now(), detectionMs: 0 })
        .catch((error) => {
          if (!closed) emit('session:error', { message: `rerun failed: ${(error as Error).message}` })
        })
      track(run)
      return files.length
    },
    setFilter(next) {
      filter = { ...next }
    },
    filter: () => filter,
    watchedPaths: () => [...new Set([...testRoots, ...(project ? [resolve(project.root, PROJECT_FILE)] : []), ...graph.watchedPaths()])],
    isTestPath: path => inScope(path),
    tests: () => states,
    async idle() {
      for (;;) {
        while (batcher.pending && !closed) await new Promise(r => setTimeout(r, debounceMs))
        if (running.size === 0) return
        await Promise.allSettled([...running])
      }
    },
    close() {
      // Memoised like the pool's: a second call waits for the same cleanup.
      closing ??= (async () => {
        closed = true
        batcher.dispose()
        for (const state of states.values()) state.controller?.abort()
        // Runs were aborted (their steps killed), so they end soon; closing our pool at the same
        // time removes containers still starting. A run that hangs cannot hold quitting for long.
        const ownPool = options.pool ? undefined : poolCreation?.then(p => p.close(), () => {})
        await Promise.allSettled([settleWithin([...running], 5000), ownPool])
      })()
      return closing
    },
  }
  return session
}
