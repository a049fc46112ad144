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
   * Resolves once none of `paths` changed for the quiet window (at once when none did within
   * it), or when the batcher is disposed. Per path: a file elsewhere written all the time (a log,
   * a build output under the project root) must not hold an error back for ever.
   */
  quiet: (paths: Iterable<string>) => Promise<void>
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
  // `performance.now()` of each path's latest change, handed over or not; pruned of paths quiet
  // for longer than the window, which no waiter can need any more.
  const lastChange = new Map<string, number>()
  const waiters = new Set<{ wake: () => void; timer?: ReturnType<typeof setTimeout> }>()
  const latest = (paths: Iterable<string>): number => {
    let at = Number.NEGATIVE_INFINITY
    for (const path of paths) at = Math.max(at, lastChange.get(path) ?? Number.NEGATIVE_INFINITY)
    return at
  }

  const schedule = (): void => {
    if (!armed || !batch || cancelHandOver) return
    cancelHandOver = nextTick(() => {
      cancelHandOver = undefined
      const ready = batch
      batch = undefined
      if (ready && !disposed) onBatch(ready)
    })
  }

  return {
    add(paths) {
      if (disposed) return
      const now = performance.now()
      const wall = Date.now()
      if (lastChange.size > 1000) for (const [path, at] of lastChange) if (now - at >= quietMs) lastChange.delete(path)
      batch ??= { firstAt: now, lastAt: now, paths: new Map() }
      batch.lastAt = now
      for (const path of paths) {
        lastChange.set(path, now)
        if (!batch.paths.has(path)) batch.paths.set(path, wall)
      }
      schedule()
    },
    arm() {
      armed = true
      schedule()
    },
    get pending() {
      return batch !== undefined && !disposed
    },
    quiet(paths) {
      const watched = [...paths]
      return new Promise<void>((resolve) => {
        const waiter: { wake: () => void; timer?: ReturnType<typeof setTimeout> } = { wake: resolve }
        // Re-aimed at the end of the window each time one of the paths changed meanwhile.
        const check = (): void => {
          const left = latest(watched) + quietMs - performance.now()
          if (disposed || left <= 0) {
            waiters.delete(waiter)
            return resolve()
          }
          waiter.timer = setTimeout(check, left)
        }
        waiters.add(waiter)
        check()
      })
    },
    dispose() {
      disposed = true
      cancelHandOver?.()
      cancelHandOver = undefined
      batch = undefined
      for (const waiter of waiters) {
        clearTimeout(waiter.timer)
        waiter.wake()
      }
      waiters.clear()
      lastChange.clear()
    },
  }
}
