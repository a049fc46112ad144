/**
 * First come, first served, for takers that must get everything they need at once: each waiter
 * retries its `take` when `pump()` says something was freed, in arrival order, and the queue
 * stops at the first that cannot go yet, so a large request is never starved by smaller ones
 * behind it. An aborted waiter leaves at once and lets those behind it try.
 */
export class Turns<T> {
  readonly #waiting: Array<{ take: () => T | undefined; resolve: (value: T) => void }> = []

  /** How many wait. */
  get size(): number {
    return this.#waiting.length
  }

  /**
   * What `take` returns, now when nobody waits and it succeeds (no promise, no tick: the warm
   * path stays synchronous), else in turn. Rejects with `aborted()` when the signal fires first.
   */
  take(take: () => T | undefined, signal: AbortSignal, aborted: () => Error): T | Promise<T> {
    const now = this.#waiting.length === 0 ? take() : undefined
    if (now !== undefined) return now
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        take,
        resolve: (value: T) => {
          signal.removeEventListener('abort', onAbort)
          resolve(value)
        },
      }
      const onAbort = (): void => {
        const at = this.#waiting.indexOf(waiter)
        if (at >= 0) this.#waiting.splice(at, 1)
        reject(aborted())
        // It may have been the head that held the others back.
        this.pump()
      }
      if (signal.aborted) return onAbort()
      signal.addEventListener('abort', onAbort, { once: true })
      this.#waiting.push(waiter)
      this.pump()
    })
  }

  /** Something was freed: serve waiters in order, stopping at the first that cannot go yet. */
  pump(): void {
    while (this.#waiting.length) {
      const value = this.#waiting[0]!.take()
      if (value === undefined) return
      this.#waiting.shift()!.resolve(value)
    }
  }
}
