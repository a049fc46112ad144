import { basename } from 'node:path'
import { createDevSession, DEFAULT_DEBOUNCE_MS, EngineUnavailableError, feedChanges } from '../../core/index.ts'
import type { DevEvents } from '../../core/index.ts'
import type { CommandDef } from '../command.ts'
import { VAR_OPTION } from '../command.ts'
import type { CommandContext } from '../context.ts'
import { EXIT, INTERRUPT_EXIT, UsageError } from '../errors.ts'
import { createModuleWatch } from '../dev-modules.ts'
import { humanDevReporter, ndjsonDevReporter } from '../dev-output.ts'
import { formatEngineError } from '../output.ts'
import { projectRootFor, renderTimeoutFrom, varsFrom } from '../project.ts'

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
  details: 'Watches the tests, clnrm.toml and every input the tests use (partials, [watch] files, volume host paths).\nKeys in a terminal (or lines on a piped stdin): r reruns all, f reruns failed, q quits (exit 0).\nCtrl-C quits too (exit 130); containers are removed either way, and a second Ctrl-C exits at once.',
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
    // Every usage error before anything starts or listens.
    const vars = varsFrom(args)
    const renderTimeoutMs = renderTimeoutFrom(args)
    const debounceMs = number('debounce', 0)
    const jobs = number('jobs', 1)
    const budgetMs = number('budget', 0) ?? 1000
    const { watch } = await import('chokidar')
    let watcher: ReturnType<typeof watch> | undefined

    let finish!: (code: number) => void
    const done = new Promise<number>(resolve => (finish = resolve))
    let stopping = false
    const stop = (code: number): void => {
      if (stopping) return
      stopping = true
      finish(code)
    }
    // Installed before the first run, so Ctrl-C while containers start still cleans up. Ctrl-C
    // exits 130, SIGTERM 143, SIGHUP 129, a closed stdout 141; a second Ctrl-C forces the exit.
    const unsubscribe = ctx.interrupts?.on((reason) => {
      if (reason !== 'EPIPE') ctx.stderr(ctx.c.yellow('\nstopping: removing containers (Ctrl-C again exits at once)\n'))
      stop(INTERRUPT_EXIT[reason])
    })

    const root = projectRootFor(args, ctx)
    // [watch] modules: their static imports, followed here as the Vite plugin follows Vite's graph.
    const modules = createModuleWatch(ctx, root, paths => void watcher?.add(paths))
    const session = createDevSession({
      tests: args.positionals,
      cwd: ctx.cwd,
      root,
      resolveAffected: modules.resolveAffected,
      vars,
      renderTimeoutMs,
      debounceMs,
      jobs,
      env: ctx.env,
      startWatching: async (paths) => {
        // Stopped while the first run went on: a watcher started now would keep the process alive.
        if (stopping) return
        await modules.settled()
        watcher = watch([...paths, ...modules.files()], { ignoreInitial: true, ignored: isIgnoredPath })
        feedChanges(watcher, path => session.notify([path]), isIgnoredPath)
        watcher.on('error', error => ctx.stderr(`${ctx.c.yellow('watcher')} ${String(error)}\n`))
        await new Promise<void>(resolve => watcher!.once('ready', () => resolve()))
      },
    })
    session.events.on('watch:add', ({ paths }) => void watcher?.add(paths))
    session.events.on('test:result', ({ result }) => void modules.refresh(result.file, session.tests().get(result.file)?.spec))
    const reporter = reporterName === 'ndjson' ? ndjsonDevReporter(ctx) : humanDevReporter(ctx, { verbose: args.options.verbose === true, budgetMs })
    // Once stopping, nothing more is shown but the closing line.
    const detach = Object.entries(reporter.on).map(([type, handler]) =>
      session.events.on(type as keyof DevEvents, (payload: unknown) => stopping || (handler as (payload: unknown) => void)(payload)))

    const stdin = process.stdin
    const keys = ctx.isTTY && Boolean(stdin.isTTY)
    const restoreTerminal = (): void => {
      try {
        if (keys) stdin.setRawMode(false)
      }
      catch {}
    }
    const unforce = ctx.interrupts?.onForce(restoreTerminal)
    const shutdown = async (code: number, quiet = false): Promise<number> => {
      restoreTerminal()
      stdin.removeAllListeners('data')
      stdin.pause()
      await Promise.allSettled([watcher?.close(), session.close()])
      for (const off of detach) off()
      unsubscribe?.()
      unforce?.()
      if (reporterName === 'human' && !quiet) ctx.stdout(ctx.c.dim('\nstopped; containers removed\n'))
      return code
    }

    try {
      await Promise.race([session.start(), done])
    }
    catch (error) {
      const code = await shutdown(stopping ? await done : EXIT.usage, !stopping)
      if (stopping) return code
      if (error instanceof EngineUnavailableError) {
        ctx.stderr(formatEngineError(ctx, error))
        return EXIT.usage
      }
      throw error
    }
    // Stopped during start-up: close (which waits for the start to end), and nothing after.
    if (stopping) return shutdown(await done)

    const onKey = (key: string): void => {
      if (key === 'q') stop(EXIT.ok)
      // Ctrl-C as a raw key is a SIGINT: the same exit code, and a second one forces the exit.
      else if (key === '\u0003') ctx.interrupts ? ctx.interrupts.raise('SIGINT') : stop(INTERRUPT_EXIT.SIGINT)
      else if (key === 'r') session.rerun('all')
      else if (key === 'f') session.rerun('failed')
    }
    // A terminal that went away (SIGHUP) makes reads fail with EIO: that is the signal's business.
    stdin.on('error', () => {})
    if (keys) {
      stdin.setRawMode(true)
      stdin.resume()
      stdin.on('data', (data: Buffer) => onKey(data.toString()))
    }
    else {
      // Piped stdin (tools, tests): a line "q" quits, and end of input is ignored.
      stdin.on('data', (data: Buffer) => {
        for (const line of data.toString().split('\n')) if (line.trim()) onKey(line.trim())
      })
    }
    return shutdown(await done)
  },
}
