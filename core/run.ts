import { judgeAssertions } from './assertions.ts'
import type { KeyPath } from './format/diagnostics.ts'
import { runVariants } from './matrix-run.ts'
import { EngineUnavailableError, isEngineUnreachable } from './engine/docker.ts'
import type { StepFailure } from './expect.ts'
import { checkExpectations } from './expect.ts'
import type { FailureLocator, SpecSource } from './failure-location.ts'
import { createFailureLocator, failureKeyPaths, TEST_TIMEOUT_PATHS } from './failure-location.ts'
import type { Lease } from './engine/pool.ts'
import type { ContainerPool } from './engine/pool.ts'
import type { RunOtel } from './otel/collect.ts'
import { prepareOtel } from './otel/collect.ts'
import type { SpanVerdict } from './otel/types.ts'
import type { TestSpec } from './format/spec.ts'

/** The outcome of one step. `skipped` steps did not run (an earlier step failed). */
export interface StepResult {
  name: string
  /** The step's `description`, when it has one. */
  description?: string
  service: string
  status: 'pass' | 'fail' | 'skipped'
  /** Skipped because a name filter (`clnrm run -t`) left it out, not because an earlier step failed. */
  filtered?: true
  exitCode?: number
  stdout: string
  stderr: string
  /** Whether `stdout`/`stderr` are excerpts (the first and last 512 KiB) of longer streams. */
  truncated: { stdout: boolean; stderr: boolean }
  /** Bytes each stream carried in all (absent for a step that did not run). */
  bytes?: { stdout: number; stderr: number }
  durationMs: number
  timedOut: boolean
  failure?: StepFailure
}

/** Where a run's time went, per phase. */
export interface TestTimings {
  renderMs?: number
  parseMs?: number
  acquireMs: number
  /** Per service: whether its container was reused. */
  reused: Record<string, boolean>
  steps: Array<{ name: string; ms: number }>
  /** Waiting for spans after the last step (tests with span expectations only). */
  settleMs?: number
  totalMs: number
}

/**
 * The outcome of one run of one test: `pass`, `fail` (an expectation did not hold) or `error`
 * (the test could not run: a missing image, a service that never got ready, a dead engine).
 */
export interface TestResult {
  file: string
  name: string
  /** The test's `description`, when it has one. */
  description?: string
  status: 'pass' | 'fail' | 'error'
  durationMs: number
  steps: StepResult[]
  error?: { code?: string; message: string; hint?: string }
  /** The run was cancelled (a newer save superseded it). */
  aborted: boolean
  timings: TestTimings
  /** The verdict on the spans the test's services emitted, when the test declares span expectations. */
  spans?: SpanVerdict
}

/** Options of `runTest`. */
export interface RunTestOptions {
  pool: ContainerPool
  /** Aborting kills the running step and ends the run. */
  signal?: AbortSignal
  /** Load timings to carry into the result. */
  load?: { renderMs: number; parseMs: number }
  /** Called as each step finishes. */
  onStep?: (step: StepResult) => void
  /** The text the spec was loaded from: failures then carry the line and column of their key. */
  source?: SpecSource
  /**
   * The steps to run (`clnrm run -t`); the others do not run and are reported `skipped` with
   * `filtered`, never passed. @default every step
   */
  selectStep?: (step: TestSpec['steps'][number], index: number) => boolean
  /** How many tests the caller runs after this one: passed to the pool (`acquire`'s `backlog`). */
  backlog?: number
}

const described = (step: { description?: string }): { description?: string } =>
  step.description === undefined ? {} : { description: step.description }

