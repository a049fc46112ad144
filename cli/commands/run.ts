import { availableParallelism } from 'node:os'
import { ContainerPool, EngineUnavailableError, hasErrors, runTest, summarize, variantSource } from '../../core/index.ts'
import type { LoadedTestFile, PullRecord, RunReport, SkippedTest, TestResult, TestSpec } from '../../core/index.ts'
import type { CommandDef } from '../command.ts'
import { VAR_OPTION } from '../command.ts'
import type { Interrupt } from '../errors.ts'
import { EXIT, INTERRUPT_EXIT, UsageError } from '../errors.ts'
import { compileNamePattern, selectSteps } from '../filters.ts'
import { LAST_FAILED_FILE, recordLastFailed } from '../last-failed.ts'
import { formatDiagnostic, formatEngineError, plural } from '../output.ts'
import { fileReportConflict, writeFileReports } from '../file-reports.ts'
import { checkOutputPaths, planReporters, writeReports } from '../reporters.ts'
import { createProgress, formatInvalidFile, formatSkippedTest, formatSummary, formatTestResult } from '../run-output.ts'
import { selectTestFiles } from '../run-select.ts'

/** `--shard i/n`: the files this machine runs, chosen by position in the sorted list. */
export function parseShard(value: string): { index: number; count: number } {
  const match = /^(\d+)\/(\d+)$/.exec(value)
  const index = Number(match?.[1])
  const count = Number(match?.[2])
  if (!match || count < 1 || index < 1 || index > count) throw new UsageError(`--shard expects i/n with 1 ≤ i ≤ n, got "${value}"`, 'Example: --shard 2/4 runs the second quarter of the files.')
  return { index, count }
}

/** `--bail N` (and `--fail-fast`, which is `--bail 1`): how many failed tests stop the run. */
export function parseBail(options: Record<string, unknown>): { count: number; flag: string } | undefined {
  const failFast = options['fail-fast'] === true
  const raw = options.bail as string | undefined
  if (raw === undefined) return failFast ? { count: 1, flag: '--fail-fast' } : undefined
  const count = Number(raw)
  if (!/^\d+$/.test(raw) || count < 1) throw new UsageError(`--bail expects a positive integer, got "${raw}"`, 'Example: --bail 3 stops after the third failed test.')
  if (failFast && count !== 1) throw new UsageError(`--fail-fast is --bail 1; it cannot go with --bail ${raw}`, 'Keep one of them.')
  return { count, flag: failFast ? '--fail-fast' : `--bail ${count}` }
}

