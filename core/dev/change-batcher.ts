/** Changed paths handed over together. */
export interface ChangeBatch {
  /** `performance.now()` of the first and of the latest change. */
  firstAt: number
  lastAt: number
  /** Each path, with the wall-clock time it was first reported (to measure detection latency). */
  paths: Map<string, number>
}

/**
 * Turns change events into batches, leading edge: the first change is handed over on the next
 * tick (events of one tick, such as a checkout's or a watcher's duplicate events, make one batch),
 * so a save runs at once instead of after a quiet window. A later change makes a new batch at
 * once too: the session lets it pre-empt the run of the older content. What an editor's write
 * bursts would otherwise show (the error of a half-written file) is held back by the session with
 * `quiet()`. It only hands over while armed (the dev session arms it when the first run is done);
 * changes made before wait in the batch.
 */
export interface ChangeBatcher {
  add: (paths: Iterable<string>) => void
  /** Starts handing batches over (changes collected meanwhile go at once). */
  arm: () => void
  /** Whether changes wait to be handed over. */
  readonly pending: boolean
  /**
   * Resolves once no change came for the quiet window (at once when none came within it), or
   * when the batcher is disposed.
   */
  quiet: () => Promise<void>
  /** Stops every timer for good; later changes are dropped, `quiet()` waiters resolve. */
  dispose: () => void
}

// After the I/O callbacks of this turn of the event loop, so events delivered together make one
// batch. setImmediate fires right after them; a 0 ms timeout waits for the next timer phase
// (about 1 ms), so it is only the fallback where there is no setImmediate. Returns its cancel.
function nextTick(fn: () => void): () => void {
  if (typeof setImmediate === 'function') {
    const immediate = setImmediate(fn)
    return () => clearImmediate(immediate)
  }
  const timeout = setTimeout(fn, 0)
  return () => clearTimeout(timeout)
}

/** Creates a `ChangeBatcher`. `onBatch` gets each batch once; a new batch starts with the next change. */
export function createChangeBatcher(quietMs: number, onBatch: (batch: ChangeBatch) => void): ChangeBatcher {
  let batch: ChangeBatch | undefined
  let cancelHandOver: (() => void) | undefined
  let armed = false
  let disposed = false
  // `performance.now()` of the latest change, handed over or not.
  let lastChangeAt = Number.NEGATIVE_INFINITY
  let quietTimer: ReturnType<typeof setTimeout> | undefined
  const waiters: Array<() => void> = []

  const schedule = (): void => {
    if (!armed || !batch || cancelHandOver) return
    cancelHandOver = nextTick(() => {
      cancelHandOver = undefined
      const ready = batch
      batch = undefined
      if (ready && !disposed) onBatch(ready)
    })
  }

  const release = (): void => {
    for (const wake of waiters.splice(0)) wake()
  }

  // One timer for every waiter, re-aimed at the end of the window when a change moved it.
  const watchQuiet = (): void => {
    if (quietTimer !== undefined || disposed) return
    const left = lastChangeAt + quietMs - performance.now()
    if (left <= 0) return release()
    quietTimer = setTimeout(() => {
      quietTimer = undefined
      watchQuiet()
    }, left)
  }

  return {
    add(paths) {
      if (disposed) return
      const now = performance.now()
      const wall = Date.now()
      lastChangeAt = now
      batch ??= { firstAt: now, lastAt: now, paths: new Map() }
      batch.lastAt = now
      for (const path of paths) if (!batch.paths.has(path)) batch.paths.set(path, wall)
      schedule()
    },
    arm() {
      armed = true
      schedule()
    },
    get pending() {
      return batch !== undefined && !disposed
    },
    quiet() {
      if (disposed || performance.now() - lastChangeAt >= quietMs) return Promise.resolve()
      const done = new Promise<void>(resolve => waiters.push(resolve))
      watchQuiet()
      return done
    },
    dispose() {
      disposed = true
      cancelHandOver?.()
      clearTimeout(quietTimer)
      cancelHandOver = undefined
      quietTimer = undefined
      batch = undefined
      release()
    },
  }
}
