import type { Entry } from './pool-entry.ts'

/**
 * What the pool learned about one service definition: how long its container takes to start and
 * how long a run holds it (release included). Moving averages, so a slow first run fades out.
 */
interface KeyStats {
  startMs?: number
  holdMs?: number
}

/** Start time assumed before any container has started (a local image on an idle machine). */
const DEFAULT_START_MS = 300

const average = (previous: number | undefined, sample: number): number => (previous === undefined ? sample : 0.7 * previous + 0.3 * sample)

/**
 * The pool's demand accounting, per definition key: the tests acquiring it now, the backlog
 * their callers announced, and how long starts and runs take. It answers one question, whether
 * another container of a busy definition pays for its start (`worthStarting`), and re-asks the
 * waiters later when the answer may change with time alone (`armRecheck`).
 */
export class DemandLedger {
  readonly #stats = new Map<string, KeyStats>()
  /** Start time over every definition: the estimate for a definition not started yet. */
  #startMs: number | undefined
  /** Tests acquiring a container of each definition right now (waiting ones and the one being served). */
  readonly #demand = new Map<string, number>()
  /**
   * Tests the callers acquiring each definition said they will run after this one (`backlog`,
   * the latest hint): queued work the pool cannot see, counted as demand by `worthStarting`.
   */
  readonly #backlog = new Map<string, number>()
  /** Asks the waiters again once running tests have held their containers longer (see `worthStarting`). */
  #recheck: ReturnType<typeof setTimeout> | undefined
  #closed = false

  /**
   * @param entries the pool's live containers (read: how long busy ones have been held)
   * @param pump asks the pool's waiters again
   */
  constructor(private readonly entries: ReadonlySet<Entry>, private readonly pump: () => void) {}

  /** A test starts acquiring these (reusable) keys; its caller has `backlog` more tests queued. */
  enter(keys: readonly string[], backlog: number | undefined): void {
    for (const key of keys) {
      this.#demand.set(key, (this.#demand.get(key) ?? 0) + 1)
      if (backlog) this.#backlog.set(key, backlog)
    }
  }

  /** The acquire `enter` counted ended (leased or failed). */
  leave(keys: readonly string[]): void {
    for (const key of keys) {
      const left = this.#demand.get(key)! - 1
      if (left) this.#demand.set(key, left)
      else {
        this.#demand.delete(key)
        this.#backlog.delete(key)
      }
    }
  }

  /** A real start of a container of `key` took `ms` (claimed containers teach nothing: they cost no start). */
  recordStart(key: string, ms: number): void {
    this.#startMs = average(this.#startMs, ms)
    this.#statsOf(key).startMs = average(this.#statsOf(key).startMs, ms)
  }

  /** A run held a container of `key` for `ms`, release included. */
  recordHold(key: string, ms: number): void {
    this.#statsOf(key).holdMs = average(this.#statsOf(key).holdMs, ms)
  }

  /**
   * Whether another container of a definition pays for its start: the work queued for it (the
   * tests acquiring it, plus the backlog their callers announced, × how long a run holds a container, or how long the current runs have held
   * theirs so far, if longer), spread over its `live` containers, outlasts a start.
   */
  worthStarting(key: string, live: number): boolean {
    const stats = this.#stats.get(key)
    const now = performance.now()
    let held = 0
    for (const entry of this.entries) if (entry.key === key && entry.busy) held = Math.max(held, now - entry.leasedAt)
    const holdMs = Math.max(stats?.holdMs ?? 0, held)
    const startMs = stats?.startMs ?? this.#startMs ?? DEFAULT_START_MS
    return (((this.#demand.get(key) ?? 1) + (this.#backlog.get(key) ?? 0)) * holdMs) / live > startMs
  }

  /** Runs grow longer without any event: look at the waiters again after about one start time. */
  armRecheck(key: string): void {
    if (this.#recheck || this.#closed) return
    const startMs = this.#stats.get(key)?.startMs ?? this.#startMs ?? DEFAULT_START_MS
    this.#recheck = setTimeout(() => {
      this.#recheck = undefined
      this.pump()
    }, Math.max(20, startMs / 2))
    this.#recheck.unref?.()
  }

  /** The pool closes: no recheck is armed again. */
  close(): void {
    this.#closed = true
    clearTimeout(this.#recheck)
  }

  #statsOf(key: string): KeyStats {
    let stats = this.#stats.get(key)
    if (!stats) this.#stats.set(key, stats = {})
    return stats
  }
}
