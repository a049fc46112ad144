import { request } from 'node:http'
import { afterAll, describe, inject, test } from 'vitest'
import type { StepResult, TestResult } from '../core/index.ts'
import type { FilePlan, PlannedSuite, PlannedTest, SourcePosition } from './generate.ts'
import type { RunMessage, RunRequest, RunServerInfo } from './protocol.ts'
import { SERVER_KEY } from './protocol.ts'

/** What a Vitest test of a clnrm file makes of the run: pass, fail with an error, or skip with a note. */
type Outcome = { kind: 'pass' } | { kind: 'fail'; error: Error; at?: SourcePosition } | { kind: 'skip'; note: string }

/** The collected tests of one clnrm file, as the generated module declares them. */
export interface ClnrmFile {
  /** `name` is the planned suite's, written out for Vitest's static collector; `suite` selects it. */
  describe: (name: string, suite: number, body: () => void) => void
  /** `name` is the planned test's, written out for Vitest's static collector; the indexes select it. */
  test: (name: string, suite: number, index: number) => void
  invalidTest: (name: string) => void
}

/**
 * Declares the Vitest tests of one clnrm file (called by the module its TOML becomes). The steps
 * run in the main process's warm containers: the first test of a describe to run asks the run
 * server to run that clnrm test, and each test waits for its own step's result, in order.
 */
export function defineClnrmFile(plan: FilePlan): ClnrmFile {
  const runs: Array<RunStream | undefined> = []
  return {
    describe(_name, suite, body) {
      describe.sequential(plan.suites[suite]!.name, () => {
        body()
        // Filters may select only some steps: once they are done, the rest of the run is not needed.
        afterAll(() => runs[suite]?.abort())
      })
    },
    test(_name, suite, index) {
      const planned = plan.suites[suite]!.tests[index]!
      test(planned.name, async (context) => {
        // What clnrm run and dev print as warnings, where Vitest's reporters show annotations.
        if (index === 0) for (const warning of plan.warnings ?? []) await context.annotate(warning, 'warning')
        const run = runs[suite] ??= startRun(plan, plan.suites[suite]!)
        const outcome = await run.outcome(planned, index)
        if (outcome.kind === 'skip') context.skip(outcome.note)
        else if (outcome.kind === 'fail') throw at(outcome.error, plan.file, outcome.at ?? planned.at)
      }, planned.timeoutMs)
    },
    invalidTest(name) {
      test(name, () => {
        throw at(clnrmError('InvalidTestFile', plan.invalid?.message ?? 'the file could not be loaded'), plan.file, plan.invalid?.at ?? plan.suites[0]!.at)
      })
    },
  }
}

interface RunStream {
  outcome: (planned: PlannedTest, index: number) => Promise<Outcome>
  abort: () => void
}

