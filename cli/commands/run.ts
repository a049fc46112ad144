import { constants } from 'node:fs'
import { access, stat, writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { dirname, resolve } from 'node:path'
import { ContainerPool, EngineUnavailableError, formatJsonReport, formatJunitReport, hasErrors, runTest, summarize } from '../../core/index.ts'
import type { RunReport, SkippedTest, TestResult, TestSpec } from '../../core/index.ts'
import type { CommandDef } from '../command.ts'
import { VAR_OPTION } from '../command.ts'
import type { CommandContext } from '../context.ts'
import type { Interrupt } from '../errors.ts'
import { EXIT, INTERRUPT_EXIT, UsageError } from '../errors.ts'
import { displayPath, formatDiagnostic, formatEngineError, plural } from '../output.ts'
import { loadTestFiles } from '../project.ts'
import { createProgress, formatInvalidFile, formatSkippedTest, formatSummary, formatTestResult } from '../run-output.ts'

/** `--shard i/n`: the files this machine runs, chosen by position in the sorted list. */
export function parseShard(value: string): { index: number; count: number } {
  const match = /^(\d+)\/(\d+)$/.exec(value)
  const index = Number(match?.[1])
  const count = Number(match?.[2])
  if (!match || count < 1 || index < 1 || index > count) throw new UsageError(`--shard expects i/n with 1 ≤ i ≤ n, got "${value}"`, 'Example: --shard 2/4 runs the second quarter of the files.')
  return { index, count }
}

/** `clnrm run`: every step inside its service's container. */
export const runCommand: CommandDef = {
  name: 'run',
  args: '[paths...]',
  summary: 'Run tests: start their services (reusing containers), run every step inside them, report.',
  details: 'Test files run concurrently (-j), sharing one container pool; every container is removed at the end.\nAn invalid test file is reported as a failed file with its diagnostics; every valid file still runs.\nWith --fail-fast, tests cancelled by the first failure and files never started are reported as skipped.',
  examples: ['clnrm run', 'clnrm run tests/ -j 4 --fail-fast', 'clnrm run --shard 1/3 --reporter junit --output junit.xml'],
  options: {
    'jobs': { type: 'string', short: 'j', value: '<n>', description: 'Test files run at once (default: the number of CPUs)' },
    'fail-fast': { type: 'boolean', description: 'Stop at the first failing test; the rest are reported as skipped' },
    'shard': { type: 'string', value: '<i/n>', description: 'Run the i-th of n deterministic slices of the files' },
    'reporter': { type: 'string', value: '<human|json|junit>', description: 'Output format', default: 'human' },
    'output': { type: 'string', short: 'o', value: '<file>', description: 'Write the json/junit report to a file (human output still streams); its directory must exist' },
    ...VAR_OPTION,
  },
  async run(args, ctx) {
    const reporter = args.options.reporter as string
    if (!['human', 'json', 'junit'].includes(reporter)) throw new UsageError(`Unknown reporter "${reporter}"`, 'Use human, json or junit.')
    const jobs = args.options.jobs === undefined ? availableParallelism() : Number(args.options.jobs)
    if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`-j expects a positive integer, got "${args.options.jobs}"`)
    const shard = args.options.shard === undefined ? undefined : parseShard(args.options.shard as string)
    const output = args.options.output === undefined ? undefined : resolve(ctx.cwd, args.options.output as string)
    // Before anything runs: a report that cannot be written would lose the whole run's results.
    if (output) await checkOutputPath(ctx, output)
    const human = reporter === 'human' || output !== undefined
    const failFast = args.options['fail-fast'] === true

    const started = performance.now()
    const { project, results } = await loadTestFiles(args, ctx)
    const selected = shard ? results.filter((_, i) => i % shard.count === shard.index - 1) : results
    const invalid = selected.filter(r => hasErrors(r.diagnostics))
    const valid = selected.filter(r => !hasErrors(r.diagnostics))
    // Diagnostics go to stderr; an invalid file is also a result: a failed file, in the report and the summary.
    for (const r of selected) for (const d of r.diagnostics) ctx.stderr(formatDiagnostic(ctx, d))
    if (human) for (const r of invalid) ctx.stdout(formatInvalidFile(ctx, r.file, []))

    const tests: TestResult[] = []
    const skipped: SkippedTest[] = []
    let interrupted: Interrupt | undefined
    if (valid.length) {
      const progress = createProgress(ctx)
      let pool: ContainerPool
      try {
        pool = await ContainerPool.create({ onEvent: progress.onEvent })
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
        // A [matrix] file runs once per combination, each a test of its own in the reports.
        const queue = valid.flatMap(r => ((r.spec as TestSpec).variants ?? [r.spec as TestSpec])
          .map(spec => ({ spec, load: r.timings, source: r.toml === undefined ? undefined : { toml: r.toml } })))
        const worker = async (): Promise<void> => {
          for (let next = queue.shift(); next; next = queue.shift()) {
            if (controller.signal.aborted) {
              skipped.push({ file: next.spec.file, name: next.spec.name, reason: 'not-run', message: `not started: the run was stopped ${stopped}` })
              continue
            }
            const result = await runTest(next.spec, { pool, signal: controller.signal, load: next.load, source: next.source })
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
            if (result.status !== 'pass' && failFast) stop(`by --fail-fast ("${result.name}" ${result.status === 'fail' ? 'failed' : 'could not run'})`)
          }
        }
        await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, worker))
      }
      finally {
        progress.clear()
        await pool.close()
        unsubscribe?.()
      }
    }

    const summary = summarize(tests, { invalid: invalid.length, skipped: skipped.length }, performance.now() - started)
    if (human) ctx.stdout(formatSummary(ctx, summary))
    if (failFast && skipped.length && !interrupted) {
      const cancelled = skipped.filter(s => s.reason === 'cancelled').length
      const notRun = skipped.length - cancelled
      ctx.stderr(ctx.c.dim(`--fail-fast: stopped after the first failure; ${plural(cancelled, 'test')} cancelled, ${plural(notRun, 'test file')} never started\n`))
    }
    const report: RunReport = { summary, tests, invalid: invalid.map(r => ({ file: r.file, diagnostics: r.diagnostics })), skipped }
    if (reporter !== 'human') {
      const text = reporter === 'json' ? formatJsonReport(report) : formatJunitReport(report, project.root)
      if (!output) ctx.stdout(text)
      else {
        try {
          await writeFile(output, text)
        }
        catch (error) {
          ctx.stderr(`${ctx.c.red('error')} could not write the report to ${displayPath(ctx, output)}: ${(error as Error).message}\n`)
          return EXIT.usage
        }
      }
    }
    if (interrupted) return INTERRUPT_EXIT[interrupted]
    return summary.failed || summary.errors || summary.invalid ? EXIT.failure : EXIT.ok
  },
}

/** `--output`: its directory must exist and be writable, and the path must not be a directory. */
async function checkOutputPath(ctx: CommandContext, path: string): Promise<void> {
  const dir = dirname(path)
  const shown = displayPath(ctx, path)
  const info = await stat(dir).catch(() => undefined)
  if (!info?.isDirectory()) throw new UsageError(`--output ${shown}: the directory ${displayPath(ctx, dir)} does not exist`, 'Create it first (mkdir -p), or write the report elsewhere.')
  try {
    await access(dir, constants.W_OK)
  }
  catch {
    throw new UsageError(`--output ${shown}: the directory ${displayPath(ctx, dir)} is not writable`, 'Write the report elsewhere.')
  }
  if ((await stat(path).catch(() => undefined))?.isDirectory()) throw new UsageError(`--output ${shown} is a directory`, 'Name a file, e.g. --output reports/junit.xml.')
}
