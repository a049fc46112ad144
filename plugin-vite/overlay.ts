import { readFile } from 'node:fs/promises'
import type { ErrorPayload, ViteDevServer } from 'vite'
import { codeFrame } from './code-frame.ts'
import type { EngineView, SourceLocation, TestView } from './protocol.ts'

/** Which failures raise Vite's overlay: failing tests and invalid files, failing tests only, or none. */
export type OverlayMode = boolean | 'failures'

/** Keeps Vite's error overlay on a current failure, or gone. */
export interface OverlayTracker {
  /** A file's latest view: a failure may raise the overlay, a pass may clear it or show another. */
  update: (view: TestView) => void
  /** A test file that no longer exists, or whose results were dropped. */
  remove: (file: string) => void
  /** The engine's state: while it is down, the overlay says so instead. */
  engine: (state: EngineView | undefined) => void
  /** A page that just connected (a reload): it gets the current overlay, if any. */
  connect: (client: { send: (payload: ErrorPayload) => void }) => void
  /** Resolves once every change so far is sent (tests use it). */
  idle: () => Promise<void>
}

type ErrorBody = ErrorPayload['err']

/** Whether a view is a failure the overlay shows, in this mode. */
function shows(view: TestView, mode: OverlayMode): boolean {
  if (mode === false) return false
  if (view.status === 'invalid') return mode === true
  return view.status === 'fail' || view.status === 'error'
}

/** What identifies a failure: the same failure saved again is not raised again (it may have been dismissed). */
function signature(view: TestView): string {
  const f = view.failure
  const rule = view.spanRules?.failures[0]
  const problem = view.problems?.[0]
  return JSON.stringify([view.status, f?.step, f?.message, f?.expectation, f?.location?.line, rule?.rule, rule?.actual, problem?.code, problem?.message, problem?.location.line])
}

/** Output lines as the message shows them: marked, so Vite never takes them for a code frame. */
const quoted = (text: string): string[] => text.replace(/\n$/, '').split('\n').slice(-12).map(line => `│ ${line.replace(/\r$/, '')}`)

/**
 * Vite's error payload for a failing test or an invalid file: the message says what failed with
 * the output excerpt, `frame` is a code frame of the TOML around the failing key, `loc` its place.
 */
export async function overlayError(view: TestView): Promise<ErrorBody> {
  const failure = view.failure
  const problem = view.problems?.[0]
  // Steps all passed but a span rule did not hold: the rule is the failure to point at.
  const rule = failure ? undefined : view.spanRules?.failures[0]
  const location: SourceLocation | undefined = failure?.location ?? rule?.location ?? problem?.location
  const lines: string[] = []
  if (failure && view.status === 'error') {
    lines.push(`${view.name}: could not run: ${failure.message}`)
    if (failure.excerpt) lines.push(`hint: ${failure.excerpt}`)
  }
  else if (failure) {
    lines.push(`${view.name}: ${failure.step ? `step "${failure.step}": ` : ''}${failure.message}`, failure.expectation)
    if (failure.excerpt.trim()) lines.push('', 'output (last lines):', ...quoted(failure.excerpt))
  }
  else if (rule) {
    lines.push(`${view.name}: span rule ${rule.rule} did not hold: ${rule.actual}`, `${rule.rule}: ${rule.expected}`)
    if (rule.closest) lines.push('', `closest: ${rule.closest.name} in ${rule.closest.service}`, ...rule.closest.differences.map(d => `  ≠ ${d}`))
  }
  else {
    lines.push(`${view.relative}: ${problem?.message ?? 'invalid test file'}`)
    if (problem?.hint) lines.push(`hint: ${problem.hint}`)
    const more = (view.problems?.length ?? 0) - 1
    if (more > 0) lines.push(`(${more} more problem${more === 1 ? '' : 's'} in this file: see the clnrm panel or \`clnrm validate\`)`)
  }
  const source = location && await readFile(location.file, 'utf8').catch(() => undefined)
  return {
    message: lines.join('\n'),
    stack: '',
    id: view.file,
    plugin: 'clnrm',
    frame: source !== undefined && location ? codeFrame(source, location) : '',
    ...(location && { loc: { file: location.file, line: location.line, column: location.column } }),
  }
}

