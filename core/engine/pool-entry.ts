import { randomUUID } from 'node:crypto'
import type { EngineContainer } from './adapter.ts'
import type { StartWatch } from './container.ts'
import type { CommandRunner } from './exec/types.ts'
import type { PoolEvent } from './pool-types.ts'
import type { Claim, Parked } from './reuse.ts'
import type { ServiceSpec } from '../format/spec.ts'

/**
 * The pool's own records of its containers (kept out of pool.ts so the modules that start,
 * group and remove containers share one definition of them). Internal to core/engine.
 */

/** The key of the one network every lone service that needs one shares (see `networkKey`). */
export const SHARED_NETWORK = '#shared'

/**
 * The pool network a service's container joins: its group's when the test has several services
 * (they reach each other by name on it); the pool's shared one for a lone service that asks for
 * a private network (`ServiceSpec.privateNetwork`); none otherwise (the default bridge).
 */
export function networkKey(service: ServiceSpec, group: string | undefined): string | undefined {
  if (group) return group
  return service.privateNetwork ? SHARED_NETWORK : undefined
}

/** A new group of a multi-service test: its containers and its own network, taken by one test at a time. */
export const newGroup = (): string => `group-${randomUUID().slice(0, 12)}`

/** A fresh run directory name inside a container. */
export const newWorkdir = (): string => `/tmp/clnrm-run-${randomUUID().slice(0, 12)}`

/** Why the pool removed a container (the `pool:container-removed` event's reason). */
export type RemovalReason = Extract<PoolEvent, { type: 'pool:container-removed' }>['reason']

/** One live container of the pool: idle, busy (leased to a run) or being released. */
export interface Entry {
  key: string
  /** The test file whose run started it. */
  file: string
  service: string
  image: string
  /** The key of the pool network it is on (`networkKey`). */
  network?: string
  /** The group of a multi-service test it belongs to (one network; leased whole, see `chooseGroup`). */
  group?: string
  /** Started with its shell deferred to first use (`deferredRunner`): nothing ran in it yet. */
  deferred?: boolean
  container: EngineContainer
  id: string
  runner: CommandRunner
  hostPorts: Record<number, number>
  busy: boolean
  releasing: boolean
  /** Its test file was deleted while it ran: removed on release instead of kept. */
  retired: boolean
  /** The signal of the run holding it: an aborted run frees it soon, so wait rather than start another. */
  signal?: AbortSignal
  /** Pending while busy; settles when the entry is free again (or removed). */
  freed: Promise<void>
  markFreed: () => void
  /** Created after the previous run, so a warm lease costs no command at all. */
  nextWorkdir: string
  uses: number
  lastUsed: number
  /** When its current run took it (`performance.now()`): how long runs hold a definition's containers. */
  leasedAt: number
  /** A deferred container's watch over its main process, from its start until its first lease's check ends. */
  startWatch?: StartWatch
  idleTimer?: ReturnType<typeof setTimeout>
  networks?: Promise<{ addresses: string[]; gateways: string[] }>
  /** Its cross-process lease, when it may be left for the next process (`reuseAcrossRuns`). */
  claim?: Claim
}

/** A slot taken by a container that is starting; it counts against the limit like a live one. */
export interface Starting {
  file: string
  key: string
  retired: boolean
  /** A container a previous process left, to claim instead of starting one. */
  adopt?: Parked
  /** The multi-service group it starts into. */
  group?: string
}

/** What one test takes from the pool at once: idle containers to reuse and slots to start the rest in. */
export interface Reservation {
  reused: Array<{ service: ServiceSpec; entry: Entry }>
  fresh: Array<{ service: ServiceSpec; key: string; slot: Starting }>
  /** Settles when the idle containers removed to make room are gone. */
  evicted: Promise<unknown>
}

/** What the pool did so far (part of `ContainerPool.stats()`). */
export interface PoolCounts {
  started: number
  reused: number
  replaced: number
  adopted: number
  parked: number
}

/** Marks an entry leased: `freed` now waits for its release. */
export function markBusy(entry: Entry): void {
  entry.busy = true
  entry.freed = new Promise<void>(resolve => (entry.markFreed = resolve))
}

/** A container's IPv4 addresses and gateways on its networks, asked once (they do not change while it runs). */
export function networksOf(entry: Entry): Promise<{ addresses: string[]; gateways: string[] }> {
  entry.networks ??= entry.container.inspect().then(
    (info) => {
      const networks = Object.values(info.NetworkSettings.Networks ?? {})
      return { addresses: networks.map(n => n.IPAddress).filter((a): a is string => !!a), gateways: networks.map(n => n.Gateway).filter((g): g is string => !!g) }
    },
    () => ({ addresses: [], gateways: [] }),
  )
  return entry.networks
}
