/** Changed paths gathered during one quiet window. */
export interface ChangeBatch {
  /** `performance.now()` of the first and of the latest change. */
  firstAt: number
  lastAt: number
  /** Each path, with the wall-clock time it was first reported (to measure detection latency). */
  paths: Map<string, number>
}

/**
 * A trailing debounce of changed paths: `add` collects them, and once no change came for
 * `debounceMs` the batch is handed to `onQuiet`. It only times while armed (the dev session arms
 * it when the first run is done); changes made before wait in the batch.
 */
export interface ChangeBatcher {
  add: (paths: Iterable<string>) => void
  /** Starts handing batches over (changes already collected count from their last one). */
  arm: () => void
  /** Whether changes wait to be handed over. */
  readonly pending: boolean
  /** Stops the timer for good; later changes are dropped. */
  dispose: () => void
}

/** Creates a `ChangeBatcher`. `onQuiet` gets each batch once; a new batch starts with the next change. */
export function createChangeBatcher(debounceMs: number, onQuiet: (batch: ChangeBatch) => void): ChangeBatcher {
  let batch: ChangeBatch | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  let armed = false
  let disposed = false

  const schedule = (): void => {
    clearTimeout(timer)
    if (!armed || !batch) return
    timer = setTimeout(() => {
      const ready = batch
      batch = undefined
      if (ready && !disposed) onQuiet(ready)
    }, Math.max(0, debounceMs - (performance.now() - batch.lastAt)))
  }

  return {
    add(paths) {
      if (disposed) return
      const now = performance.now()
      const wall = Date.now()
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
    dispose() {
      disposed = true
      clearTimeout(timer)
      batch = undefined
    },
  }
}