/** Runs every step of a test inside its services' containers, leased from the pool. */
export async function runTest(spec: TestSpec, options: RunTestOptions): Promise<TestResult> {
  // A [matrix] file: each combination is a run of its own.
  if (spec.variants) return runVariants(spec as TestSpec & { variants: TestSpec[] }, options, runTest)
  const start = performance.now()
  const steps: StepResult[] = []
  const timings: TestTimings = { renderMs: options.load?.renderMs, parseMs: options.load?.parseMs, acquireMs: 0, reused: {}, steps: [], totalMs: 0 }
  const finish = (status: TestResult['status'], extra: Partial<TestResult> = {}): TestResult => {
    timings.totalMs = performance.now() - start
    return { file: spec.file, name: spec.name, ...(spec.description !== undefined && { description: spec.description }), status, durationMs: timings.totalMs, steps, aborted: options.signal?.aborted ?? false, timings, ...extra }
  }

  const locator: FailureLocator | undefined = options.source && createFailureLocator(spec.file, options.source)
  // Located once per failure; a file that cannot be parsed again only loses the location.
  const located = async (failure: StepFailure, candidates: Parameters<FailureLocator>[0]): Promise<StepFailure> => {
    const location = await locator?.(candidates).catch(() => undefined)
    return location ? { ...failure, location } : failure
  }

  let lease: Lease
  let otel: RunOtel | undefined
  try {
    // Tests with span expectations: the receiver runs, and their services get the OTel env.
    const prepared = await prepareOtel(spec, options.pool)
    // The start check of services no step uses runs beside the first steps (`startsOk` below).
    lease = await options.pool.acquire(prepared?.spec ?? spec, { signal: options.signal, backlog: options.backlog, checkStartsLater: true })
    otel = await prepared?.attach(lease)
  }
  catch (error) {
    const e = (isEngineUnreachable(error) ? new EngineUnavailableError(error) : error) as Error & { code?: string; hint?: string }
    timings.acquireMs = performance.now() - start
    return finish('error', { error: { code: e.code, message: e.message, hint: e.hint } })
  }
  timings.acquireMs = lease.acquireMs
  for (const [id, service] of Object.entries(lease.services)) timings.reused[id] = service.reused
  // A service that ended at start fails the run as a failed acquire does: nothing is reported
  // (no step, no verdict) before the check says every service still runs (asked after each
  // step: after the start grace it costs nothing, and an exit the engine told late still counts).
  let exitedAtStart: (Error & { code?: string; hint?: string }) | undefined
  const startsOk = (): Promise<boolean> => lease.startsChecked().then(() => true, (error: Error) => {
    exitedAtStart = error
    return false
  })
  const startFailed = (): TestResult => finish('error', { steps: [], error: { code: exitedAtStart!.code, message: exitedAtStart!.message, hint: exitedAtStart!.hint } })

  const deadline = spec.timeoutMs === undefined ? Infinity : start + spec.timeoutMs
  let failed = false
  let spans: SpanVerdict | undefined
  let current: TestSpec['steps'][number] | undefined
  // When each scenario with `timeout_ms` started: its deadline runs from its first step's start.
  const scenarioStarts = new Map<string, number>()
  try {
    for (const [index, step] of spec.steps.entries()) {
      current = step
      if (options.selectStep && !options.selectStep(step, index)) {
        steps.push({ name: step.name, ...described(step), service: step.service, status: 'skipped', filtered: true, stdout: '', stderr: '', truncated: { stdout: false, stderr: false }, durationMs: 0, timedOut: false })
        continue
      }
      if (failed) {
        steps.push({ name: step.name, ...described(step), service: step.service, status: 'skipped', stdout: '', stderr: '', truncated: { stdout: false, stderr: false }, durationMs: 0, timedOut: false })
        continue
      }
      if (options.signal?.aborted) break
      const limit = stepDeadline(step, deadline, scenarioStarts)
      const remaining = limit.at - performance.now()
      if (remaining <= 0) {
        if (!await startsOk()) return startFailed()
        // The budget is spent: starting the step only to kill it at once would tell nothing.
        const stepResult: StepResult = {
          name: step.name, ...described(step), service: step.service, status: 'fail', stdout: '', stderr: '', truncated: { stdout: false, stderr: false }, durationMs: 0, timedOut: true,
          failure: limit.scenario
            ? await located({ expectation: `timeout_ms = ${step.scenarioTimeoutMs}`, message: `scenario "${step.scenario}" ran out of its timeout_ms before this step started`, excerpt: '', key: 'timeout_ms' }, [limit.scenario])
            : await located({ expectation: `[meta] timeout = ${spec.timeoutMs}ms`, message: 'the test ran out of its time budget before this step started', excerpt: '', key: 'meta.timeout' }, TEST_TIMEOUT_PATHS),
        }
        steps.push(stepResult)
        options.onStep?.(stepResult)
        continue
      }
      const startWall = Date.now()
      const result = await lease.services[step.service]!.runner.exec({
        argv: step.command,
        env: { ...lease.env, ...otel?.stepEnv, ...step.env },
        workdir: step.workdir ?? lease.services[step.service]!.workdir,
        timeoutMs: Math.max(1, Math.min(step.timeoutMs, remaining)),
        signal: options.signal,
      })
      if (!await startsOk()) return startFailed()
      const checked = checkExpectations(step, result)
      const budget = checked && result.timedOut && step.timeoutMs > remaining
      const failure = !checked
        ? undefined
        : budget && limit.scenario
          ? await located({ ...checked, expectation: `timeout_ms = ${step.scenarioTimeoutMs}`, message: `scenario "${step.scenario}" ran past its timeout_ms and the step was killed`, key: 'timeout_ms' }, [limit.scenario])
          : budget
            ? await located({ ...checked, expectation: `[meta] timeout = ${spec.timeoutMs}ms`, message: 'the test ran out of its time budget', key: 'meta.timeout' }, TEST_TIMEOUT_PATHS)
            : await located(checked, failureKeyPaths(step, checked))
      const stepResult: StepResult = {
        name: step.name,
        ...described(step),
        service: step.service,
        status: failure ? 'fail' : 'pass',
        exitCode: result.exitCode,
        stdout: result.stdout,
        stderr: result.stderr,
        truncated: result.truncated,
        bytes: result.bytes,
        durationMs: result.durationMs,
        timedOut: result.timedOut,
        failure,
      }
      steps.push(stepResult)
      otel?.stepDone(step, { ...stepResult, wholeStdout: result.whole.stdout ?? null }, startWall)
      timings.steps.push({ name: step.name, ms: result.durationMs })
      options.onStep?.(stepResult)
      if (result.aborted) break
      if (failure && !step.continueOnFailure) failed = true
    }
    if (!await startsOk()) return startFailed()
    // Judged while the lease is held: spans are told apart by the containers that sent them.
    if (otel && !options.signal?.aborted) {
      // Within [meta] timeout: settling never stretches the test's budget.
      spans = await otel.finish({ signal: options.signal, budgetMs: Math.max(0, deadline - performance.now()), failed: steps.some(s => s.status === 'fail') })
      timings.settleMs = spans.settleMs
    }
  }
  catch (error) {
    if (!await startsOk()) return startFailed()
    return finish('error', { error: await stepError(error, current, lease, options.pool) })
  }
  finally {
    otel?.close()
    // Not awaited: results show as soon as the steps end; the pool waits for the release
    // before it leases these containers again.
    void lease.release()
  }
  // Judged after the run, on what it did: shown as entries after the steps.
  if (!options.signal?.aborted) {
    // One entry per declared assertion, in order: a failing one is located at its key.
    const judged = judgeAssertions(spec, steps, spans?.spans)
    for (const [i, entry] of judged.entries()) {
      const path = spec.assertions?.[i]?.path
      const judgedStep = entry.failure && path ? { ...entry, failure: await located(entry.failure, [path]) } : entry
      steps.push(judgedStep)
      options.onStep?.(judgedStep)
    }
  }
  const status = steps.some(s => s.status === 'fail') || !!spans?.failures.length ? 'fail' : 'pass'
  return finish(status, spans ? { spans } : {})
}

