import { writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import { ContainerPool, EngineUnavailableError, formatJsonReport, formatJunitReport, hasErrors, runTest, summarize } from '../../core/index.ts'
import type { RunReport, TestResult, TestSpec } from '../../core/index.ts'
import type { CommandDef } from '../command.ts'
import { VAR_OPTION } from '../command.ts'
import type { CommandContext } from '../context.ts'
import { EXIT, UsageError } from '../errors.ts'
import { formatDiagnostic, formatEngineError } from '../output.ts'
import { loadTestFiles } from '../project.ts'
import { createProgress, formatSummary, formatTestResult } from '../run-output.ts'

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
  details: 'Test files run concurrently (-j), sharing one container pool; every container is removed at the end.\nExits 1 when a test fails, 2 when a file is invalid, the engine is unreachable, or the usage is wrong.',
  examples: ['clnrm run', 'clnrm run tests/ -j 4 --fail-fast', 'clnrm run --shard 1/3 --reporter junit --output junit.xml'],
  options: {
    'jobs': { type: 'string', short: 'j', value: '<n>', description: 'Test files run at once (default: the number of CPUs)' },
    'fail-fast': { type: 'boolean', description: 'Stop at the first failing test' },
    'shard': { type: 'string', value: '<i/n>', description: 'Run the i-th of n deterministic slices of the files' },
    'reporter': { type: 'string', value: '<human|json|junit>', description: 'Output format', default: 'human' },
    'output': { type: 'string', short: 'o', value: '<file>', description: 'Write the json/junit report to a file (human output still streams)' },
    ...VAR_OPTION,
  },
  async run(args, ctx) {
    const reporter = args.options.reporter as string
    if (!['human', 'json', 'junit'].includes(reporter)) throw new UsageError(`Unknown reporter "${reporter}"`, 'Use human, json or junit.')
    const jobs = args.options.jobs === undefined ? availableParallelism() : Number(args.options.jobs)
    if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`-j expects a positive integer, got "${args.options.jobs}"`)
    const shard = args.options.shard === undefined ? undefined : parseShard(args.options.shard as string)
    const output = args.options.output as string | undefined
    const human = reporter === 'human' || output !== undefined

    const started = performance.now()
    const { project, results } = await loadTestFiles(args, ctx)
    const selected = shard ? results.filter((_, i) => i % shard.count === shard.index - 1) : results
    const invalid = selected.filter(r => hasErrors(r.diagnostics))
    for (const r of selected) for (const d of r.diagnostics) ctx.stderr(formatDiagnostic(ctx, d))
    if (invalid.length) {
      ctx.stderr(ctx.c.red(`\n${invalid.length} invalid test file${invalid.length === 1 ? '' : 's'}: nothing was run.\n`))
      await writeReport({ summary: summarize([], invalid.length, 0), tests: [], invalid: invalid.map(r => ({ file: r.file, diagnostics: r.diagnostics })) })
      return EXIT.usage
    }

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
    const onSignal = (signal: NodeJS.Signals): void => {
      interrupted = signal
      controller.abort()
    }
    let interrupted: NodeJS.Signals | undefined
    // Persistent listeners, not once(): testcontainers loads signal-exit, which kills the process
    // on a signal when it is the last listener left, before our cleanup could finish.
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    const tests: TestResult[] = []
    try {
      const queue = selected.map(r => ({ spec: r.spec as TestSpec, load: r.timings }))
      const worker = async (): Promise<void> => {
        for (let next = queue.shift(); next && !controller.signal.aborted; next = queue.shift()) {
          const result = await runTest(next.spec, { pool, signal: controller.signal, load: next.load })
          if (result.aborted && interrupted) return
          tests.push(result)
          progress.clear()
          if (human) ctx.stdout(formatTestResult(ctx, result))
          if (result.status !== 'pass' && args.options['fail-fast']) controller.abort()
        }
      }
      await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, worker))
    }
    finally {
      progress.clear()
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      await pool.close()
    }

    const summary = summarize(tests, 0, performance.now() - started)
    if (human) ctx.stdout(formatSummary(ctx, summary))
    if (args.options['fail-fast'] && tests.length < selected.length && !interrupted) {
      ctx.stderr(ctx.c.dim(`--fail-fast: ${selected.length - tests.length} test file(s) not run\n`))
    }
    await writeReport({ summary, tests, invalid: [] })
    if (interrupted) return interrupted === 'SIGINT' ? 130 : 143
    return summary.failed || summary.errors ? EXIT.failure : EXIT.ok

    async function writeReport(report: RunReport): Promise<void> {
      if (reporter === 'human') return
      const text = reporter === 'json' ? formatJsonReport(report) : formatJunitReport(report, project.root)
      if (output) await writeFile(resolve(ctx.cwd, output), text)
      else ctx.stdout(text)
    }
  },
}