/** The overlay while no engine answers: what is wrong, and what to do (only with what the user has). */
export function engineError(engine: EngineView): ErrorBody {
  return {
    message: [`${engine.message}`, ...(engine.hint ? [`hint: ${engine.hint}`] : []), 'clnrm retries and runs the tests once the engine answers.'].join('\n'),
    stack: '',
    plugin: 'clnrm',
  }
}

/**
 * Tracks every current failure so Vite's overlay always describes one of them or is gone:
 * a new failure is shown at once; when the one shown is fixed, another current one is shown, and
 * when none is left the overlay is cleared (an empty `update` is what makes Vite's client close it).
 */
export function createOverlayTracker(server: Pick<ViteDevServer, 'ws' | 'config'>, mode: OverlayMode): OverlayTracker {
  const failing = new Map<string, TestView>()
  let shown: { file: string; signature: string; payload: ErrorPayload } | undefined
  let engineDown: EngineView | undefined
  const greeted = new WeakSet<object>()
  // One change at a time: building a payload reads the file, and a later change must win.
  let queue = Promise.resolve()

  const broadcast = (payload: ErrorPayload | { type: 'update'; updates: [] }): void => {
    // Vite keeps an error sent while no page is connected and replays it to the next page,
    // stale or not; a page that connects gets the current one from `connect` instead.
    if (payload.type === 'error' && server.ws.clients.size === 0) return
    server.ws.send(payload)
  }

  const sync = (preferred?: string): void => {
    queue = queue.then(async () => {
      if (engineDown) {
        const signature = `engine ${engineDown.message}`
        if (shown?.signature === signature) return
        shown = { file: '', signature, payload: { type: 'error', err: engineError(engineDown) } }
        broadcast(shown.payload)
        return
      }
      const pick = (preferred && failing.get(preferred)) || (shown && failing.get(shown.file)) || [...failing.values()].sort((a, b) => a.relative.localeCompare(b.relative))[0]
      if (!pick) {
        if (shown) broadcast({ type: 'update', updates: [] })
        shown = undefined
        return
      }
      const sig = signature(pick)
      if (shown?.file === pick.file && shown.signature === sig) return
      shown = { file: pick.file, signature: sig, payload: { type: 'error', err: await overlayError(pick) } }
      broadcast(shown.payload)
    }).catch(error => server.config.logger.error(`[clnrm] overlay: ${String(error)}`, { timestamp: true }))
  }

  return {
    update(view) {
      if (view.status === 'running') return
      const before = failing.get(view.file)
      if (shows(view, mode)) {
        failing.set(view.file, view)
        // A new or changed failure is the news: show it, even while another one is shown.
        sync(!before || signature(before) !== signature(view) ? view.file : undefined)
      }
      else if (failing.delete(view.file)) sync()
    },
    remove(file) {
      if (failing.delete(file)) sync()
    },
    engine(state) {
      if (mode === false) return
      const changed = (state?.message ?? '') !== (engineDown?.message ?? '')
      engineDown = state
      // Coming back: the overlay shows a current failure again, or goes.
      if (changed) sync()
    },
    idle: () => queue,
    connect(client) {
      // Once per page: called on Vite's connect event and again when the clnrm client says it is
      // ready (the fallback where Vite has no connect event); Vite hands out one object per socket.
      if (greeted.has(client)) return
      greeted.add(client)
      // After the queue: a page never gets a failure that was fixed meanwhile.
      void queue.then(() => {
        if (shown) client.send(shown.payload)
      })
    },
  }
}
