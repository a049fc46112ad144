import { ClnrmError } from '../errors.ts'
import { randomUUID } from 'node:crypto'
import { availableParallelism, hostname } from 'node:os'
import type { EngineAdapter } from './adapter.ts'
import { answerWithin } from './answer-within.ts'
import type { DockerConnection } from './docker.ts'
import { AbortedError, connectDocker, linkSignals, throwIfAborted } from './docker.ts'
import { createImageResolver, untilAborted } from './images.ts'
import type { ImageResolver, PullRecord } from './images.ts'
import { removeOrphans } from './orphans.ts'
import { DemandLedger } from './pool-demand.ts'
import { DefinitionKeys } from './pool-keys.ts'
import type { Entry, PoolCounts, RemovalReason, Reservation, Starting } from './pool-entry.ts'
import type { GroupContext } from './pool-groups.ts'
import { leaseReservation } from './pool-lease.ts'
import type { LessorContext } from './pool-lease.ts'
import { PoolNetworks } from './pool-networks.ts'
import { reserve } from './pool-reserve.ts'
import type { ReserveContext } from './pool-reserve.ts'
import { startContainer } from './pool-start.ts'
import type { StartContext } from './pool-start.ts'
import { PoolTeardown } from './pool-teardown.ts'
import type { ContainerPoolOptions, Lease, PoolEvent } from './pool-types.ts'
import { LABELS } from './pool-types.ts'
import type { ServiceSpec, TestSpec } from '../format/spec.ts'
import type { HostReach } from './host-reach.ts'
import { hostRouteFor } from './host-reach.ts'
import type { TakeResult } from './turns.ts'
import { Turns } from './turns.ts'
import type { Parked } from './reuse.ts'
import { sweepReusable } from './reuse.ts'

export { LABELS, ResetFailedError } from './pool-types.ts'
export type { ContainerPoolOptions, Lease, LeasedService, PoolEvent } from './pool-types.ts'

/**
 * Starts, reuses and removes service containers. A container is reused only for an identical
 * service definition (image id, command, env, ports, volumes, health check…), is leased to one
 * run at a time, and every run gets a fresh workdir, so reuse stays hermetic. At most
 * `maxContainers` exist at once, starting and busy ones included; a test takes all the containers
 * it needs in one step or waits its turn (first come, first served), so tests never hold part of
 * what they need while waiting for the rest. Containers carry this process's pid and session: a
 * new pool removes those of dead sessions, and never adopts a live process's containers.
 */
export class ContainerPool {
  readonly sessionId: string = randomUUID()
  readonly #options: Required<Omit<ContainerPoolOptions, 'connection' | 'onEvent' | 'plan'>> & Pick<ContainerPoolOptions, 'onEvent'>
  readonly #connection: DockerConnection
  readonly #entries = new Set<Entry>()
  readonly #imageId: ImageResolver
  readonly #networks: PoolNetworks
  readonly #starting = new Set<Starting>()
  readonly #startPromises = new Set<Promise<unknown>>()
  /** Tests waiting for containers, served in arrival order. */
  readonly #turns = new Turns<Reservation>()
  readonly #keys: DefinitionKeys
  /** Containers earlier processes left (`reuseAcrossRuns`), by definition key, not claimed yet. */
  readonly #parked = new Map<string, Parked[]>()
  /** Who acquires which definition, and whether another container of it pays (`DemandLedger`). */
  readonly #demand = new DemandLedger(this.#entries, () => this.#turns.pump())
  /** Aborts starts and waits when the pool closes. */
  readonly #shutdown = new AbortController()
  #closing: Promise<void> | undefined
  #closed = false
  readonly #onClose = new Set<() => Promise<void> | void>()
  readonly #counts: PoolCounts = { started: 0, reused: 0, replaced: 0, adopted: 0, parked: 0 }
  readonly #teardown: PoolTeardown
  /** What the start and group modules see of this pool. */
  readonly #context: StartContext & GroupContext
  /** What leasing and releasing see of this pool. */
  readonly #lessor: LessorContext
  /** What taking a test's containers in one step sees of this pool. */
  readonly #reserver: ReserveContext