/** Starts the run in the main process and follows its NDJSON answer. */
function startRun(plan: FilePlan, suite: PlannedSuite): RunStream {
  const steps: StepResult[] = []
  let result: TestResult | undefined
  let failure: { code?: string; message: string; hint?: string } | undefined
  let reported = false
  let settled = false
  const waiters = new Set<() => void>()
  const wake = (): void => {
    for (const waiter of waiters) waiter()
  }
  const controller = new AbortController()

  const follow = async (): Promise<void> => {
    const server = (inject as unknown as (key: string) => RunServerInfo | undefined)(SERVER_KEY)
    if (!server) throw new Error('the clnrm run server is not running: add clnrm() from clnrm/vitest to the plugins of this Vitest project')
    const request: RunRequest = { file: plan.file, ...(suite.variant !== undefined && { variant: suite.variant }), steps: suite.tests.filter(t => t.kind === 'step').map(t => t.name) }
    await postForLines(`${server.url}/run`, server.token, JSON.stringify(request), controller.signal, (line) => {
      const message = JSON.parse(line) as RunMessage
      if (message.type === 'step') steps[message.index] = message.step
      else if (message.type === 'done') result = message.result
      else failure = { code: message.code, message: message.message, hint: message.hint }
      wake()
    })
  }
  follow().catch((error: unknown) => {
    if (!controller.signal.aborted) failure ??= { message: `the clnrm run server could not be reached: ${(error as Error).message}` }
  }).finally(() => {
    settled = true
    wake()
  })

  // The first test that meets a run that could not run reports why; the later ones are skipped.
  const runFailed = (): Outcome => {
    const problem = failure ?? result?.error ?? { message: 'the run ended without a result' }
    if (reported) return { kind: 'skip', note: 'the clnrm test could not run' }
    reported = true
    return { kind: 'fail', error: clnrmError(problem.code ?? 'ClnrmRunError', `${problem.message}${problem.hint ? `\nhint: ${problem.hint}` : ''}`) }
  }

  const decide = (planned: PlannedTest, index: number): Outcome | undefined => {
    if (planned.kind === 'step') {
      const step = steps[index] ?? result?.steps[index]
      if (step) return stepOutcome(step)
      if (failure || result || settled) return runFailed()
      return undefined
    }
    if (!result && !failure && !settled) return undefined
    if (!result || result.status === 'error') return runFailed()
    if (planned.kind === 'spans') {
      if (!result.spans) return { kind: 'skip', note: 'no span verdict: the run stopped early' }
      const failures = result.spans.failures
      return failures.length
        ? { kind: 'fail', error: clnrmError('SpanRuleFailure', failures.map(f => `span rule ${f.rule} did not hold: ${f.actual}\nexpected ${f.expected}${f.closest ? `\nclosest: ${f.closest.name} in ${f.closest.service}${f.closest.differences.map(d => `\n  ≠ ${d}`).join('')}` : ''}`).join('\n\n')) }
        : { kind: 'pass' }
    }
    const judged = result.steps.slice(suite.tests.filter(t => t.kind === 'step').length)
    const failed = judged.filter(s => s.status === 'fail')
    return failed.length ? { kind: 'fail', error: clnrmError('AssertionFailure', failed.map(s => s.failure?.message ?? s.name).join('\n')) } : { kind: 'pass' }
  }

  return {
    outcome: (planned, index) => new Promise((resolve) => {
      const check = (): void => {
        const outcome = decide(planned, index)
        if (!outcome) return
        waiters.delete(check)
        resolve(outcome)
      }
      waiters.add(check)
      check()
    }),
    abort: () => {
      if (!settled) controller.abort()
    },
  }
}

/**
 * POSTs to the run server and calls `onLine` per NDJSON line. node:http, not fetch: a worker is
 * often a fresh process, and its first fetch loads undici, tens of ms on every rerun.
 */
function postForLines(url: string, token: string, body: string, signal: AbortSignal, onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'authorization': `Bearer ${token}`, 'content-type': 'application/json' }, signal }, (res) => {
      let buffer = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buffer += chunk
        let newline: number
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, newline)
          buffer = buffer.slice(newline + 1)
          if (res.statusCode === 200) onLine(line)
        }
      })
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`the clnrm run server answered ${res.statusCode}: ${buffer}`))))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

function stepOutcome(step: StepResult): Outcome {
  if (step.status === 'pass') return { kind: 'pass' }
  if (step.status === 'skipped') return { kind: 'skip', note: 'an earlier step failed' }
  const failure = step.failure
  const lines = [failure?.message ?? 'the step failed']
  // The expectation as written (`expected_output_regex = "^ok"`), as every other view shows it.
  if (failure?.expectation) lines.push(failure.expectation)
  if (failure?.excerpt) lines.push('', failure.excerpt)
  // The failing key's line when the run located it (`expected_output_regex`), else the step's.
  return { kind: 'fail', error: clnrmError('StepFailure', lines.join('\n')), ...(failure?.location && { at: failure.location }) }
}

/**
 * Gives the error one stack frame: the step's line in the TOML, so Vitest shows its code frame
 * (a stack set by hand is read as written, not through the module's source map).
 */
function at(error: Error, file: string, position: SourcePosition): Error {
  error.stack = `${error.stack}\n    at ${file}:${position.line}:${position.column}`
  return error
}

/** An error whose stack is its message alone: the frames of this runtime say nothing about the test. */
function clnrmError(name: string, message: string): Error {
  const error = new Error(message)
  error.name = name
  error.stack = `${name}: ${message}`
  return error
}
