import * as mittModule from 'mitt'
import type { Diagnostic } from './format/diagnostics.ts'
import type { Selection } from './dev/graph.ts'
import type { HotReloadMetrics } from './dev/metrics.ts'
import type { PoolEvent } from './engine/pool.ts'
import type { TestResult } from './run.ts'

/** Every event of a dev session. Payloads are plain data: the same object goes to a terminal, NDJSON and HMR. */
export type DevEvents = {
  /** The first run of every test finished; the session now waits for changes. */
  'session:ready': { tests: number; invalid: number; durationMs: number }
  'session:warning': { message: string }
  /** Something failed outside a test (a listener threw, the pool broke). The loop goes on. */
  'session:error': { message: string }
  'reload:start': { id: number; changed: string[]; selected: Selection[] }
  'reload:done': { id: number; changed: string[]; selected: Selection[]; metrics: HotReloadMetrics }
  'test:start': { id: number; file: string }
  /** A current result. Results of superseded runs are never emitted. */
  'test:result': { id: number; result: TestResult }
  /** The file does not load (bad TOML, a template error, an unknown service…). */
  'test:invalid': { id: number; file: string; diagnostics: Diagnostic[] }
  /**
   * A valid file's warnings changed (emitted when a load's warnings differ from the last ones
   * shown, an empty list when they are gone), so every view can show what was not checked.
   */
  'test:warnings': { id: number; file: string; diagnostics: Diagnostic[] }
  'test:removed': { file: string }
  /** clnrm.toml changed and loaded: every test reruns, and an earlier error in it is gone. */
  'project:reloaded': { file: string }
  /** New inputs to watch (partials, watched globs' directories, mounts). */
  'watch:add': { paths: string[] }
  'pool:event': PoolEvent
}

type Handler<T> = (payload: T) => void

// mitt's types describe a CommonJS default export; at runtime every loader gives the ESM build's default.
type Mitt = <E extends Record<string, unknown>>() => {
  on: <K extends keyof E>(type: K, handler: Handler<E[K]>) => void
  off: <K extends keyof E>(type: K, handler: Handler<E[K]>) => void
  emit: <K extends keyof E>(type: K, payload: E[K]) => void
}
const mitt = ((mittModule as { default?: unknown }).default ?? mittModule) as Mitt

/** A typed emitter whose listeners cannot break each other: a throwing listener is reported, the rest still run. */
export interface SessionEmitter<E extends Record<string, unknown>> {
  on: <K extends keyof E>(type: K, handler: Handler<E[K]>) => () => void
  off: <K extends keyof E>(type: K, handler: Handler<E[K]>) => void
  emit: <K extends keyof E>(type: K, payload: E[K]) => void
}

/** Creates an emitter over mitt; `onListenerError` hears about listeners that throw. */
export function createEmitter<E extends Record<string, unknown>>(onListenerError: (type: keyof E, error: unknown) => void): SessionEmitter<E> {
  const inner = mitt<E>()
  // Wrappers per event type and handler: one handler may listen to several types (and twice to
  // one), and `off` must find the wrapper registered for that type, not the last one made.
  const wrapped = new Map<keyof E, Map<Handler<never>, Array<Handler<never>>>>()
  const off = <K extends keyof E>(type: K, handler: Handler<E[K]>): void => {
    const list = wrapped.get(type)?.get(handler as Handler<never>)
    const safe = list?.pop()
    if (!safe) return
    if (!list!.length) wrapped.get(type)!.delete(handler as Handler<never>)
    inner.off(type, safe as Handler<E[K]>)
  }
  return {
    on(type, handler) {
      const safe: Handler<E[typeof type]> = (payload) => {
        try {
          handler(payload)
        }
        catch (error) {
          onListenerError(type, error)
        }
      }
      const byHandler = wrapped.get(type) ?? new Map<Handler<never>, Array<Handler<never>>>()
      wrapped.set(type, byHandler)
      const list = byHandler.get(handler as Handler<never>) ?? []
      list.push(safe as Handler<never>)
      byHandler.set(handler as Handler<never>, list)
      inner.on(type, safe)
      return () => off(type, handler)
    },
    off,
    emit: (type, payload) => inner.emit(type, payload),
  }
}