  private constructor(connection: DockerConnection, options: ContainerPoolOptions) {
    this.#connection = connection
    this.#options = {
      maxContainers: Math.max(1, options.maxContainers ?? 8),
      idleTimeoutMs: options.idleTimeoutMs ?? 600_000,
      reuseAcrossRuns: options.reuseAcrossRuns ?? false,
      reuseIdleTimeoutMs: options.reuseIdleTimeoutMs ?? 600_000,
      onEvent: options.onEvent,
    }
    this.#imageId = createImageResolver(() => this.#docker, {
      start: event => this.#emit({ type: 'pool:image-pull-start', ...event }),
      progress: event => this.#emit({ type: 'pool:image-pull', ...event }),
      done: ({ startedAt: _, ...record }) => this.#emit({ type: 'pool:image-pull-done', ...record }),
    })
    this.#keys = new DefinitionKeys(image => this.#imageId(image))
    this.#networks = new PoolNetworks(() => this.#docker, () => this.#labels(), this.sessionId.slice(0, 8))
    const emit = (event: PoolEvent): void => this.#emit(event)
    const pump = (): void => this.#turns.pump()
    this.#teardown = new PoolTeardown({ entries: this.#entries, networks: this.#networks, counts: this.#counts, emit, pump })
    this.#context = {
      connection, networks: this.#networks, teardown: this.#teardown, demand: this.#demand, counts: this.#counts, starting: this.#starting, entries: this.#entries,
      reuseAcrossRuns: this.#options.reuseAcrossRuns, labels: extra => this.#labels(extra), emit, pump, closed: () => this.#closed,
      replaceDead: (entry, service, file) => this.#replaceDead(entry, service, file),
    }
    this.#lessor = {
      entries: this.#entries, demand: this.#demand, networks: this.#networks, idleTimeoutMs: this.#options.idleTimeoutMs, pump,
      start: (spec, service, key, slot, signal) => this.#startTracked(spec, service, key, slot, signal),
      remove: (entry, reason) => this.#remove(entry, reason),
    }
    this.#reserver = {
      entries: this.#entries, starting: this.#starting, demand: this.#demand, networks: this.#networks, counts: this.#counts, parked: this.#parked,
      maxContainers: this.#options.maxContainers, used: () => this.#used,
      replaceDead: (entry, service, file) => this.#replaceDead(entry, service, file),
      remove: (entry, reason) => this.#remove(entry, reason),
    }
  }

  /** Connects to the engine and removes orphans of dead sessions. */
  static async create(options: ContainerPoolOptions = {}): Promise<ContainerPool> {
    const pool = new ContainerPool(options.connection ?? await connectDocker(), options)
    // The plan's images and network are made while the sweeps below run.
    if (options.plan) void pool.prepareImages(options.plan)
    try {
      // Any process sweeps what earlier `--reuse` runs left idle too long; only `--reuse` adopts.
      // The two sweeps touch disjoint containers (orphans never carry the reuse label), so they run at once.
      const [, reusable] = await Promise.all([
        pool.removeOrphans(),
        sweepReusable(pool.#docker, pool.#options.reuseIdleTimeoutMs).catch(() => ({ removed: 0, parked: [] })),
      ])
      if (reusable.removed) pool.#emit({ type: 'pool:reusable-swept', containers: reusable.removed })
      if (pool.#options.reuseAcrossRuns) {
        for (const parked of reusable.parked) {
          const list = pool.#parked.get(parked.key) ?? []
          list.push(parked)
          pool.#parked.set(parked.key, list)
        }
      }
    }
    catch (error) {
      // Nothing it made (a network for the plan) outlives a pool that never was.
      await pool.close()
      throw error
    }
    return pool
  }

  #emit(event: PoolEvent): void {
    try {
      this.#options.onEvent?.(event)
    }
    catch {}
  }

  get #docker(): EngineAdapter {
    return this.#connection.engine
  }

  /** Removes containers and networks left by clnrm processes on this host that no longer run. */
  async removeOrphans(): Promise<{ containers: number; networks: number }> {
    const removed = await removeOrphans(this.#docker)
    if (removed.containers || removed.networks) this.#emit({ type: 'pool:orphans-removed', ...removed })
    return removed
  }

  #labels(extra: Record<string, string> = {}): Record<string, string> {
    return { [LABELS.managed]: '1', [LABELS.pid]: String(process.pid), [LABELS.host]: hostname(), [LABELS.session]: this.sessionId, ...extra }
  }

  /**
   * Starts resolving every image these tests need, at once: missing ones are pulled in parallel
   * (with `pool:image-pull*` events) before any test waits on them, and a test that gets to its
   * image first joins the pull in flight. A failed pull fails only the tests needing that image,
   * each with the same `MissingImageError`, without pulling again (unless `remember: false`). Never rejects.
   */
  prepareImages(specs: Iterable<TestSpec>, options: { remember?: boolean } = {}): Promise<void> {
    const images = new Set<string>()
    let grouped = 0
    for (const spec of specs) {
      for (const variant of spec.variants ?? [spec]) {
        if (Object.keys(variant.services).length > 1) grouped++
        for (const service of Object.values(variant.services)) images.add(service.image)
      }
    }
    // Their networks too: one kept ready, so no multi-service cold start waits for its network.
    this.#networks.expect(grouped)
    return this.#imageId.prepare(images, options)
  }

  /** Every pull this pool made, in start order: image, registry, start (epoch ms), duration, layers, bytes, error. */
  get pulls(): readonly PullRecord[] {
    return this.#imageId.pulls()
  }

  /**
   * Leases containers for every service of a test, starting the missing ones in parallel.
   * Waits while the limit is reached. Aborting the signal ends the wait, the starts and the
   * readiness checks at once (with `AbortedError`) and removes what was half started.
   * `backlog`: how many tests the caller will run after this one (a dev reload's queue), so a
   * long queue can justify another container of the definition (`DemandLedger.worthStarting`).
   * `checkStartsLater`: resolve once every container has started, before the start check of the
   * services no step uses has ended; the caller awaits `Lease.startsChecked` before its verdict.
   */
  async acquire(spec: TestSpec, options: { signal?: AbortSignal; backlog?: number; checkStartsLater?: boolean } = {}): Promise<Lease> {
    if (this.#closing) throw new ClnrmError('CLNRM_POOL_CLOSED', 'the container pool is closed')
    const start = performance.now()
    const services = Object.values(spec.services)
    // The test's network is made while its images resolve (a spare it then takes), unless a
    // group this file used is waiting warm.
    if (services.length > 1) this.#networks.prepare(spec.file, { spare: ![...this.#entries].some(entry => entry.group && !entry.busy && entry.file === spec.file) })
    // A pull can take minutes: a cancelled run or a closing pool stops waiting for it at once.
    const keys = await untilAborted(this.#keys.keysFor(spec), options.signal, this.#shutdown.signal)
    // Not AbortSignal.any: its dependent signals stay attached to the pool's for as long as the
    // pool lives, which a long dev session would feel. This one is detached when acquire ends.
    const { signal, dispose } = linkSignals(options.signal, this.#shutdown.signal)
    const reusable = keys.filter((_, i) => services[i]!.reuse)
    this.#demand.enter(reusable, options.backlog)
    try {
      return await this.#acquire(spec, services, keys, signal, options.signal, start, options.checkStartsLater)
    }
    finally {
      this.#demand.leave(reusable)
      dispose()
    }
  }

  async #acquire(spec: TestSpec, services: ServiceSpec[], keys: string[], signal: AbortSignal, runSignal: AbortSignal | undefined, start: number, checkStartsLater = false): Promise<Lease> {
    throwIfAborted(signal)
    const take = (): TakeResult<Reservation> => reserve(this.#reserver, spec, services, keys)
    // First come, first served: with tests already waiting, a newcomer queues behind them.
    const reservation = await this.#turns.take(take, signal, () => (this.#closed ? new ClnrmError('CLNRM_POOL_CLOSED', 'the container pool closed') : new AbortedError()))
    return leaseReservation(this.#lessor, spec, services, reservation, { signal, runSignal, start, checkStartsLater })
  }

  /** Containers counted against the limit: live ones, those starting and those being removed. */
  get #used(): number {
    return this.#entries.size + this.#starting.size + this.#teardown.removing
  }

  #startTracked(spec: TestSpec, service: ServiceSpec, key: string, slot: Starting, signal: AbortSignal): Promise<Entry> {
    const started = startContainer(this.#context, spec, service, key, slot, signal)
    this.#startPromises.add(started)
    started.finally(() => this.#startPromises.delete(started)).catch(() => {})
    return started
  }

  /** An idle container whose main process ended: replaced (removed; the test that found it starts another). */
  #replaceDead(entry: Entry, service: string, file: string): void {
    this.#counts.replaced++
    this.#emit({ type: 'pool:container-replaced', service, file, reason: 'the container stopped' })
    void this.#remove(entry, 'failed')
  }

  #remove(entry: Entry, reason: RemovalReason): Promise<void> {
    return this.#teardown.remove(entry, reason)
  }

  /**
   * Starts containers ahead of the tests' first runs: one per distinct service definition, `jobs`
   * at a time, only into free slots (prewarming never evicts). Failures are left to the runs.
   */
  async prewarm(specs: readonly TestSpec[], options: { jobs?: number } = {}): Promise<void> {
    // Every missing image pulls at once; the keys below then join those pulls one by one. A long
    // session does not remember a failure: a later save tries the pull again.
    void this.prepareImages(specs, { remember: false })
    const seen = new Set<string>()
    const distinct: TestSpec[] = []
    for (const spec of specs) {
      // Containers that are never reused would be started only to be removed before the run.
      if (!Object.values(spec.services).some(service => service.reuse)) continue
      const keys = await this.#keys.keysFor(spec).catch(() => undefined)
      const id = keys?.sort().join(' ')
      if (id === undefined || seen.has(id)) continue
      seen.add(id)
      distinct.push(spec)
    }
    // Only the groups started here need networks now: a spare kept past them would hold one of
    // the engine's few address pools for the whole session.
    this.#networks.expect(distinct.filter(spec => Object.keys(spec.services).length > 1).length, { exactly: true })
    const jobs = Math.max(1, options.jobs ?? availableParallelism())
    const worker = async (): Promise<void> => {
      for (let spec = distinct.shift(); spec && !this.#closing; spec = distinct.shift()) {
        if (Object.keys(spec.services).length > this.#options.maxContainers - this.#used) continue
        await this.acquire(spec).then(lease => lease.release(), () => {})
      }
    }
    await Promise.all(Array.from({ length: Math.min(jobs, distinct.length) }, worker))
  }

  /**
   * Removes the containers a test file started, and its network (the file was deleted). Busy
   * ones are removed when their run releases them; starting ones when their first run ends.
   */
  async retire(file: string): Promise<void> {
    for (const slot of this.#starting) if (slot.file === file) slot.retired = true
    const mine = [...this.#entries].filter(entry => entry.file === file)
    for (const entry of mine) entry.retired = true
    await Promise.allSettled(mine.filter(entry => !entry.busy).map(entry => this.#remove(entry, 'retired')))
  }

  /** Whether a container still runs, by the engine's word within `timeoutMs` (`undefined`: no answer). */
  containerRuns(id: string, timeoutMs = 2000): Promise<boolean | undefined> {
    return answerWithin(this.#docker.container(id).inspect().then(info => info.State.Running && info.State.Status !== 'removing', () => false), timeoutMs, undefined)
  }

  /** Whether the engine answers a ping within `timeoutMs` (tells a dead container from a dead engine). */
  engineAnswers(timeoutMs = 2000): Promise<boolean> {
    return answerWithin(this.#docker.ping().then(() => true, () => false), timeoutMs, false)
  }


  /** Live containers (starting ones included), networks, and what the pool did so far. */
  stats(): { live: number; busy: number; starting: number; waiting: number; networks: number; started: number; reused: number; replaced: number; adopted: number; parked: number } {
    const busy = [...this.#entries].filter(e => e.busy).length
    return { live: this.#used, busy, starting: this.#starting.size, waiting: this.#turns.size, networks: this.#networks.size, ...this.#counts }
  }

  /** Removes every container and network of this session. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Starts and waits end at once; starting containers remove themselves.
      this.#closed = true
      this.#demand.close()
      this.#shutdown.abort()
      this.#imageId.close()
      await Promise.allSettled([...this.#startPromises])
      // Runs end with a release in flight (results come first): a container being released is
      // about to be idle, and may be left for the next process.
      await Promise.allSettled([...this.#entries].filter(entry => entry.claim && entry.releasing).map(entry => entry.freed))
      // Idle, healthy containers under a cross-process lease are left for the next process.
      await Promise.allSettled([...this.#entries].map(entry => (entry.claim && !entry.busy && !entry.retired && entry.runner.alive ? this.#teardown.park(entry) : this.#remove(entry, 'closed'))))
      // Removals a run's release started before the close, too: nothing is left behind.
      await this.#teardown.settled()
      await this.#teardown.removeUnremoved()
      await this.#networks.close()
      // What lived as long as the pool (the OTLP receiver), once its containers are gone.
      await Promise.allSettled([...this.#onClose].map(async close => close()))
    })()
    return this.#closing
  }

  /**
   * The default bridge's gateway address (what `host-gateway` resolves to, on the engine's host),
   * or undefined when the engine does not say. Engines often list only the subnet: the gateway
   * is then its first address, as the daemon assigns it.
   */
  async bridgeGateway(): Promise<string | undefined> {
    try {
      const config = await this.#docker.inspectNetwork('bridge')
      if (config.gateway) return config.gateway.split('/')[0]
      const [a, b, c, d] = config.subnet!.split('/')[0]!.split('.').map(Number) as [number, number, number, number]
      return `${a}.${b}.${c}.${d + 1}`
    }
    catch {
      return undefined
    }
  }

  /** How this engine's containers reach this machine (`host-reach.ts`), found once per engine per process. */
  hostRoute(): Promise<HostReach> {
    return hostRouteFor(this.#docker)
  }

  /** Runs `close` when the pool closes (at once if it is closed already). */
  onClose(close: () => Promise<void> | void): void {
    if (this.#closing) void Promise.resolve().then(close).catch(() => {})
    else this.#onClose.add(close)
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}
