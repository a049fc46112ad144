import { ClnrmError } from '../errors.ts'
import { randomUUID } from 'node:crypto'
import type { EngineAdapter } from './adapter.ts'

interface Held {
  name: Promise<string>
  /** Containers on it, starting ones included. */
  users: number
}

/**
 * The private networks of multi-service tests, one per test file, counted by the containers on
 * them: the last container to go takes its network with it. Engines have a few dozen address
 * pools (about 31 by default), so networks must not outlive their containers; since every network
 * holds at least one of the pool's containers, the container limit bounds them too.
 */
export class PoolNetworks {
  readonly #docker: () => EngineAdapter
  readonly #labels: () => Record<string, string>
  readonly #prefix: string
  readonly #held = new Map<string, Held>()
  readonly #removing = new Set<Promise<void>>()

  constructor(docker: () => EngineAdapter, labels: () => Record<string, string>, prefix: string) {
    this.#docker = docker
    this.#labels = labels
    this.#prefix = prefix
  }

  /** Counts one more container on the file's network, creating the network on first use. */
  hold(file: string): void {
    let held = this.#held.get(file)
    if (!held) {
      // A fresh name each time: a network being removed may still carry the previous one.
      const name = `clnrm-${this.#prefix}-${randomUUID().slice(0, 10)}`
      const created = this.#docker().createNetwork({ Name: name, Labels: this.#labels() })
      held = { name: created, users: 0 }
      this.#held.set(file, held)
      created.catch(() => {
        if (this.#held.get(file) === held) this.#held.delete(file)
      })
    }
    held.users++
  }

  /** The file's network name (created by `hold`). */
  name(file: string): Promise<string> {
    return this.#held.get(file)?.name ?? Promise.reject(new ClnrmError('CLNRM_INTERNAL', `no network is held for ${file}`))
  }

  /** One container fewer on the file's network; the last one removes it. Call after the container is gone. */
  async drop(file: string): Promise<void> {
    const held = this.#held.get(file)
    if (!held || --held.users > 0) return
    this.#held.delete(file)
    const removal = held.name.then(name => this.#docker().removeNetwork(name)).then(() => {}, () => {})
    this.#removing.add(removal)
    await removal
    this.#removing.delete(removal)
  }

  /** Networks alive or being created. */
  get size(): number {
    return this.#held.size
  }

  /** Removes every network (the pool is closing, its containers are gone). */
  async close(): Promise<void> {
    const all = [...this.#held.values()]
    this.#held.clear()
    await Promise.allSettled([...this.#removing, ...all.map(held => held.name.then(name => this.#docker().removeNetwork(name)))])
  }
}
