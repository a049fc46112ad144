import { existsSync } from 'node:fs'
import { basename, dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Plugin } from 'vite'
import { createDevSession, createPullHeartbeat, feedChanges, formatPullBeat, printable, pullHeartbeatMs } from '../core/index.ts'
import type { DevSession, Selection } from '../core/index.ts'
import { createModuleTracker } from './module-graph.ts'
import pc from 'picocolors'
import { createEngineWatch, ENGINE_UNAVAILABLE } from './engine-watch.ts'
import { createOverlayTracker } from './overlay.ts'
import { createPullTracker, imagesOf } from './pulls.ts'
import type { EngineView, ReloadView, RerunRequest, RerunStarted, ResultsPayload, TestView } from './protocol.ts'
import { CLIENT_READY_EVENT, RERUN_EVENT, RERUN_STARTED_EVENT, RESULTS_EVENT } from './protocol.ts'
import { resultLines, summaryLine, warningLine } from './terminal.ts'
import { invalidView, reloadView, resultView, snapshot, warningsOf } from './views.ts'

export type { EngineView, Problem, PullView, RerunRequest, RerunStarted, ResultsPayload, ReloadView, SourceLocation, SpanBar, SpanFailureView, SpanRulesView, TestView } from './protocol.ts'
export { CLIENT_READY_EVENT, RERUN_EVENT, RERUN_STARTED_EVENT, RESULTS_EVENT } from './protocol.ts'

/** Options of the clnrm Vite plugin. */
export interface ClnrmPluginOptions {
  /**
   * Test files (globs, files or directories), relative to the Vite root. Without it, the `tests`
   * globs of the project's clnrm.toml, as the CLI finds them.
   * @default clnrm.toml's `tests`, else 'tests/**\/*.clnrm.toml{,.eta}'
   */
  tests?: string | string[]
  /** Quiet window after a save before tests rerun, in ms. @default 30 */
  debounce?: number
  /** Test files run at once. @default the number of CPUs */
  jobs?: number
  /** Template vars, overriding `clnrm.toml` [vars]. @default {} */
  vars?: Record<string, string>
  /**
   * Also raise Vite's error overlay: on failing tests and invalid files (`true`), on failing
   * tests only (`'failures'`), or never (`false`). The clnrm panel shows results either way.
   * @default true
   */
  overlay?: boolean | 'failures'
  /** Inject the results badge and panel into pages Vite serves. @default true */
  panel?: boolean
}

/** The id to import where Vite does not serve index.html: `import 'virtual:clnrm/client'`. */
export const CLIENT_ID = 'virtual:clnrm/client'
const CLIENT_URL = '/@clnrm/client'
const RESOLVED_CLIENT_ID = '\0clnrm:client'

// The browser code: built next to this file in dist/, the TypeScript source when run from a clone.
const here = dirname(fileURLToPath(import.meta.url))
const clientFile = [join(here, 'client/overlay.mjs'), join(here, 'client/overlay.ts')].find(existsSync) ?? join(here, 'client/overlay.ts')

/** How often a pull's progress reaches the page at most. */
const PULL_PROGRESS_MS = 250

// One session per Vite root in this process: a config restart closes the old one before the
// new one starts, whichever order Vite closes and creates servers in.
const activeSessions = new Map<string, () => Promise<void>>()

/**
 * Runs clnrm tests while `vite dev` runs: every test once at start, then exactly the affected
 * ones on each save (tests, partials, `[watch] files`, and for `[watch] modules` anything those
 * modules import, as Vite's module graph sees it). Results appear in a badge and panel in the
 * page. Adds nothing to `vite build`.
 */
