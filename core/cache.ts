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
  #lru: LRUCache<K, V>
  readonly #ttl: number | undefined
  #hits = 0
  #misses = 0
  #evictions = 0

  constructor(options: MemoryCacheOptions = {}) {
    this.#ttl = options.ttl
    this.#lru = this.#create(options.max ?? 100)
  }

  #create(max: number): LRUCache<K, V> {
    return new LRUCache<K, V>({
      max,
      ttl: this.#ttl,
      // lru-cache reports why an entry left; only capacity and expiry count as evictions.
      dispose: (_value, _key, reason) => {
        if (reason === 'evict' || reason === 'expire') this.#evictions++
      },
    })
  }

  /** Entries kept before the least recently used is evicted. */
  get max(): number {
    return this.#lru.max
  }

  /**
   * Grows the cache to hold at least `max` entries (never shrinks it), keeping every entry, its
   * recency and its remaining TTL: a dev session sizes its caches to the project once it knows
   * how many test files there are, so a 3000-file project does not evict itself on every pass.
   */
  reserve(max: number): void {
    if (max <= this.#lru.max) return
    const entries = this.#lru.dump()
    // Geometric growth: a project gaining files one by one does not copy the cache on each.
    this.#lru = this.#create(Math.max(Math.ceil(max), Math.ceil(this.#lru.max * 1.5)))
    this.#lru.load(entries)
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