/**
 * When a step must end: the test's deadline, or its scenario's `timeout_ms` when that comes
 * first (then `scenario` is where that key is written). The first step of a scenario starts its clock.
 */
function stepDeadline(step: TestSpec['steps'][number], testDeadline: number, scenarioStarts: Map<string, number>): { at: number; scenario?: KeyPath } {
  if (step.scenarioTimeoutMs === undefined) return { at: testDeadline }
  const owner = step.source.slice(0, 2)
  const key = owner.join('.')
  const began = scenarioStarts.get(key) ?? performance.now()
  scenarioStarts.set(key, began)
  const at = began + step.scenarioTimeoutMs
  return at < testDeadline ? { at, scenario: [...owner, 'timeout_ms'] } : { at: testDeadline }
}

/**
 * Why a step could not run. A container removed or stopped from outside (a prune, a cleanup
 * script) and an engine that went away each get their own code, naming the service, so the
 * terminal and the page say what happened; the pool replaces the dead container on the next run.
 */
async function stepError(error: unknown, step: TestSpec['steps'][number] | undefined, lease: Lease, pool: ContainerPool): Promise<NonNullable<TestResult['error']>> {
  const message = (error as Error).message
  // A service whose main process ended (CLNRM_SERVICE_EXITED) already says which, how and why.
  const coded = error as { code?: unknown; hint?: string }
  if (coded.code === 'CLNRM_SERVICE_EXITED') return { code: coded.code, message, hint: coded.hint }
  const runner = step && lease.services[step.service]?.runner
  const gone = runner && (!runner.alive || (error as { statusCode?: number }).statusCode === 404)
  if (!step || !(gone || isEngineUnreachable(error))) return { message }
  if (isEngineUnreachable(error) || !await pool.engineAnswers()) {
    const engine = new EngineUnavailableError(error)
    return { code: engine.code, message: `the Docker engine went away during step "${step.name}" of service "${step.service}" (${message})`, hint: `${engine.hint} Once it answers again, the next run starts fresh containers.` }
  }
  // The container runs on and only clnrm's shell in it ended: a step killed it (see the hint).
  if (coded.code === 'CLNRM_SHELL_GONE' && await pool.containerRuns(lease.services[step.service]!.containerId)) {
    return { code: coded.code, message: `clnrm's shell in the container of service "${step.service}" ended during step "${step.name}" (${message})`, hint: coded.hint }
  }
  return {
    code: 'CLNRM_CONTAINER_GONE',
    message: `the container of service "${step.service}" went away during step "${step.name}": it was removed or stopped from outside clnrm (${message})`,
    hint: 'The next run starts a fresh container. If a cleanup job removes containers, let it skip those labelled clnrm.',
  }
}