export function clnrm(options: ClnrmPluginOptions = {}): Plugin {
  const patterns = options.tests === undefined ? undefined : [options.tests].flat()
  const overlay = options.overlay ?? true
  let session: DevSession | undefined
  let closing: Promise<void> | undefined

  let root: string | undefined
  let closeEngineWatch: (() => void) | undefined
  let closePullHeartbeat: (() => void) | undefined
  const close = (): Promise<void> => {
    closing ??= (async () => {
      closeEngineWatch?.()
      closePullHeartbeat?.()
      if (root && activeSessions.get(root) === close) activeSessions.delete(root)
      await session?.close()
    })()
    return closing
  }

  return {
    name: 'clnrm',
    apply: 'serve',

    async config(config) {
      // Serving the panel's module from the package needs its folder allowed; naming any folder
      // turns Vite's workspace detection off, so name the workspace root too.
      const { searchForWorkspaceRoot } = await import('vite')
      return { server: { fs: { allow: [searchForWorkspaceRoot(config.root ?? process.cwd()), dirname(clientFile)] } } }
    },

    resolveId(id) {
      if (id === CLIENT_ID || id === CLIENT_URL) return RESOLVED_CLIENT_ID
    },

    load(id) {
      if (id === RESOLVED_CLIENT_ID) return `import ${JSON.stringify(`/@fs${clientFile}`)}\n`
    },

    transformIndexHtml() {
      if (options.panel === false) return
      return [{ tag: 'script', attrs: { type: 'module', src: CLIENT_URL }, injectTo: 'body' }]
    },

    async configureServer(server) {
      const viteRoot = server.config.root
      root = viteRoot
      const previous = activeSessions.get(viteRoot)
      activeSessions.set(viteRoot, close)
      const ready = previous?.() ?? Promise.resolve()
      const views = new Map<string, TestView>()
      let lastReload: ReloadView | undefined
      let isReady = false
      let engine: EngineView | undefined
      const tracker = createModuleTracker(() => server.environments.client)
      const closures = new Map<string, Set<string>>()
      const overlays = createOverlayTracker(server, overlay)
      const pulls = createPullTracker()
      const logger = server.config.logger
      // Views are built asynchronously (locating a span rule reads the file): a reload's terminal
      // lines wait for its views.
      const building = new Set<Promise<void>>()

      const send = (): void => server.ws.send(RESULTS_EVENT, current())
      const current = (): ResultsPayload => {
        const pulling = pulls.views()
        return { ...snapshot(views, lastReload, isReady), ...(engine && { engine }), ...(pulling.length && { pulls: pulling }) }
      }
      const refreshClosure = async (file: string): Promise<void> => {
        const modules = session?.tests().get(file)?.spec?.watch.modules ?? []
        if (modules.length) closures.set(file, await tracker.closure(modules))
        else closures.delete(file)
      }

      session = createDevSession({
        cwd: viteRoot,
        // Without the option, the project's own `tests` globs (clnrm.toml): the same files as the CLI.
        tests: patterns,
        debounceMs: options.debounce,
        jobs: options.jobs,
        vars: options.vars,
        // Vite's own watcher is already running; the session only needs its events.
        startWatching: async (paths) => {
          server.watcher.add(paths.filter(p => relative(viteRoot, p).startsWith('..')))
        },
        resolveAffected(path) {
          const selected: Selection[] = []
          for (const [test, files] of closures) if (files.has(path)) selected.push({ test, reason: `imports ${relative(viteRoot, path)}` })
          return selected
        },
      })
      const active = session

      // The engine: down at start or later, retried with backoff; the tests run once it answers.
      const engineWatch = createEngineWatch({
        onChange(state) {
          engine = state
          overlays.engine(state)
          send()
          if (state) logger.error(`[clnrm] ${pc.red('✗')} ${printable(state.message)}${state.hint ? `\n  ${pc.dim(`hint: ${printable(state.hint)}`)}` : ''}\n  ${pc.dim('retrying; the tests run once the engine answers')}`, { timestamp: true })
          else logger.info(`[clnrm] ${pc.green('engine reachable again')}: running the tests`, { timestamp: true })
        },
        isClosed: () => closing !== undefined,
      })

      const { events } = session
      events.on('test:start', ({ file }) => {
        const view = views.get(file)
        views.set(file, { ...(view ?? { file, relative: relative(viteRoot, file), name: basename(file) }), status: 'running' })
        send()
      })
      events.on('test:result', ({ result }) => {
        const state = session?.tests().get(result.file)
        if (result.error?.code === ENGINE_UNAVAILABLE) engineWatch.lost(result.error, 'rerun', () => void active.rerun('failed'))
        const built = resultView(viteRoot, result, state).then((view) => {
          views.set(result.file, view)
          send()
          overlays.update(view)
        }).catch(error => logger.error(`[clnrm] ${String(error)}`))
        building.add(built)
        void built.finally(() => building.delete(built))
        void refreshClosure(result.file)
      })
      events.on('test:invalid', ({ file, diagnostics }) => {
        const view = invalidView(viteRoot, file, diagnostics, views.get(file)?.name)
        views.set(file, view)
        send()
        overlays.update(view)
      })
      events.on('test:warnings', ({ file, diagnostics }) => {
        const view = views.get(file)
        if (view) views.set(file, { ...view, warnings: warningsOf(diagnostics) })
        // With no page open, Vite's terminal is the only place a warning can be seen.
        for (const d of diagnostics) logger.warn(`[clnrm] ${warningLine(relative(viteRoot, d.file), d)}`, { timestamp: true })
        send()
      })
      events.on('test:removed', ({ file }) => {
        views.delete(file)
        closures.delete(file)
        overlays.remove(file)
        send()
      })
      events.on('project:reloaded', ({ file }) => {
        overlays.remove(file)
        if (views.delete(file)) send()
      })
      // Missing images: a line per image in the panel and in the terminal while the tests wait on them.
      // Bytes arriving are sent at most every PULL_PROGRESS_MS (the payload carries every test's
      // view); a pull starting, ending or failing at once.
      let progressTimer: ReturnType<typeof setTimeout> | undefined
      // Vite's terminal is a log (the plugin never redraws a line, in a terminal or in CI): a pull
      // still going gets a line every PULL_HEARTBEAT_MS, unless the panel keeps it quiet (a retry
      // failing the same way is shown as failed, not as pulling).
      const heartbeat = createPullHeartbeat({
        intervalMs: pullHeartbeatMs(process.env),
        onBeat(beat) {
          if (pulls.views().some(view => view.image === beat.image && view.state === 'pulling')) logger.info(`[clnrm] ${pc.dim(formatPullBeat(beat))}`, { timestamp: true })
        },
      })
      closePullHeartbeat = heartbeat.close
      events.on('pool:event', (event) => {
        heartbeat.onEvent(event)
        const { changed, lines } = pulls.onEvent(event)
        for (const line of lines) logger[line.level](`[clnrm] ${line.text}`, { timestamp: true })
        if (!changed) return
        if (event.type !== 'pool:image-pull' || lines.length) return send()
        progressTimer ??= setTimeout(() => {
          progressTimer = undefined
          if (!closing) send()
        }, PULL_PROGRESS_MS)
      })
      let lastStarted = 0
      events.on('reload:start', ({ id }) => void (lastStarted = id))
      events.on('reload:done', ({ id, changed, metrics }) => {
        lastReload = reloadView(id, changed, metrics, viteRoot)
        pulls.settle(imagesOf([...(session?.tests().values() ?? [])].map(t => t.spec)))
        send()
        // One line per failure and a summary per reload: with no page open, nothing goes unnoticed.
        void Promise.allSettled([...building]).then(() => {
          for (const t of metrics.tests) {
            const view = views.get(t.file)
            if (t.status === 'superseded' || !view) continue
            for (const line of resultLines(view)) logger.error(`[clnrm] ${line}`, { timestamp: true })
          }
          if (metrics.tests.some(t => t.status !== 'superseded')) logger.info(`[clnrm] ${summaryLine(metrics)}`, { timestamp: true })
        })
      })
      events.on('session:ready', async () => {
        isReady = true
        const files = [...(session?.tests().keys() ?? [])]
        await Promise.all(files.map(refreshClosure))
        send()
        logger.info(`[clnrm] watching ${files.length} test file${files.length === 1 ? '' : 's'}`, { timestamp: true })
      })
      events.on('session:warning', ({ message }) => logger.warn(`[clnrm] ${printable(message)}`, { timestamp: true }))
      events.on('session:error', ({ message }) => logger.error(`[clnrm] ${printable(message)}`, { timestamp: true }))
      events.on('watch:add', ({ paths }) => server.watcher.add(paths.filter(p => relative(viteRoot, p).startsWith('..'))))

      server.ws.on(CLIENT_READY_EVENT, (_data, client) => {
        client.send(RESULTS_EVENT, current())
        overlays.connect(client)
      })
      // The panel's rerun buttons. The payload comes off the wire: only a known scope is obeyed, and
      // a single file only when it is one of the session's tests (the page cannot pick other files).
      // The asking page learns which reload runs its request: its notice ends with that reload's
      // results, not with a late result of an older one.
      server.ws.on(RERUN_EVENT, (data: unknown, client) => {
        const request = data as Partial<RerunRequest> | null
        const before = lastStarted
        let tests = 0
        if (request?.scope === 'all' || request?.scope === 'failed') tests = session?.rerun(request.scope) ?? 0
        else if (request?.scope === 'test' && typeof request.file === 'string') tests = session?.rerun({ file: request.file }) ?? 0
        // The session starts the rerun's reload (and says so) before `rerun` returns.
        const reply: RerunStarted = { tests, ...(tests > 0 && lastStarted !== before && { reloadId: lastStarted }) }
        client.send(RERUN_STARTED_EVENT, reply)
      })
      // A page that (re)loads while a failure is current gets the overlay again.
      server.ws.on('vite:client:connect', (_data, client) => overlays.connect(client))
      feedChanges(server.watcher, path => session?.notify([path]))

      // Ctrl-C ends `vite dev` without closing the server, and on SIGTERM Vite closes it; either way
      // testcontainers' signal-exit kills the process as soon as it is the last listener left. Our
      // listeners stay until the containers are removed, then pass the signal on.
      const onSignal = (signal: NodeJS.Signals): void => {
        void close().finally(() => {
          removeSignalListeners()
          if (signal === 'SIGINT' || process.listenerCount(signal) === 0) process.kill(process.pid, signal)
        })
      }
      const removeSignalListeners = (): void => {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
      }
      process.on('SIGINT', onSignal)
      process.on('SIGTERM', onSignal)
      server.httpServer?.once('close', () => void closing?.finally(removeSignalListeners))
      closeEngineWatch = engineWatch.close

      const start = (): Promise<void> => (closing ? Promise.resolve() : active.start()).catch((error: Error & { code?: string; hint?: string }) => {
        // No engine at start: shown in the page and the overlay, retried until it answers.
        if (error.code === ENGINE_UNAVAILABLE) return engineWatch.lost(error, 'start', start)
        logger.error(`[clnrm] could not start: ${error.message}${error.hint ? `\n  hint: ${error.hint}` : ''}`, { timestamp: true })
      })
      void ready.then(start)
    },

    // Vite calls this when the dev server closes (Ctrl-C in a terminal, server.close(), a restart).
    async closeBundle() {
      await close()
    },
  }
}
