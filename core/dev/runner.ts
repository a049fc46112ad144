import { hasErrors } from '../format/diagnostics.ts'
import type { ContainerPool } from '../engine/pool.ts'
import type { DevEvents, SessionEmitter } from '../events.ts'
import type { LoadedTestFile } from '../format/load.ts'
import { isTemplateFile } from '../format/load.ts'
import { runTest } from '../run.ts'
import { selectSteps } from '../test-filter.ts'
import type { Selection } from './graph.ts'
import type { HotReloadMetrics } from './metrics.ts'
import { roundMs } from './metrics.ts'
import type { RunRecord } from './priority.ts'
import { prioritise } from './priority.ts'
import type { DevScope } from './scope.ts'
import { readTextNow } from './scope.ts'

/** What the runner needs of its session. */
export interface DevRunnerOptions {
  scope: DevScope
  emit: SessionEmitter<DevEvents>['emit']
  /** Test files run at once. */
  jobs: number
  getPool: () => Promise<ContainerPool>
  isClosed: () => boolean
  /** Registers a promise the session's `idle()`/`close()` wait for. */
  track: <T>(promise: Promise<T>) => Promise<T>
  /**
   * Resolves when the paths (the test file and the changes of its reload) have been quiet for the
   * quiet window: an invalid result waits for it, since a half-written file (an editor's first
   * write burst) looks invalid. @default at once
   */
  quiet?: (paths: Iterable<string>) => Promise<void>
  /** A result was dropped because its file changed on disk since it was read: the session looks at it again. */
  onStale?: (file: string) => void
}

/** When the change that caused a run was first seen, and how late its event came. */
export interface RunTiming {
  firstAt: number
  detectionMs: number
}

/** Runs selections of tests and measures them. */
export interface DevRunner {
  /**
   * Runs the selected tests (those the file filter keeps), newest content wins: a test already
   * running is cancelled first. Emits `reload:start`, per-test events and `reload:done`; returns
   * the reload's metrics, `undefined` when nothing ran or the session closed meanwhile.
   */
  run: (changed: string[], selection: Selection[], texts: Map<string, string>, timing: RunTiming, preloaded?: Map<string, LoadedTestFile>) => Promise<HotReloadMetrics | undefined>
  /** The id of the latest reload (0 before the first). */
  readonly lastId: number
  /** What each test's last shown run did: the order of the next reload comes from it. */
  readonly records: ReadonlyMap<string, RunRecord>
  /** Forgets a deleted test's record. */
  forget: (file: string) => void
  /** Cancels every run in flight (the session closes). */
  abortAll: () => void
}

const emptyMetrics = (timing: RunTiming): HotReloadMetrics => ({
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
})

/** A superseded run of a test that last took less than this is left to end rather than cancelled. */
const FINISH_UNDER_MS = 50

/** Loads made ahead (`loadAhead`) between two turns of the event loop. */
const AHEAD_PER_TURN = 16