/** `clnrm run`: every step inside its service's container. */
export const runCommand: CommandDef = {
  name: 'run',
  args: '[paths or filters...]',
  summary: 'Run tests: start their services (reusing containers), run every step inside them, report.',
  details: [
    'Test files run concurrently (-j), sharing one container pool; every container is removed at the end, except with --reuse:',
    'idle single-service containers are then left for the next run, which claims them (never two runs in one container).',
    'An argument that is not an existing path (nor a glob) filters test files by substring of their path',
    'relative to the project root, as Vitest does: `clnrm run hello` runs every file whose path holds "hello".',
    '-t <regex> runs only the steps whose full name (test name, a space, step name) matches; the others are',
    'reported as skipped ("filtered out"), never as passed, and tests with no matching step are skipped.',
    'An invalid test file is reported as a failed file with its diagnostics; every valid file still runs.',
    'With --fail-fast or --bail, tests cancelled by the stop and files never started are reported as skipped.',
    `Every run records the files that failed in ${LAST_FAILED_FILE}; --last-failed runs only those.`,
    'Under GITHUB_ACTIONS=true the github reporter (annotations, job summary) runs beside the default one.',
  ].join('\n'),
  examples: [
    'clnrm run',
    'clnrm run hello api -t "login"',
    'clnrm run tests/ -j 4 --bail 3',
    'clnrm run --changed=main',
    'clnrm run --last-failed',
    'clnrm run --shard 1/3 --reporter junit --output junit.xml',
    'clnrm run --reporter default --reporter junit --output junit=reports/junit.xml',
  ],
  options: {
    'jobs': { type: 'string', short: 'j', value: '<n>', description: 'Test files run at once (default: the number of CPUs)' },
    'reuse': { type: 'boolean', description: 'Leave idle containers running for the next run and claim those an earlier run left (clnrm.toml: reuse = true); each run still gets its own container, fresh workdir and reset' },
    'fail-fast': { type: 'boolean', description: 'Stop at the first failing test (--bail 1); the rest are reported as skipped' },
    'test-name-pattern': { type: 'string', short: 't', value: '<regex>', description: 'Run only tests and steps whose name matches; the rest are skipped (filtered out)' },
    'bail': { type: 'string', value: '<n>', description: 'Stop after n failed tests; the rest are reported as skipped' },
    'changed': { type: 'string', value: '[=ref]', implicit: 'HEAD', description: 'Only test files changed against HEAD (or ref), untracked ones, and tests whose partials, [watch] files or modules changed' },
    'last-failed': { type: 'boolean', description: `Only the test files that failed when last run (recorded in ${LAST_FAILED_FILE}); all when none` },
    'shard': { type: 'string', value: '<i/n>', description: 'Run the i-th of n deterministic slices of the files' },
    'reporter': { type: 'string', multiple: true, value: '<name>', description: 'default, json, junit or github; repeatable (default: default)' },
    'output': { type: 'string', short: 'o', multiple: true, value: '<file>', description: 'Write the json/junit report to a file (human output still streams); with several reporters, name one: junit=path (repeatable); its directory must exist' },
    ...VAR_OPTION,
  },
  async run(args, ctx) {
    const reporters = planReporters(args, ctx)
    const jobs = args.options.jobs === undefined ? availableParallelism() : Number(args.options.jobs)
    if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`-j expects a positive integer, got "${args.options.jobs}"`)
    const shard = args.options.shard === undefined ? undefined : parseShard(args.options.shard as string)
    const bail = parseBail(args.options)
    const patternText = args.options['test-name-pattern'] as string | undefined
    const pattern = patternText === undefined ? undefined : compileNamePattern(patternText)
    // Before anything runs: a report that cannot be written would lose the whole run's results.
    await checkOutputPaths(ctx, reporters)
    const { human } = reporters

    const started = performance.now()
    const selection = await selectTestFiles(args, ctx)
    if ('none' in selection) {
      ctx.stderr(selection.code ? `${ctx.c.red(selection.none)}` : ctx.c.yellow(selection.none))
      return selection.code
    }
    const { project } = selection
    for (const note of selection.notes) ctx.stderr(ctx.c.dim(`${note}\n`))
    const selected = shard ? selection.results.filter((_, i) => i % shard.count === shard.index - 1) : selection.results
    const invalid = selected.filter(r => hasErrors(r.diagnostics))
    const valid = selected.filter(r => !hasErrors(r.diagnostics))
    // Before anything runs, as for --output: two files' [report] naming one file would lose results.
    const reportConflict = fileReportConflict(valid.map(r => r.spec as TestSpec))
    if (reportConflict) throw new UsageError(reportConflict, 'Give each test file its own [report] paths.')
    // Diagnostics go to stderr; an invalid file is also a result: a failed file, in the report and the summary.
    for (const r of selected) for (const d of r.diagnostics) ctx.stderr(formatDiagnostic(ctx, d))
    if (human) for (const r of invalid) ctx.stdout(formatInvalidFile(ctx, r.file, []))

    const tests: TestResult[] = []
    const skipped: SkippedTest[] = []
    // -t: tests with no matching step are skipped before anything starts for them.
    const queue: Array<{ spec: TestSpec; load: LoadedTestFile['timings']; source?: { toml: string }; steps: Set<number> }> = []
    // A [matrix] file runs once per combination, each a test of its own in the reports.
    for (const r of valid) for (const spec of (r.spec as TestSpec).variants ?? [r.spec as TestSpec]) {
      const steps = selectSteps(spec, pattern)
      if (steps.length) queue.push({ spec, load: r.timings, ...(r.toml !== undefined && { source: variantSource(spec, { toml: r.toml }) }), steps: new Set(steps) })
      else skipped.push({ file: spec.file, name: spec.name, reason: 'filtered', message: `filtered out: no step matches -t ${patternText}` })
    }
    if (pattern && !queue.length && !invalid.length) {
      ctx.stderr(ctx.c.red(`No test found for -t ${JSON.stringify(patternText)} in ${plural(valid.length, 'test file')}, exiting with code 1\n`))
      return EXIT.failure
    }

    let interrupted: Interrupt | undefined
    let failures = 0
    let pulls: readonly PullRecord[] = []
    // Containers are removed while the summary and reports are written: results come first,
    // and the exit still waits for the removal (`done`).
    let teardown: Promise<void> = Promise.resolve()
    const done = async (code: number): Promise<number> => {
      await teardown
      return code
    }
    if (queue.length) {
      const progress = createProgress(ctx)
      let pool: ContainerPool
      try {
        // Every image the selected tests need, at once (`plan`): missing ones pull in parallel while
        // tests with local images already run, and a test needing a pulling image joins its pull.
        pool = await ContainerPool.create({ onEvent: progress.onEvent, reuseAcrossRuns: args.options.reuse === true || project.reuse === true, reuseIdleTimeoutMs: project.reuseIdleTimeoutMs, plan: queue.map(q => q.spec) })
      }
      catch (error) {
        if (!(error instanceof EngineUnavailableError)) throw error
        ctx.stderr(formatEngineError(ctx, error))
        return EXIT.usage
      }

      const controller = new AbortController()
      let stopped: string | undefined
      const stop = (why: string): void => {
        stopped ??= why
        controller.abort()
      }
      // Subscribed until the pool is closed: a second Ctrl-C during cleanup forces the exit.
      const unsubscribe = ctx.interrupts?.on((reason) => {
        interrupted = reason
        if (reason !== 'EPIPE') ctx.stderr(ctx.c.yellow(`\nstopping: removing containers (Ctrl-C again exits at once)\n`))
        stop(reason === 'EPIPE' ? 'because stdout was closed' : `by ${reason}`)
      })
      try {
        const worker = async (): Promise<void> => {
          for (let next = queue.shift(); next; next = queue.shift()) {
            if (controller.signal.aborted) {
              skipped.push({ file: next.spec.file, name: next.spec.name, reason: 'not-run', message: `not started: the run was stopped ${stopped}` })
              continue
            }
            const steps = next.steps
            const all = steps.size === next.spec.steps.length
            const result = await runTest(next.spec, { pool, signal: controller.signal, load: next.load, source: next.source, ...(!all && { selectStep: (_, i) => steps.has(i) }) })
            progress.clear()
            if (result.aborted) {
              // Cancelled, not failed: its failure would only be the kill we caused.
              const entry: SkippedTest = { file: result.file, name: result.name, reason: 'cancelled', message: `cancelled ${stopped}` }
              skipped.push(entry)
              if (human && !interrupted) ctx.stdout(formatSkippedTest(ctx, entry))
              continue
            }
            tests.push(result)
            if (human) ctx.stdout(formatTestResult(ctx, result))
            if (result.status !== 'pass' && bail && ++failures >= bail.count) {
              stop(bail.count === 1 ? `by ${bail.flag} ("${result.name}" ${result.status === 'fail' ? 'failed' : 'could not run'})` : `by ${bail.flag} (${failures} tests failed)`)
            }
          }
        }
        await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, worker))
      }
      catch (error) {
        progress.clear()
        pulls = pool.pulls
        await pool.close()
        unsubscribe?.()
        throw error
      }
      progress.clear()
      pulls = pool.pulls
      teardown = pool.close().finally(() => unsubscribe?.())
    }

    const summary = summarize(tests, { invalid: invalid.length, skipped: skipped.length }, performance.now() - started)
    const filteredSteps = tests.reduce((n, t) => n + t.steps.filter(s => s.filtered).length, 0)
    const filteredTests = skipped.filter(s => s.reason === 'filtered').length
    const notes: string[] = []
    if (filteredSteps || filteredTests) notes.push(`${[filteredTests && plural(filteredTests, 'test'), filteredSteps && plural(filteredSteps, 'step')].filter(Boolean).join(' and ')} filtered out by -t (not run, not counted as passed)`)
    if (bail && !interrupted) {
      const cancelled = skipped.filter(s => s.reason === 'cancelled').length
      // Files, not tests: a [matrix] file never started is one file of several tests.
      const notRun = new Set(skipped.filter(s => s.reason === 'not-run').map(s => s.file)).size
      if (cancelled) notes.push(`${plural(cancelled, 'test')} cancelled (${bail.flag})`)
      if (notRun) notes.push(`${plural(notRun, 'file')} not run (${bail.flag})`)
    }
    if (human) ctx.stdout(formatSummary(ctx, summary, notes))
    else if (filteredSteps || filteredTests) ctx.stderr(ctx.c.dim(`${notes[0]}\n`))
    const stoppedBy = skipped.filter(s => s.reason !== 'filtered')
    if (bail && stoppedBy.length && !interrupted) {
      const cancelled = stoppedBy.filter(s => s.reason === 'cancelled').length
      ctx.stderr(ctx.c.dim(`${bail.flag}: stopped after ${bail.count === 1 ? 'the first failure' : `${bail.count} failures`}; ${plural(cancelled, 'test')} cancelled, ${plural(stoppedBy.length - cancelled, 'test file')} never started\n`))
    }

    await recordLastFailed(project.root, [
      ...tests.map(t => ({ file: t.file, failed: t.status !== 'pass', passed: t.status === 'pass' && !t.steps.some(s => s.filtered) })),
      ...invalid.map(r => ({ file: r.file, failed: true, passed: false })),
    ])
    const report: RunReport = { summary, tests, invalid: invalid.map(r => ({ file: r.file, diagnostics: r.diagnostics })), skipped, ...(shard && { shard: { index: shard.index, total: shard.count } }), ...(pulls.length ? { pulls: [...pulls] } : {}) }
    if (reporters.machine.length) {
      const warnings = valid.flatMap(r => r.diagnostics.filter(d => d.severity === 'warning'))
      if (!await writeReports(ctx, reporters, report, { root: project.root, warnings })) return done(EXIT.usage)
    }
    if (!interrupted && !await writeFileReports(ctx, valid.map(r => r.spec as TestSpec), report, project.root)) return done(EXIT.usage)
    if (interrupted) return done(INTERRUPT_EXIT[interrupted])
    return done(summary.failed || summary.errors || summary.invalid ? EXIT.failure : EXIT.ok)
  },
}
