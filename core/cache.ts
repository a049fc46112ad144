import { LRUCache } from 'lru-cache'

/** Counters of a cache since it was created (or last cleared). */
export interface CacheStats {
  hits: number
  misses: number
  evictions: number
  /** hits / (hits + misses), 0 when nothing was asked yet. */
  hitRate: number
  size: number
}

/** Options of a `MemoryCache`. */
export interface MemoryCacheOptions {
  /** Entries kept before the least recently used is evicted. @default 100 */
  max?: number
  /** Milliseconds an entry lives; none by default. */
  ttl?: number
}

/** An in-memory LRU cache with optional TTL and hit/miss statistics. */
export class MemoryCache<K extends {}, V extends {}> {
  readonly #lru: LRUCache<K, V>
  #hits = 0
  #misses = 0
  #evictions = 0

  constructor(options: MemoryCacheOptions = {}) {
    this.#lru = new LRUCache<K, V>({
      max: options.max ?? 100,
      ttl: options.ttl,
      // lru-cache reports why an entry left; only capacity and expiry count as evictions.
      dispose: (_value, _key, reason) => {
        if (reason === 'evict' || reason === 'expire') this.#evictions++
      },
    })
  }

  /** The value for `key`, counting a hit or a miss. */
  get(key: K): V | undefined {
    const value = this.#lru.get(key)
    if (value === undefined) this.#misses++
    else this.#hits++
    return value
  }

  set(key: K, value: V): void {
    this.#lru.set(key, value)
  }

  /** Removes one entry; not counted as an eviction. */
  invalidate(key: K): void {
    this.#lru.delete(key)
  }

  /** Removes every entry and resets the counters. */
  clear(): void {
    this.#lru.clear()
    this.#hits = this.#misses = this.#evictions = 0
  }

  stats(): CacheStats {
    const asked = this.#hits + this.#misses
    return { hits: this.#hits, misses: this.#misses, evictions: this.#evictions, hitRate: asked ? this.#hits / asked : 0, size: this.#lru.size }
  }
}
