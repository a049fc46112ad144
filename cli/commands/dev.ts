import { basename } from 'node:path'
import { createDevSession, DEFAULT_DEBOUNCE_MS, EngineUnavailableError, feedChanges } from '../../core/index.ts'
import type { DevEvents } from '../../core/index.ts'
import type { CommandDef } from '../command.ts'
import { VAR_OPTION } from '../command.ts'
import type { CommandContext } from '../context.ts'
import { EXIT, UsageError } from '../errors.ts'
import { humanDevReporter, ndjsonDevReporter } from '../dev-output.ts'
import { formatEngineError } from '../output.ts'
import { projectRootFor, varsFrom } from '../project.ts'

const IGNORED_DIRS = /(?:^|[\\/])(?:\.git|node_modules)(?:[\\/]|$)/

/** Editor scratch files: vim's swap files and write test (4913), emacs' lock and backup files, our own temp files. */
export function isIgnoredPath(path: string): boolean {
  if (IGNORED_DIRS.test(path)) return true
  const name = basename(path)
  return name === '4913' || name.endsWith('~') || name.startsWith('.#') || /\.(?:swp|swx|swo|tmp)$/.test(name)
}

/** `clnrm dev`: the hot-reload loop. */
export const devCommand: CommandDef = {
  name: 'dev',
  args: '[paths...]',
  summary: 'Run tests, then rerun exactly the affected ones on every save, in warm containers.',
  details: 'Watches the tests, clnrm.toml and every input the tests use (partials, [watch] files, volume host paths).\nKeys in a terminal: r reruns all, f reruns failed, q quits. Ctrl-C quits too; containers are removed either way.',
  examples: ['clnrm dev', 'clnrm dev tests/api --debounce 50', 'clnrm dev --reporter ndjson'],
  options: {
    'debounce': { type: 'string', value: '<ms>', description: 'Quiet window after a save before tests rerun', default: String(DEFAULT_DEBOUNCE_MS) },
    'jobs': { type: 'string', short: 'j', value: '<n>', description: 'Test files run at once (default: the number of CPUs)' },
    'reporter': { type: 'string', value: '<human|ndjson>', description: 'Output format', default: 'human' },
    'verbose': { type: 'boolean', description: 'Show the full timing breakdown after each reload' },
    'budget': { type: 'string', value: '<ms>', description: 'Notes tests slower than this', default: '1000' },
    ...VAR_OPTION,
  },
  async run(args, ctx) {
    const reporterName = args.options.reporter as string
    if (reporterName !== 'human' && reporterName !== 'ndjson') throw new UsageError(`Unknown reporter "${reporterName}"`, 'Use human or ndjson.')
    const number = (name: string, min: number): number | undefined => {
      const raw = args.options[name] as string | undefined
      if (raw === undefined) return undefined
      const value = Number(raw)
      if (!Number.isFinite(value) || value < min) throw new UsageError(`--${name} expects a number ≥ ${min}, got "${raw}"`)
      return value
    }
    const vars = varsFrom(args)
    const { watch } = await import('chokidar')
    let watcher: ReturnType<typeof watch> | undefined
    const session = createDevSession({
      tests: args.positionals,
      cwd: ctx.cwd,
      root: projectRootFor(args, ctx),
      vars,
      debounceMs: number('debounce', 0),
      jobs: number('jobs', 1),
      env: ctx.env,
      startWatching: async (paths) => {
        watcher = watch(paths, { ignoreInitial: true, ignored: isIgnoredPath })
        feedChanges(watcher, path => session.notify([path]), isIgnoredPath)
        watcher.on('error', error => ctx.stderr(`${ctx.c.yellow('watcher')} ${String(error)}\n`))
        await new Promise<void>(resolve => watcher!.once('ready', () => resolve()))
      },
    })
    session.events.on('watch:add', ({ paths }) => void watcher?.add(paths))
    const reporter = reporterName === 'ndjson' ? ndjsonDevReporter(ctx) : humanDevReporter(ctx, { verbose: args.options.verbose === true, budgetMs: number('budget', 0) ?? 1000 })
    for (const [type, handler] of Object.entries(reporter.on)) session.events.on(type as keyof DevEvents, handler as (payload: unknown) => void)

    let finish!: (code: number) => void
    const done = new Promise<number>(resolve => (finish = resolve))
    let stopping = false
    const stop = (code: number): void => {
      if (stopping) return
      stopping = true
      finish(code)
    }

    // Whoever reads our output went away (a closed pipe): nothing more can be shown, so stop.
    const onOutputError = (error: NodeJS.ErrnoException): void => {
      if (error.code === 'EPIPE') stop(EXIT.ok)
    }
    process.stdout.on('error', onOutputError)
    // Installed before the first run, so Ctrl-C while containers start still cleans up; and
    // persistent, not once(): testcontainers loads signal-exit, which kills the process on a
    // signal when it is the last listener left, before our cleanup could finish.
    const onSignal = (): void => stop(EXIT.ok)
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    try {
      await Promise.race([session.start(), done])
    }
    catch (error) {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      await Promise.allSettled([watcher?.close(), session.close()])
      if (stopping) return EXIT.ok
      if (error instanceof EngineUnavailableError) {
        ctx.stderr(formatEngineError(ctx, error))
        return EXIT.usage
      }
      throw error
    }

    const stdin = process.stdin
    const keys = ctx.isTTY && stdin.isTTY
    const onKey = (data: Buffer): void => {
      const key = data.toString()
      if (key === 'q' || key === '\u0003') stop(EXIT.ok)
      else if (key === 'r') session.rerun('all')
      else if (key === 'f') session.rerun('failed')
    }
    if (keys) {
      stdin.setRawMode(true)
      stdin.resume()
      stdin.on('data', onKey)
    }
    else {
      // Piped stdin (tools, tests): a line "q" quits, and end of input is ignored.
      stdin.on('data', (data: Buffer) => {
        for (const line of data.toString().split('\n')) if (line.trim()) onKey(Buffer.from(line.trim()))
      })
    }

    const code = await done
    process.stdout.off('error', onOutputError)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    if (keys) stdin.setRawMode(false)
    stdin.removeAllListeners('data')
    stdin.pause()
    await Promise.allSettled([watcher?.close(), session.close()])
    if (reporterName === 'human') ctx.stdout(ctx.c.dim('\nstopped; containers removed\n'))
    return code
  },
}
