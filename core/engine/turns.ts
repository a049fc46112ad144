/**
 * What a `take` returns when it waits for something only it (and takers like it) can use, such as
 * a container of its own definition that is busy or starting: it keeps its place in the queue,
 * but those behind it may go, since they do not compete for what it waits for.
 */
export const PASS: unique symbol = Symbol('pass')

/** A taker's answer: what it took, `undefined` to wait and hold the queue, or `PASS` to wait and let others by. */
export type TakeResult<T> = T | undefined | typeof PASS

/**
 * First come, first served, for takers that must get everything they need at once: each waiter
 * retries its `take` when `pump()` says something was freed, in arrival order, and the queue
 * stops at the first that cannot go yet, so a large request is never starved by smaller ones
 * behind it. A waiter that answers `PASS` waits without holding the others. An aborted waiter
 * leaves at once and lets those behind it try.
 */
export class Turns<T> {
  readonly #waiting: Array<{ take: () => TakeResult<T>; resolve: (value: T) => void }> = []

  /** How many wait. */
  get size(): number {
    return this.#waiting.length
  }

  /**
   * What `take` returns, now when nobody waits and it succeeds (no promise, no tick: the warm
   * path stays synchronous), else in turn. Rejects with `aborted()` when the signal fires first.
   */
  take(take: () => TakeResult<T>, signal: AbortSignal, aborted: () => Error): T | Promise<T> {
    const now = this.#waiting.length === 0 ? take() : undefined
    if (now !== undefined && now !== PASS) return now
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

  /** Something was freed: serve waiters in order, stopping at the first that cannot go yet (passing over those that pass). */
  pump(): void {
    for (let i = 0; i < this.#waiting.length;) {
      const value = this.#waiting[i]!.take()
      if (value === undefined) return
      if (value === PASS) {
        i++
        continue
      }
      this.#waiting.splice(i, 1)[0]!.resolve(value)
    }
  }
}
