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
 * The private networks of multi-service tests, one per test file, counted by the containers on
 * them. Engines have a few dozen address pools (about 31 by default), so networks must not
 * outlive their containers for long: when the last container goes, its network is kept as a
 * spare for at most 1.5 s (at most two spares), then removed. Since every other network holds at
 * least one of the pool's containers, the container limit bounds them too (plus the spares).
 *
 * Why spares: creating a network costs the engine about as much as starting a container, and a
 * multi-service cold start pays it on its critical path. A spare is made while the test's images
 * resolve (`prepare`) and one freed by the previous test is taken at once. An empty network holds
 * no state (host names belong to the containers on it), so handing it to the next test is hermetic.
 */
export class PoolNetworks {
  readonly #docker: () => EngineAdapter
  readonly #labels: () => Record<string, string>
  readonly #prefix: string
  readonly #held = new Map<string, Held>()
  readonly #removing = new Set<Promise<void>>()
  readonly #spares: Spare[] = []
  #closed = false

  constructor(docker: () => EngineAdapter, labels: () => Record<string, string>, prefix: string) {
    this.#docker = docker
    this.#labels = labels
    this.#prefix = prefix
  }

  /** Counts one more container on the file's network, creating the network on first use. */
  hold(file: string): void {
    let held = this.#held.get(file)
    if (!held) {
      const spare = this.#spares.shift()
      clearTimeout(spare?.timer)
      const created = spare?.name ?? this.#create()
      held = { name: created, users: 0 }
      this.#held.set(file, held)
      created.catch(() => {
        if (this.#held.get(file) === held) this.#held.delete(file)
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
   * Starts creating a spare network when there is none and the file has no network yet: its
   * multi-service test is coming (its images resolve meanwhile).
   */
  prepare(file: string): void {
    if (this.#closed || this.#spares.length || this.#held.has(file)) return
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
    spare.timer = setTimeout(() => {
      if (forget()) void this.#remove(name)
    }, SPARE_MS)
    spare.timer.unref?.()
    this.#spares.push(spare)
  }

  async #remove(name: Promise<string>): Promise<void> {
    const removal = name.then(n => this.#docker().removeNetwork(n)).then(() => {}, () => {})
    this.#removing.add(removal)
    await removal
    this.#removing.delete(removal)
  }

  /** The file's network name (created by `hold`). */
  name(file: string): Promise<string> {
    return this.#held.get(file)?.name ?? Promise.reject(new ClnrmError('CLNRM_INTERNAL', `no network is held for ${file}`))
  }

  /** One container fewer on the file's network; the last one makes it a spare or removes it. Call after the container is gone. */
  async drop(file: string, options: { spare?: boolean } = {}): Promise<void> {
    const held = this.#held.get(file)
    if (!held || --held.users > 0) return
    this.#held.delete(file)
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