/** Creates the runner of a dev session. */
export function createDevRunner(options: DevRunnerOptions): DevRunner {
  const { scope, emit, isClosed, track } = options
  let reloadId = 0
  // Every run of every file gets a token; a file's state keeps the newest, so older runs know they were superseded.
  let tokens = 0
  const records = new Map<string, RunRecord>()
  // The latest reload that selected each file.
  const claimed = new Map<string, number>()
  // Runs in flight: when each started and, once superseded but left to end, the timer that cancels it after all.
  const inFlight = new Map<AbortController, { startedAt: number; timer?: ReturnType<typeof setTimeout> }>()

  /**
   * Makes way for a newer run of a file. A run of a test that takes long is cancelled (its steps
   * killed); one of a test that last took under `FINISH_UNDER_MS` is left to end, its result
   * dropped as superseded: killing its step costs one more exec into the container, longer than
   * the rest of the run, and the newer run would wait for that container all the same.
   */
  function preempt(file: string): void {
    const controller = scope.states.get(file)?.controller
    if (!controller) return
    const run = inFlight.get(controller)
    if (run?.timer) return
    const lastMs = records.get(file)?.durationMs
    const left = FINISH_UNDER_MS - (performance.now() - (run?.startedAt ?? 0))
    if (!run || lastMs === undefined || lastMs >= FINISH_UNDER_MS || left <= 0) return controller.abort()
    // Its content may take longer than the last run did: it gets until then, not more.
    run.timer = setTimeout(() => controller.abort(), left)
  }

  /** Whether a test file no longer holds the text a run used; then it is handed back to the session. */
  function changedOnDisk(file: string, text: string): boolean {
    // Read synchronously: it stands between a result and the screen, and a test file is small
    // (microseconds, against four thread-pool round trips of an async read on a busy machine).
    const now = readTextNow(file)
    if (now === text) return false
    // Gone: the delete event removes it. Changed: the session sees to it (its hash tells whether it is news).
    if (now !== undefined) options.onStale?.(file)
    return true
  }

  /**
   * `preloaded`: loads of exactly `texts` made just before (the session's start loads every file
   * to prewarm their containers), used once instead of rendering and checking each file again.
   */
  async function run(changed: string[], all: Selection[], texts: Map<string, string>, timing: RunTiming, preloaded?: Map<string, LoadedTestFile>): Promise<HotReloadMetrics | undefined> {
    // Recently failed first, then the fastest: the answers a user waits for come first.
    const selected = prioritise(all.filter(s => scope.matchesFilter(s.test)), records)
    if (isClosed() || !selected.length) return undefined
    const id = ++reloadId
    const since = tokens
    for (const { test } of selected) claimed.set(test, id)
    emit('reload:start', { id, changed, selected })
    const metrics = emptyMetrics(timing)
    let services = 0
    let reused = 0
    const queue = [...selected]
    // Loads of queued tests made ahead, with the text each was made from (see `loadAhead`).
    const ahead = new Map<string, { text: string; loaded: LoadedTestFile }>()
    const taken = new Set<string>()
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next && !isClosed(); next = queue.shift()) {
        const { test: file, reason } = next
        taken.add(file)
        // A newer reload selected or ran this file while it waited in this one's queue: that run has
        // newer content (a partial saved in two bursts must not run its tests twice, in two orders).
        if ((claimed.get(file) ?? 0) > id || (scope.states.get(file)?.token ?? 0) > since) continue
        preempt(file)
        // Read synchronously: the load right after is synchronous anyway, and a test file reads in
        // tens of microseconds, where an awaited read waits for the thread pool (a shared partial
        // selecting 3000 tests spent about 0.8 s of its 1.1 s on these reads).
        const text = texts.get(file) ?? readTextNow(file)
        if (text === undefined || scope.removed.has(file) || isClosed()) continue
        const token = ++tokens
        const early = preloaded?.get(file)
        preloaded?.delete(file)
        const made = ahead.get(file)
        ahead.delete(file)
        const loaded = early ?? scope.load(file, text, made?.text === text ? made.loaded : undefined)
        const current = scope.states.get(file)!
        current.token = token
        // A newer run of the file started, a newer reload selected it (an input's second write
        // burst: that reload will show its result), the file was deleted, or it no longer holds
        // the text this run used (the watcher's event may still be on its way).
        const superseded = (): boolean => current.token !== token || (claimed.get(file) ?? 0) > id || scope.states.get(file) !== current || changedOnDisk(file, text)
        metrics.templateRenderMs += loaded.timings.renderMs
        metrics.configParseMs += loaded.timings.parseMs
        if (!loaded.spec || hasErrors(loaded.diagnostics)) {
          // What a half-written file gives: shown only if the file stays so for the quiet window.
          await options.quiet?.([file, ...changed])
          if (isClosed()) continue
          if (superseded()) {
            metrics.tests.push({ file, reason, status: 'superseded', durationMs: 0 })
            continue
          }
          current.result = undefined
          records.set(file, { failed: true, durationMs: records.get(file)?.durationMs })
          // The invalid view lists every diagnostic; once fixed, its warnings are news again.
          current.warningsShown = undefined
          metrics.tests.push({ file, reason, status: 'invalid', durationMs: 0 })
          const started = performance.now()
          emit('test:invalid', { id, file, diagnostics: loaded.diagnostics })
          metrics.resultFormattingMs += performance.now() - started
          continue
        }
        scope.announceWarnings(id, current)
        const steps = new Set(selectSteps(loaded.spec, scope.filter.pattern))
        // No step matches the name filter: the test does not run, and its last result stays.
        if (!steps.size) continue
        const controller = new AbortController()
        current.controller = controller
        emit('test:start', { id, file })
        const pool = await options.getPool()
        inFlight.set(controller, { startedAt: performance.now() })
        const result = await track(runTest(loaded.spec, { pool, signal: controller.signal, backlog: queue.length, load: loaded.timings, source: { toml: loaded.toml ?? text, template: isTemplateFile(file) ? text : undefined }, ...(steps.size < loaded.spec.steps.length && { selectStep: (_, i) => steps.has(i) }) }))
          .finally(() => {
            clearTimeout(inFlight.get(controller)?.timer)
            inFlight.delete(controller)
          })
        if (isClosed() || superseded()) {
          metrics.tests.push({ file, name: result.name, reason, status: 'superseded', durationMs: result.durationMs })
          continue
        }
        current.controller = undefined
        current.result = result
        // An aborted run's time says nothing of the test's; its verdict still counts as a failure.
        records.set(file, { failed: result.status !== 'pass', durationMs: result.aborted ? records.get(file)?.durationMs : result.durationMs })
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
    /**
     * Loads the queued tests ahead of the workers, a few per turn of the event loop, when there are
     * more than workers: while a changed definition's first containers start, the CPU is about half
     * idle, and a large reload (a shared partial saved) then finds its renders and checks made. A
     * load made ahead is used only if the file still holds the text it was made from, and only
     * once; each run still reads its file first.
     */
    const loadAhead = async (): Promise<void> => {
      for (let i = 0; i < selected.length; i++) {
        if (i % AHEAD_PER_TURN === 0) await new Promise(resolve => setImmediate(resolve))
        if (isClosed() || !queue.length) return
        const { test: file } = selected[i]!
        // Taken by a worker already, or selected again by a newer reload.
        if (taken.has(file) || (claimed.get(file) ?? 0) > id || scope.removed.has(file)) continue
        const text = texts.get(file) ?? readTextNow(file)
        if (text !== undefined) ahead.set(file, { text, loaded: scope.loader.loadSource(file, text) })
      }
    }
    if (selected.length > options.jobs && !preloaded?.size) void track(loadAhead())
    await Promise.all(Array.from({ length: Math.min(options.jobs, selected.length) }, worker))
    ahead.clear()
    if (isClosed()) return undefined
    metrics.totalLatencyMs = roundMs(performance.now() - timing.firstAt)
    for (const key of ['templateRenderMs', 'configParseMs', 'containerStartMs', 'testExecutionMs', 'resultFormattingMs'] as const) metrics[key] = roundMs(metrics[key])
    if (metrics.settleMs !== undefined) metrics.settleMs = roundMs(metrics.settleMs)
    metrics.templateCacheHitRate = scope.loader.templateCache.stats().hitRate
    metrics.configCacheHitRate = scope.loader.configCache.stats().hitRate
    metrics.containerReuseRate = services ? reused / services : 0
    metrics.memoryMb = Math.round(process.memoryUsage().rss / 1048576)
    emit('reload:done', { id, changed, selected, metrics })
    return metrics
  }

  return {
    run,
    get lastId() {
      return reloadId
    },
    records,
    forget(file) {
      records.delete(file)
      claimed.delete(file)
    },
    abortAll() {
      for (const [controller, run] of inFlight) {
        clearTimeout(run.timer)
        controller.abort()
      }
    },
  }
}
