import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import { hasErrors } from '../format/diagnostics.ts'
import type { ContainerPoolOptions } from '../engine/pool.ts'
import { ContainerPool } from '../engine/pool.ts'
import type { DevEvents, SessionEmitter } from '../events.ts'
import { createEmitter } from '../events.ts'
import { leasedSpec } from '../otel/collect.ts'
import type { TestFilter } from '../test-filter.ts'
import type { ChangeBatch } from './change-batcher.ts'
import { createChangeBatcher } from './change-batcher.ts'
import type { Selection } from './graph.ts'
import { roundMs } from './metrics.ts'
import { createDevRunner } from './runner.ts'
import type { TestFileState } from './scope.ts'
import { DevScope, readText, readTexts } from './scope.ts'

export type { TestFileState } from './scope.ts'

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
  /**
   * The quiet window: how long after the last change an invalid result (what a half-written file
   * gives) waits, and then shows only if the file still reads the same. Saves run at once and
   * valid results show at once, whatever this is. @default 30
   */
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

/** Default quiet window: long enough to span an editor's write bursts, short enough that an error shows without a noticeable wait. */
export const DEFAULT_DEBOUNCE_MS = 30

/** A running hot-reload loop. Feed it changed paths; listen to its events. */
export interface DevSession {
  readonly events: SessionEmitter<DevEvents>
  /** Loads every test, pre-warms their containers, runs them all once, then emits `session:ready`. */
  start: () => Promise<void>
  /** Reports changed, added or deleted paths. They run at once (a newer save pre-empts); unchanged content triggers nothing. */
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
  const emit = events.emit
  let pool: ContainerPool | undefined = options.pool
  let poolCreation: Promise<ContainerPool> | undefined
  let closed = false
  let closing: Promise<void> | undefined
  const running = new Set<Promise<unknown>>()
  const track = <T>(promise: Promise<T>): Promise<T> => {
    running.add(promise)
    promise.finally(() => running.delete(promise)).catch(() => {})
    return promise
  }
  const isClosed = (): boolean => closed

  const scope = new DevScope({
    cwd,
    tests: options.tests,
    root: options.root,
    vars: options.vars,
    renderTimeoutMs: options.renderTimeoutMs,
    env: options.env,
    resolveAffected: options.resolveAffected,
    emit,
    reloadId: () => runner.lastId,
    onRemoved: (file) => {
      runner.forget(file)
      void pool?.retire(file)
    },
  })
  const runner = createDevRunner({
    scope,
    emit,
    jobs,
    getPool,
    isClosed,
    track,
    quiet: paths => batcher.quiet(paths),
    onStale: file => session.notify([file]),
  })
  // A reload may begin while another runs: that is what pre-empts a superseded run.
  const batcher = createChangeBatcher(debounceMs, batch => track(flush(batch).catch((error) => {
    if (!closed) emit('session:error', { message: `reload failed: ${(error as Error).message}` })
  })))
  // Batches are read one after another (reads take well under a millisecond), so a later read
  // always means newer content; the runs they start overlap, and the newer pre-empts the older.
  let selecting: Promise<unknown> = Promise.resolve()

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

  /** Runs what a batch of changed paths selects. */
  async function flush(batch: ChangeBatch): Promise<void> {
    if (closed) return
    const next = selecting.then(() => (closed ? undefined : scope.select(batch)))
    selecting = next.catch(() => {})
    const selection = await next
    if (!selection || closed) return
    await runner.run(selection.changed, selection.selected, selection.texts, { firstAt: batch.firstAt, detectionMs: selection.detectionMs })
  }

  /** Resolves when every promise settled, or after `ms`; its timer never outlives it. */
  async function settleWithin(promises: Array<Promise<unknown>>, ms: number): Promise<void> {
    let timeout: ReturnType<typeof setTimeout> | undefined
    await Promise.race([Promise.allSettled(promises), new Promise(r => (timeout = setTimeout(r, ms)))])
    clearTimeout(timeout)
  }

  async function startOnce(): Promise<void> {
    if (debounceMs < 10 || debounceMs > 2000) {
      emit('session:warning', { message: `debounce of ${debounceMs}ms is ${debounceMs < 10 ? 'very low: the error of a file saved in bursts may show before its last burst lands' : 'very high: reloads will feel sluggish'} (10..2000ms recommended)` })
    }
    const started = performance.now()
    await scope.open()
    const files = await scope.discover()
    if (closed) return
    scope.loader.sizeFor(files.length)
    const texts = new Map<string, string>()
    const read = await readTexts(files)
    files.forEach((file, i) => {
      const text = read[i]
      if (text === undefined) return
      texts.set(file, text)
      scope.remember(file, text)
    })
    const projectText = await readText(scope.projectFile)
    if (projectText !== undefined) scope.remember(scope.projectFile, projectText)
    const loaded = files.filter(f => texts.has(f)).map(file => scope.load(file, texts.get(file)!))
    for (const partial of scope.graph.watchedPaths()) {
      const text = await readText(partial)
      if (text !== undefined) scope.remember(partial, text)
    }
    const valid = loaded.filter(l => l.spec && !hasErrors(l.diagnostics)).map(l => l.spec!)
    if (closed) return
    const p = await getPool()
    if (closed) return
    // The containers runs will lease: OTel tests' services carry the injected env.
    await p.prewarm(await Promise.all(valid.map(spec => leasedSpec(spec, p))), { jobs })
    if (closed) return
    await runner.run([], loaded.map(l => ({ test: l.file, reason: 'start' })), texts, { firstAt: performance.now(), detectionMs: 0 }, new Map(loaded.map(l => [l.file, l])))
    if (closed) return
    await options.startWatching?.(session.watchedPaths())
    if (closed) return
    // Anything saved while the first run went on and the watcher started is a change too.
    const missed = await scope.missed()
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
      const files = scope.rerunFiles(which)
      if (!files.length || closed) return 0
      const reason = typeof which === 'object' ? 'rerun' : `rerun ${which}`
      const run = runner.run([], files.map(test => ({ test, reason })), new Map(), { firstAt: performance.now(), detectionMs: 0 })
        .catch((error) => {
          if (!closed) emit('session:error', { message: `rerun failed: ${(error as Error).message}` })
        })
      track(run)
      return files.length
    },
    setFilter(next) {
      scope.filter = { ...next }
    },
    filter: () => scope.filter,
    watchedPaths: () => scope.watchedPaths(),
    isTestPath: path => scope.isTestPath(path),
    tests: () => scope.states,
    async idle() {
      for (;;) {
        while (batcher.pending && !closed) await new Promise(r => setTimeout(r, 1))
        if (running.size === 0) return
        await Promise.allSettled([...running])
      }
    },
    close() {
      // Memoised like the pool's: a second call waits for the same cleanup.
      closing ??= (async () => {
        closed = true
        batcher.dispose()
        for (const state of scope.states.values()) state.controller?.abort()
        runner.abortAll()
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
