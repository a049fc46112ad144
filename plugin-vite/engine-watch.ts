import { connectDocker } from '../core/index.ts'
import type { EngineView } from './protocol.ts'

/** The code of `EngineUnavailableError`, on errors and on test results. */
export const ENGINE_UNAVAILABLE = 'CLNRM_ENGINE_UNAVAILABLE'

/** First retry after 1 s, doubling up to 15 s: quick when Docker is just starting, quiet when it is off. */
const FIRST_RETRY_MS = 1000
const MAX_RETRY_MS = 15_000

/** Watches for the engine to come back once it was found unreachable. */
export interface EngineWatch {
  /**
   * The engine did not answer (a failed start, a test that could not reach it): report it and
   * retry; `retry` runs once it answers (start the session, or rerun what failed). Returns at once.
   */
  lost: (error: { message: string; hint?: string }, key: 'start' | 'rerun', retry: () => Promise<void> | void) => void
  close: () => void
}

/** Whether an engine answers now: a ping through the connection the pool uses. */
async function answers(): Promise<boolean> {
  try {
    const { engine } = await connectDocker()
    await engine.ping()
    return true
  }
  catch {
    return false
  }
}

/**
 * Turns "no engine" into a state the page and the overlay show (never an endless spinner) and
 * retries with backoff until an engine answers, then hands over to `retry`.
 */
export function createEngineWatch(options: { onChange: (state: EngineView | undefined) => void; isClosed: () => boolean }): EngineWatch {
  let timer: ReturnType<typeof setTimeout> | undefined
  let down = false
  let retries = new Map<string, () => Promise<void> | void>()
  let delay = FIRST_RETRY_MS
  let closed = false

  const schedule = (state: EngineView): void => {
    clearTimeout(timer)
    timer = setTimeout(() => void attempt(state), delay)
    // A pending retry never keeps `vite` alive on its own.
    timer.unref?.()
    delay = Math.min(delay * 2, MAX_RETRY_MS)
  }

  const attempt = async (state: EngineView): Promise<void> => {
    if (closed || options.isClosed()) return
    if (!await answers()) {
      if (!closed) schedule(state)
      return
    }
    down = false
    delay = FIRST_RETRY_MS
    const pending = [...retries.values()]
    retries = new Map()
    options.onChange(undefined)
    // A retry that fails on the engine again comes back through `lost`.
    for (const retry of pending) await retry()
  }

  return {
    lost(error, key, retry) {
      if (closed || options.isClosed()) return
      retries.set(key, retry)
      if (down) return
      down = true
      const state: EngineView = { status: 'unreachable', message: error.message, ...(error.hint && { hint: error.hint }) }
      options.onChange(state)
      schedule(state)
    },
    close() {
      closed = true
      clearTimeout(timer)
    },
  }
}
