import { ClnrmError } from '../errors.ts'
import { randomUUID } from 'node:crypto'
import type { EngineAdapter } from './adapter.ts'

interface Held {
  name: Promise<string>
  /** Containers on it, starting ones included. */
  users: number
}

/** Empty networks kept for the next multi-service test, at most. */
const SPARE_MAX = 2
/** How long an empty network waits for a test before it is removed. */
const SPARE_MS = 1500

interface Spare {
  name: Promise<string>
  timer?: ReturnType<typeof setTimeout>
}

/**
 * The private networks of multi-service tests, one per group of containers (the caller's key),
 * counted by the containers on them. Engines have a few dozen address pools (about 31 by
 * default), so networks must not outlive their containers for long: when the last container
 * goes, its network is kept as a spare for at most 1.5 s (at most two spares), then removed.
 * Since every other network holds at least one of the pool's containers, the container limit
 * bounds them too (plus the spares).
 *
 * Why spares: creating a network costs the engine about as much as starting a container, and a
 * multi-service cold start would pay it on its critical path. While the session expects
 * multi-service tests (`expect`: a run's plan, the groups a dev session starts ahead), one spare is
 * kept ready for them, made again once a test that took it has started (`refill`). Otherwise a
 * spare is made while the test's images resolve (`prepare`), and one freed by the previous test
 * is taken at once. An empty network holds no state (host names belong to the containers on it),
 * so handing it to the next test is hermetic; a network is never held by two groups at once.
 */
export class PoolNetworks {
  readonly #docker: () => EngineAdapter
  readonly #labels: () => Record<string, string>
  readonly #prefix: string
  readonly #held = new Map<string, Held>()
  readonly #removing = new Set<Promise<void>>()
  readonly #spares: Spare[] = []
  /** Multi-service tests the session expects (its plan): one spare is kept ready for them. */
  #expected = 0
  #closed = false

  constructor(docker: () => EngineAdapter, labels: () => Record<string, string>, prefix: string) {
    this.#docker = docker
    this.#labels = labels
    this.#prefix = prefix
  }

  /** Counts one more container on the network `key` names, creating the network on first use. */
  hold(key: string): void {
    let held = this.#held.get(key)
    if (!held) {
      // The kept spare last: it waits for the tests the plan still expects.
      const at = this.#spares.findIndex(spare => spare.timer)
      const [spare] = this.#spares.splice(at >= 0 ? at : 0, 1)
      clearTimeout(spare?.timer)
      const created = spare?.name ?? this.#create()
      held = { name: created, users: 0 }
      this.#held.set(key, held)
      created.catch(() => {
        if (this.#held.get(key) === held) this.#held.delete(key)
      })
    }
    held.users++
  }

  #create(): Promise<string> {
    // A fresh name each time: a network being removed may still carry the previous one.
    const name = `clnrm-${this.#prefix}-${randomUUID().slice(0, 10)}`
    return this.#docker().createNetwork({ Name: name, Labels: this.#labels() })
  }

  /**
   * A multi-service test arrives: one expected test fewer, and (unless `spare: false`: a warm
   * group waits for it) a spare network starts being created when there is none and `key` has
   * no network yet (its images resolve meanwhile).
   */
  prepare(key: string, options: { spare?: boolean } = {}): void {
    if (this.#expected > 0 && --this.#expected === 0) this.#expire()
    if (this.#closed || options.spare === false || this.#spares.length || this.#held.has(key)) return
    this.#spare(this.#create())
  }

  /**
   * Keeps one spare network ready while `count` more multi-service tests are expected (a run's
   * plan, the groups a dev session starts ahead), so their cold start does not pay the network's
   * creation. Like every clnrm network, the spare carries the session's labels and is removed
   * when the pool closes. `exactly` replaces an earlier expectation instead of raising it.
   */
  expect(count: number, options: { exactly?: boolean } = {}): void {
    if (this.#closed) return
    this.#expected = options.exactly ? Math.max(0, count) : Math.max(this.#expected, count)
    if (this.#expected === 0) this.#expire()
    this.refill()
  }

  /** No test is expected any more: a kept spare leaves after SPARE_MS unless a test takes it first. */
  #expire(): void {
    for (const spare of this.#spares) {
      if (spare.timer) continue
      spare.timer = setTimeout(() => {
        const at = this.#spares.indexOf(spare)
        if (at < 0) return
        this.#spares.splice(at, 1)
        void this.#remove(spare.name)
      }, SPARE_MS)
      spare.timer.unref?.()
    }
  }

  /**
   * Makes the kept spare when there is none and more multi-service tests are expected. The pool
   * calls it once a test's containers have started: a network created beside them would slow
   * their starts (the engine's work competes for the same cores).
   */
  refill(): void {
    if (this.#closed || this.#expected <= 0) return
    const kept = this.#spares.find(spare => !spare.timer)
    if (kept) return
    // A spare on its way out is kept instead of making another.
    const leaving = this.#spares.find(spare => spare.timer)
    if (leaving) {
      clearTimeout(leaving.timer)
      leaving.timer = undefined
      return
    }
    this.#spare(this.#create())
  }

  #spare(name: Promise<string>): void {
    const spare: Spare = { name }
    const forget = (): boolean => {
      const at = this.#spares.indexOf(spare)
      if (at >= 0) this.#spares.splice(at, 1)
      return at >= 0
    }
    name.catch(forget)
    // The one spare kept for expected tests waits for them; others leave after SPARE_MS.
    if (this.#expected <= 0 || this.#spares.some(other => !other.timer)) {
      spare.timer = setTimeout(() => {
        if (forget()) void this.#remove(name)
      }, SPARE_MS)
      spare.timer.unref?.()
    }
    this.#spares.push(spare)
  }

  async #remove(name: Promise<string>): Promise<void> {
    const removal = name.then(n => this.#docker().removeNetwork(n)).then(() => {}, () => {})
    this.#removing.add(removal)
    await removal
    this.#removing.delete(removal)
  }

  /** The network name `key` holds (created by `hold`). */
  name(key: string): Promise<string> {
    return this.#held.get(key)?.name ?? Promise.reject(new ClnrmError('CLNRM_INTERNAL', `no network is held for ${key}`))
  }

  /** One container fewer on `key`'s network; the last one makes it a spare or removes it. Call after the container is gone. */
  async drop(key: string, options: { spare?: boolean } = {}): Promise<void> {
    const held = this.#held.get(key)
    if (!held || --held.users > 0) return
    this.#held.delete(key)
    if (options.spare !== false && !this.#closed && this.#spares.length < SPARE_MAX) return this.#spare(held.name)
    await this.#remove(held.name)
  }

  /** Networks alive or being created, spares included. */
  get size(): number {
    return this.#held.size + this.#spares.length
  }

  /** Removes every network (the pool is closing, its containers are gone). */
  async close(): Promise<void> {
    this.#closed = true
    const all = [...this.#held.values(), ...this.#spares.splice(0)]
    for (const spare of all) clearTimeout((spare as Spare).timer)
    this.#held.clear()
    await Promise.allSettled([...this.#removing, ...all.map(held => held.name.then(name => this.#docker().removeNetwork(name)))])
  }
}
