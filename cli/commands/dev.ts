import { basename } from 'node:path'
import { createDevSession, DEFAULT_DEBOUNCE_MS, EngineUnavailableError, watchTree } from '../../core/index.ts'
import type { DevEvents, TreeWatcher } from '../../core/index.ts'
import type { CommandDef } from '../command.ts'
import { VAR_OPTION } from '../command.ts'
import type { CommandContext } from '../context.ts'
import { EXIT, INTERRUPT_EXIT, UsageError } from '../errors.ts'
import { createModuleWatch } from '../dev-modules.ts'
import { createDevKeys, describeFilter } from '../dev-keys.ts'
import { humanDevReporter, ndjsonDevReporter } from '../dev-output.ts'
import { compileNamePattern, splitPositionals } from '../filters.ts'
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
  args: '[paths or filters...]',
  summary: 'Run tests, then rerun exactly the affected ones on every save, in warm containers.',
  details: [
    'Watches the tests, clnrm.toml and every input the tests use (partials, [watch] files, volume host paths).',
    'An argument that is not an existing path filters test files by substring of their path, as in clnrm run.',
    'Keys in a terminal (or lines on a piped stdin, where "p api" sets a filter at once): h help, p filter files',
    'by path, t filter tests and steps by name, c clear filters, a or r rerun all, f rerun failed, q quit (exit 0).',
    'Filters stick across saves until cleared; steps a name filter leaves out are reported skipped, never passed.',
    'Ctrl-C quits too (exit 130); containers are removed either way, and a second Ctrl-C exits at once.',
  ].join('\n'),
  examples: ['clnrm dev', 'clnrm dev tests/api --debounce 50', 'clnrm dev login -t "check"', 'clnrm dev --reporter ndjson'],
  options: {
    'debounce': { type: 'string', value: '<ms>', description: 'Saves run at once; an error waits this long for an editor\'s next write burst before it shows', default: String(DEFAULT_DEBOUNCE_MS) },
    'jobs': { type: 'string', short: 'j', value: '<n>', description: 'Test files run at once (default: the number of CPUs)' },
    'reporter': { type: 'string', value: '<human|ndjson>', description: 'Output format', default: 'human' },
    'test-name-pattern': { type: 'string', short: 't', value: '<regex>', description: 'Start with a name filter on tests and steps (the t key changes it)' },
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
    // One fs.watch per directory, no work per file: a save costs the same at 3000 tests as at one.
    let watcher: TreeWatcher | undefined

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

    // As in clnrm run: arguments that are not paths filter files; the p key changes them later.
    const { paths, filters } = splitPositionals(args.positionals, ctx.cwd)
    const patternText = args.options['test-name-pattern'] as string | undefined
    const pattern = patternText === undefined ? undefined : compileNamePattern(patternText)
    const root = projectRootFor({ ...args, positionals: paths }, ctx)
    // [watch] modules: their static imports, followed here as the Vite plugin follows Vite's graph.
    const modules = createModuleWatch(ctx, root, paths => void watcher?.add(paths))
    const session = createDevSession({
      tests: paths,
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
        // Assigned before its first await, so a quit meanwhile closes it.
        watcher = watchTree([...paths, ...modules.files()], {
          ignored: isIgnoredPath,
          onChange: path => session.notify([path]),
          onError: error => ctx.stderr(`${ctx.c.yellow('watcher')} ${String(error)}\n`),
        })
        await watcher.add([])
      },
    })
    session.setFilter({ ...(filters.length && { files: filters }), ...(pattern && { pattern }) })
    session.events.on('watch:add', ({ paths }) => void watcher?.add(paths))
    session.events.on('test:result', ({ result }) => void modules.refresh(result.file, session.tests().get(result.file)?.spec))
    const reporter = reporterName === 'ndjson' ? ndjsonDevReporter(ctx) : humanDevReporter(ctx, { verbose: args.options.verbose === true, budgetMs, filter: () => describeFilter(session.filter()) })
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

    // h, p, t, c, a/r, f, q as in Vitest's watch mode; with NDJSON on stdout, what keys say goes to stderr.
    const keyCtx = reporterName === 'ndjson' ? { ...ctx, stdout: ctx.stderr } : ctx
    const devKeys = createDevKeys(keyCtx, {
      session,
      quit: () => stop(EXIT.ok),
      // Ctrl-C as a raw key is a SIGINT: the same exit code, and a second one forces the exit.
      interrupt: () => (ctx.interrupts ? ctx.interrupts.raise('SIGINT') : stop(INTERRUPT_EXIT.SIGINT)),
    })
    // A terminal that went away (SIGHUP) makes reads fail with EIO: that is the signal's business.
    stdin.on('error', () => {})
    if (keys) {
      stdin.setRawMode(true)
      stdin.resume()
      stdin.on('data', (data: Buffer) => devKeys.feed(data.toString()))
    }
    else {
      // Piped stdin (tools, tests): one key per line ("q" quits, "p api" filters), end of input ignored.
      let pending = ''
      stdin.on('data', (data: Buffer) => {
        const lines = (pending + data.toString()).split('\n')
        pending = lines.pop()!
        for (const line of lines) if (line.trim()) devKeys.line(line.trim())
      })
    }
    return shutdown(await done)
  },
}
