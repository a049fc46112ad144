import type { EngineContainer } from './adapter.ts'
import { isEngineUnreachable } from './docker.ts'
import type { Entry, PoolCounts, RemovalReason } from './pool-entry.ts'
import type { PoolNetworks } from './pool-networks.ts'
import type { PoolEvent } from './pool-types.ts'
import { park, releaseClaim } from './reuse.ts'

/** What the teardown reads and tells of the pool. */
export interface TeardownContext {
  /** The pool's live containers: an entry leaves it when its removal starts. */
  entries: Set<Entry>
  networks: PoolNetworks
  counts: PoolCounts
  emit: (event: PoolEvent) => void
  /** Asks the pool's waiters again (room was made). */
  pump: () => void
}

/**
 * How the pool's containers end: removed (tracked until the engine has removed them, since the
 * limit is about what the engine holds), parked for the next process, or, when the engine was
 * away, remembered and removed once it answers again.
 */
export class PoolTeardown {
  /** Containers being removed: still counted against the pool's limit. */
  removing = 0
  /** Removals in flight (containers, then their networks). */
  readonly #removals = new Set<Promise<void>>()
  /** Containers whose removal failed because the engine was away: removed once it answers again. */
  readonly #unremoved = new Set<EngineContainer>()
  readonly #pool: TeardownContext

  constructor(pool: TeardownContext) {
    this.#pool = pool
  }

  /** Whether some removal waits for the engine to come back. */
  get hasUnremoved(): boolean {
    return this.#unremoved.size > 0
  }

  /** Removes a live entry (at most once), its claim and, when last on it, its network. */
  remove(entry: Entry, reason: RemovalReason): Promise<void> {
    if (!this.#pool.entries.delete(entry)) return Promise.resolve()
    // Tracked: a run's release removes its containers after its result, and `close` waits for that too.
    const removal = this.#removeEntry(entry, reason)
    this.#removals.add(removal)
    void removal.finally(() => this.#removals.delete(removal))
    return removal
  }

  async #removeEntry(entry: Entry, reason: RemovalReason): Promise<void> {
    clearTimeout(entry.idleTimer)
    entry.markFreed()
    entry.runner.close()
    // Counted until the engine has removed it: the limit is about what the engine holds.
    this.removing++
    await entry.container.remove().catch((error: unknown) => {
      if (isEngineUnreachable(error)) this.#unremoved.add(entry.container)
    })
    this.removing--
    if (entry.claim) releaseClaim(entry.claim)
    this.#pool.emit({ type: 'pool:container-removed', service: entry.service, reason })
    // A deleted test's network goes with it; others may serve the next test as a spare.
    if (entry.network) await this.#pool.networks.drop(entry.network, { spare: reason !== 'retired' })
    this.#pool.pump()
  }

  /** Leaves an idle container running for the next process (renamed idle: claimable), or removes it when that fails. */
  async park(entry: Entry): Promise<void> {
    clearTimeout(entry.idleTimer)
    try {
      // The end of its last run may still be on its way: the next process must find it done.
      await entry.runner.drain?.()
      entry.runner.close()
      await park(entry.container, entry.claim!)
      this.#pool.entries.delete(entry)
      this.#pool.counts.parked++
    }
    catch {
      await this.remove(entry, 'closed')
    }
  }

  /** Tries again the removals the engine missed while it was away. */
  async removeUnremoved(): Promise<void> {
    const containers = [...this.#unremoved]
    this.#unremoved.clear()
    await Promise.allSettled(containers.map(c => c.remove().catch((error: unknown) => {
      if (isEngineUnreachable(error)) this.#unremoved.add(c)
    })))
  }

  /** Settles when every removal started so far has ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#removals])
  }
}
