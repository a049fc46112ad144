import { ClnrmError } from '../errors.ts'
import { randomUUID } from 'node:crypto'
import { availableParallelism, hostname } from 'node:os'
import type { EngineAdapter, EngineContainer } from './adapter.ts'
import { deferredRunner, exitedError, explainExits, startServiceContainer } from './container.ts'
import type { DockerConnection } from './docker.ts'
import { AbortedError, connectDocker, EngineRefusedError, isEngineUnreachable, linkSignals, ServiceExitedError, throwIfAborted } from './docker.ts'
import { startRunner } from './exec/strategy.ts'
import type { CommandRunner } from './exec/types.ts'
import { contentHash } from '../hash.ts'
import { createImageResolver, untilAborted } from './images.ts'
import type { ImageResolver, PullRecord } from './images.ts'
import { removeOrphans } from './orphans.ts'
import { portEnvName, serviceDefinitionHash } from '../format/plan.ts'
import { PoolNetworks } from './pool-networks.ts'
import type { ContainerPoolOptions, Lease, LeasedService, PoolEvent } from './pool-types.ts'
import { LABELS, ResetFailedError } from './pool-types.ts'
import { waitUntilReady } from './readiness.ts'
import type { ServiceSpec, TestSpec } from '../format/spec.ts'
import type { HostReach } from './host-reach.ts'
import { hostRouteFor } from './host-reach.ts'
import type { TakeResult } from './turns.ts'
import { PASS, Turns } from './turns.ts'
import type { Claim, Parked } from './reuse.ts'
import { claim, CREATOR_LABEL, newClaim, park, publishedPorts, releaseClaim, REUSE_LABEL, sweepReusable, usedName } from './reuse.ts'

export { LABELS, ResetFailedError } from './pool-types.ts'
export type { ContainerPoolOptions, Lease, LeasedService, PoolEvent } from './pool-types.ts'

/** The key of the one network every lone service that needs one shares (see `networkKey`). */
const SHARED_NETWORK = '#shared'

/**
 * The pool network a service's container joins: its group's when the test has several services
 * (they reach each other by name on it); the pool's shared one for a lone service that asks for
 * a private network (`ServiceSpec.privateNetwork`); none otherwise (the default bridge).
 */
function networkKey(service: ServiceSpec, group: string | undefined): string | undefined {
  if (group) return group
  return service.privateNetwork ? SHARED_NETWORK : undefined
}

/** A new group of a multi-service test: its containers and its own network, taken by one test at a time. */
const newGroup = (): string => `group-${randomUUID().slice(0, 12)}`

/** A container's IPv4 addresses and gateways on its networks, asked once (they do not change while it runs). */
function networksOf(entry: Entry): Promise<{ addresses: string[]; gateways: string[] }> {
  entry.networks ??= entry.container.inspect().then(
    (info) => {
      const networks = Object.values(info.NetworkSettings.Networks ?? {})
      return { addresses: networks.map(n => n.IPAddress).filter((a): a is string => !!a), gateways: networks.map(n => n.Gateway).filter((g): g is string => !!g) }
    },
    () => ({ addresses: [], gateways: [] }),
  )
  return entry.networks
}

const newWorkdir = (): string => `/tmp/clnrm-run-${randomUUID().slice(0, 12)}`

interface Entry {
  key: string
  /** The test file whose run started it. */
  file: string
  service: string
  image: string
  /** The key of the pool network it is on (`networkKey`). */
  network?: string
  /** The group of a multi-service test it belongs to (one network; leased whole, see `#chooseGroup`). */
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
  idleTimer?: ReturnType<typeof setTimeout>
  networks?: Promise<{ addresses: string[]; gateways: string[] }>
  /** Its cross-process lease, when it may be left for the next process (`reuseAcrossRuns`). */
  claim?: Claim
}

/** A slot taken by a container that is starting; it counts against the limit like a live one. */
interface Starting {
  file: string
  key: string
  retired: boolean
  /** A container a previous process left, to claim instead of starting one. */
  adopt?: Parked
  /** The multi-service group it starts into. */
  group?: string
}

/**
 * What the pool learned about one service definition: how long its container takes to start and
 * how long a run holds it (release included). Moving averages, so a slow first run fades out.
 */
interface KeyStats {
  startMs?: number
  holdMs?: number
}

/** Start time assumed before any container has started (a local image on an idle machine). */
const DEFAULT_START_MS = 300

const average = (previous: number | undefined, sample: number): number => (previous === undefined ? sample : 0.7 * previous + 0.3 * sample)

/** What one test takes from the pool at once: idle containers to reuse and slots to start the rest in. */
interface Reservation {
  reused: Array<{ service: ServiceSpec; entry: Entry }>
  fresh: Array<{ service: ServiceSpec; key: string; slot: Starting }>
  /** Settles when the idle containers removed to make room are gone. */
  evicted: Promise<unknown>
}


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
  readonly #keys = new WeakMap<ServiceSpec, { imageId: string; key: string }>()
  readonly #keyStats = new Map<string, KeyStats>()
  /** Containers earlier processes left (`reuseAcrossRuns`), by definition key, not claimed yet. */
  readonly #parked = new Map<string, Parked[]>()
  /** Start time over every definition: the estimate for a definition not started yet. */
  #startMs: number | undefined
  /** Tests acquiring a container of each definition right now (waiting ones and the one being served). */
  readonly #demand = new Map<string, number>()
  /**
   * Tests the callers acquiring each definition said they will run after this one (`backlog`,
   * the latest hint): queued work the pool cannot see, counted as demand by `#worthStarting`.
   */
  readonly #backlog = new Map<string, number>()
  /** Asks the waiters again once running tests have held their containers longer (see `#worthStarting`). */
  #recheck: ReturnType<typeof setTimeout> | undefined
  /** Aborts starts and waits when the pool closes. */
  readonly #shutdown = new AbortController()
  /** Containers whose removal failed because the engine was away: removed once it answers again. */
  readonly #unremoved = new Set<EngineContainer>()
  #closing: Promise<void> | undefined
  #closed = false
  readonly #onClose = new Set<() => Promise<void> | void>()
  #removing = 0
  /** Removals in flight (containers, then their networks). */
  readonly #removals = new Set<Promise<void>>()
  #counts = { started: 0, reused: 0, replaced: 0, adopted: 0, parked: 0 }

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
    this.#networks = new PoolNetworks(() => this.#docker, () => this.#labels(), this.sessionId.slice(0, 8))
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

  /** A lone service's key: its image id and definition. Containers are reused only under the same key. */
  async #keyFor(service: ServiceSpec): Promise<string> {
    const imageId = await this.#imageId(service.image)
    // The config cache hands out the same spec objects while a file is unchanged, so the
    // definition hash (a stable stringify and a sha1) is worked out once per definition.
    let cached = this.#keys.get(service)
    if (cached?.imageId !== imageId) {
      cached = { imageId, key: contentHash(imageId, serviceDefinitionHash(service), '') }
      this.#keys.set(service, cached)
    }
    return cached.key
  }

  /**
   * The keys of a test's services. A multi-service test's are keyed by its whole set of
   * (service id, definition) pairs: its containers form a group on a network of their own where
   * the service ids are host names, so they are reused only as a whole (`#chooseGroup`), by any
   * test, of any file, whose services have the same ids and definitions, never by two at once.
   */
  async #keysFor(spec: TestSpec): Promise<string[]> {
    const services = Object.values(spec.services)
    const lone = await Promise.all(services.map(service => this.#keyFor(service)))
    if (services.length < 2) return lone
    const set = contentHash(...services.map((service, i) => `${service.id}=${lone[i]}`).sort())
    return services.map(service => contentHash(set, service.id))
  }

  /**
   * Leases containers for every service of a test, starting the missing ones in parallel.
   * Waits while the limit is reached. Aborting the signal ends the wait, the starts and the
   * readiness checks at once (with `AbortedError`) and removes what was half started.
   * `backlog`: how many tests the caller will run after this one (a dev reload's queue), so a
   * long queue can justify another container of the definition (`#worthStarting`).
   */
  async acquire(spec: TestSpec, options: { signal?: AbortSignal; backlog?: number } = {}): Promise<Lease> {
    if (this.#closing) throw new ClnrmError('CLNRM_POOL_CLOSED', 'the container pool is closed')
    const start = performance.now()
    const services = Object.values(spec.services)
    // The test's network is made while its images resolve (a spare it then takes), unless a
    // group this file used is waiting warm.
    if (services.length > 1) this.#networks.prepare(spec.file, { spare: ![...this.#entries].some(entry => entry.group && !entry.busy && entry.file === spec.file) })
    // A pull can take minutes: a cancelled run or a closing pool stops waiting for it at once.
    const keys = await untilAborted(this.#keysFor(spec), options.signal, this.#shutdown.signal)
    // Not AbortSignal.any: its dependent signals stay attached to the pool's for as long as the
    // pool lives, which a long dev session would feel. This one is detached when acquire ends.
    const { signal, dispose } = linkSignals(options.signal, this.#shutdown.signal)
    const reusable = keys.filter((_, i) => services[i]!.reuse)
    for (const key of reusable) {
      this.#demand.set(key, (this.#demand.get(key) ?? 0) + 1)
      if (options.backlog) this.#backlog.set(key, options.backlog)
    }
    try {
      return await this.#acquire(spec, services, keys, signal, options.signal, start)
    }
    finally {
      for (const key of reusable) {
        const left = this.#demand.get(key)! - 1
        if (left) this.#demand.set(key, left)
        else {
          this.#demand.delete(key)
          this.#backlog.delete(key)
        }
      }
      dispose()
    }
  }

  async #acquire(spec: TestSpec, services: ServiceSpec[], keys: string[], signal: AbortSignal, runSignal: AbortSignal | undefined, start: number): Promise<Lease> {
    throwIfAborted(signal)
    const take = (): TakeResult<Reservation> => this.#reserve(spec, services, keys)
    // First come, first served: with tests already waiting, a newcomer queues behind them.
    const reservation = await this.#turns.take(take, signal, () => (this.#closed ? new ClnrmError('CLNRM_POOL_CLOSED', 'the container pool closed') : new AbortedError()))

    const leased: Record<string, LeasedService> = {}
    // Keyed by entry, not by the entry's service id: tests whose services are defined alike
    // share containers under different ids.
    const entries = new Map<Entry, ServiceSpec>()
    const failed = new Set<Entry>()
    const lease = (service: ServiceSpec, entry: Entry, reused: boolean): void => {
      entry.signal = runSignal
      entry.leasedAt = performance.now()
      entries.set(entry, service)
      leased[service.id] = { id: service.id, containerId: entry.id, runner: entry.runner, hostPorts: entry.hostPorts, reused, workdir: entry.nextWorkdir, addresses: async () => (await networksOf(entry)).addresses, gateways: async () => (await networksOf(entry)).gateways }
    }
    for (const { service, entry } of reservation.reused) lease(service, entry, true)
    const settled = await Promise.allSettled([
      ...reservation.fresh.map(async ({ service, key, slot }) => {
        // Evicted containers are gone from the engine before new ones are created: never over the limit.
        await reservation.evicted
        lease(service, await this.#startTracked(spec, service, key, slot, signal), false)
      }),
    ])
    let failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason as unknown
    if (!failure) {
      // A service whose shell was deferred had no exec to tell that its main process ended at
      // start; by now the others' starts gave it as long as a shell's start would have.
      const exits = await Promise.all([...entries.keys()].filter(entry => entry.deferred && entry.uses === 1).map(entry => exitedError(entry.container, entry.service)))
      failure = exits.find(exit => exit !== undefined)
    }
    // The next multi-service test's network is made now, not beside these starts.
    if (services.length > 1) this.#networks.refill()
    if (!failure) {
      // `reset` runs before every run, fresh containers included: the same definition gets the same verdict every time.
      const resets = await Promise.allSettled(services.filter(s => s.reset).map(async (service) => {
        const entry = [...entries].find(([, s]) => s === service)![0]
        const result = await entry.runner.exec({ argv: service.reset!, timeoutMs: 30_000, signal })
        throwIfAborted(signal)
        if (result.exitCode !== 0) {
          failed.add(entry)
          throw new ResetFailedError(service.id, result.exitCode, result.stderr.trim().slice(-300))
        }
      }))
      failure = resets.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason
    }
    if (failure) {
      // Reused containers go back to the pool; new ones and those whose reset failed are removed.
      const reused = new Set(reservation.reused.map(r => r.entry))
      await Promise.allSettled([...entries].map(([entry, service]) => (reused.has(entry) && !failed.has(entry) ? this.#release(entry, service) : this.#remove(entry, 'failed'))))
      throw failure
    }
    const env: Record<string, string> = {}
    for (const service of services) {
      for (const port of service.ports) env[portEnvName(service.id, port)] = String(leased[service.id]!.hostPorts[port])
    }
    let released: Promise<void> | undefined
    return {
      runId: randomUUID().slice(0, 12),
      services: leased,
      env,
      acquireMs: performance.now() - start,
      release: () => {
        released ??= Promise.allSettled([...entries].map(([entry, service]) => this.#release(entry, service))).then(() => {})
        return released
      },
    }
  }

  /** Containers counted against the limit: live ones, those starting and those being removed. */
  get #used(): number {
    return this.#entries.size + this.#starting.size + this.#removing
  }

  /**
   * Takes everything a test needs in one synchronous step, or nothing: idle containers of the
   * same definitions, and slots for the rest (removing idle containers of other definitions to
   * make room). `undefined` means wait, holding the queue: the limit is reached. `PASS` means wait
   * for a container of the test's own definition (busy, starting, or about to be freed), letting
   * tests of other definitions by.
   *
   * A definition that has containers gets another only when its queued work justifies the start
   * (`#worthStarting`), and never while one of its starts is in flight: the tests that arrive
   * meanwhile wait for that start instead of starting their own (`clnrm run -j 8` on 50 files of
   * one definition starts one container, not eight).
   */
  #reserve(spec: TestSpec, services: ServiceSpec[], keys: string[]): TakeResult<Reservation> {
    const taken = new Set<Entry>()
    const reused: Reservation['reused'] = []
    const missing: Array<{ service: ServiceSpec; key: string }> = []
    /** Some missing containers are extra ones of a definition that has some: waiting is an option. */
    let optional = false
    // A multi-service test takes one whole group (one network), never parts of two.
    let group: string | undefined
    if (services.length > 1) {
      const chosen = this.#chooseGroup(spec, services, keys)
      if (chosen === PASS) return PASS
      ;({ group, optional } = chosen)
      for (const [i, service] of services.entries()) {
        const entry = chosen.entries.get(keys[i]!)
        if (entry && service.reuse) {
          taken.add(entry)
          reused.push({ service, entry })
        }
        else missing.push({ service, key: keys[i]! })
      }
    }
    else for (const [i, service] of services.entries()) {
      const key = keys[i]!
      if (service.reuse) {
        let found: Entry | undefined
        let soon = false
        let live = 0
        for (const entry of this.#entries) {
          if (entry.key !== key || taken.has(entry) || entry.retired) continue
          if (entry.busy) {
            live++
            soon ||= entry.releasing || !!entry.signal?.aborted
            continue
          }
          if (!entry.runner.alive) {
            this.#counts.replaced++
            this.#emit({ type: 'pool:container-replaced', service: service.id, file: spec.file, reason: 'the container stopped' })
            void this.#remove(entry, 'failed')
            continue
          }
          found = entry
          break
        }
        if (found) {
          taken.add(found)
          reused.push({ service, entry: found })
          continue
        }
        // Freed in a few milliseconds: waiting for it beats starting another (the dev loop's pre-emption).
        if (soon) return PASS
        const starting = [...this.#starting].filter(slot => slot.key === key && !slot.retired).length
        // One start in flight per definition: the others wait for it rather than start their own.
        if (starting) return PASS
        if (live) {
          if (!this.#worthStarting(key, live)) {
            this.#armRecheck(key)
            return PASS
          }
          optional = true
        }
      }
      missing.push({ service, key })
    }
    let evicted: Promise<unknown> = Promise.resolve()
    if (missing.length) {
      const free = this.#options.maxContainers - this.#used
      const idle = [...this.#entries].filter(e => !e.busy && !taken.has(e)).sort((a, b) => a.lastUsed - b.lastUsed)
      // Evicting makes room once the evicted containers are gone (`Reservation.evicted`).
      const short = missing.length - free
      if (short > idle.length) {
        // An extra container of a busy definition is worth less than a place in the queue: wait for one of it.
        if (optional) return PASS
        // More services than the limit: run alone, once nothing else is busy or starting.
        const alone = services.length > this.#options.maxContainers && this.#starting.size === 0 && [...this.#entries].every(e => !e.busy || taken.has(e))
        if (!alone) return undefined
      }
      evicted = Promise.allSettled(idle.slice(0, Math.max(0, short)).map(entry => this.#remove(entry, 'evicted')))
    }
    for (const { entry } of reused) {
      clearTimeout(entry.idleTimer)
      this.#markBusy(entry)
      entry.uses++
      this.#counts.reused++
    }
    const fresh = missing.map(({ service, key }) => {
      const slot: Starting = { file: spec.file, key, retired: false, adopt: group ? undefined : this.#parked.get(key)?.shift(), group }
      this.#starting.add(slot)
      const network = networkKey(service, group)
      if (network) this.#networks.hold(network)
      return { service, key, slot }
    })
    return { reused, fresh, evicted }
  }

  /**
   * The group a multi-service test takes: an idle group of the same set of services (its
   * containers reused, any missing one started into it, on its network), else a new group. `PASS`
   * waits, as for a lone definition (`#reserve`): for a busy group about to be freed, for a start
   * of the same set in flight, or while the queued work does not justify another group's start.
   */
  #chooseGroup(spec: TestSpec, services: ServiceSpec[], keys: string[]): typeof PASS | { group: string; entries: Map<string, Entry>; optional: boolean } {
    const fresh = { group: newGroup(), entries: new Map<string, Entry>(), optional: false }
    const reusable = keys.filter((_, i) => services[i]!.reuse)
    if (!reusable.length) return fresh
    const wanted = new Set(reusable)
    const groups = new Map<string, Entry[]>()
    for (const entry of this.#entries) {
      if (!entry.group || entry.retired || !wanted.has(entry.key)) continue
      const members = groups.get(entry.group) ?? []
      members.push(entry)
      groups.set(entry.group, members)
    }
    let best: Entry[] | undefined
    let soon = false
    let live = 0
    for (const members of groups.values()) {
      if (members.some(entry => entry.busy)) {
        live++
        soon ||= members.some(entry => entry.releasing || !!entry.signal?.aborted)
        continue
      }
      const alive = members.filter(entry => entry.runner.alive)
      for (const dead of members.filter(entry => !entry.runner.alive)) {
        this.#counts.replaced++
        this.#emit({ type: 'pool:container-replaced', service: dead.service, file: spec.file, reason: 'the container stopped' })
        void this.#remove(dead, 'failed')
      }
      if (alive.length > (best?.length ?? 0)) best = alive
    }
    if (best) return { group: best[0]!.group!, entries: new Map(best.map(entry => [entry.key, entry])), optional: false }
    // Freed in a few milliseconds: waiting for it beats starting another group.
    if (soon) return PASS
    // One start of a set in flight: the others wait for it rather than start their own.
    if ([...this.#starting].some(slot => slot.group && !slot.retired && wanted.has(slot.key))) return PASS
    if (live) {
      if (!this.#worthStarting(reusable[0]!, live)) {
        this.#armRecheck(reusable[0]!)
        return PASS
      }
      fresh.optional = true
    }
    return fresh
  }

  /**
   * Whether another container of a definition pays for its start: the work queued for it (the
   * tests acquiring it, plus the backlog their callers announced, × how long a run holds a container, or how long the current runs have held
   * theirs so far, if longer), spread over its `live` containers, outlasts a start.
   */
  #worthStarting(key: string, live: number): boolean {
    const stats = this.#keyStats.get(key)
    const now = performance.now()
    let held = 0
    for (const entry of this.#entries) if (entry.key === key && entry.busy) held = Math.max(held, now - entry.leasedAt)
    const holdMs = Math.max(stats?.holdMs ?? 0, held)
    const startMs = stats?.startMs ?? this.#startMs ?? DEFAULT_START_MS
    return (((this.#demand.get(key) ?? 1) + (this.#backlog.get(key) ?? 0)) * holdMs) / live > startMs
  }

  /** Runs grow longer without any event: look at the waiters again after about one start time. */
  #armRecheck(key: string): void {
    if (this.#recheck || this.#closed) return
    const startMs = this.#keyStats.get(key)?.startMs ?? this.#startMs ?? DEFAULT_START_MS
    this.#recheck = setTimeout(() => {
      this.#recheck = undefined
      this.#turns.pump()
    }, Math.max(20, startMs / 2))
    this.#recheck.unref?.()
  }

  #startTracked(spec: TestSpec, service: ServiceSpec, key: string, slot: Starting, signal: AbortSignal): Promise<Entry> {
    const started = this.#start(spec, service, key, slot, signal)
    this.#startPromises.add(started)
    started.finally(() => this.#startPromises.delete(started)).catch(() => {})
    return started
  }

  /** A container an earlier process left for this definition, claimed for this process, or undefined. */
  async #adopt(parked: Parked, service: ServiceSpec): Promise<{ container: EngineContainer; hostPorts: Record<number, number>; claim: Claim } | undefined> {
    const got = await claim(this.#docker, parked)
    if (!got) return undefined
    const container = this.#docker.container(parked.id)
    const hostPorts = await publishedPorts(container, service.ports).catch(() => undefined)
    if (hostPorts) return { container, hostPorts, claim: got }
    releaseClaim(got)
    await container.remove().catch(() => {})
    return undefined
  }

  async #start(spec: TestSpec, service: ServiceSpec, key: string, slot: Starting, signal: AbortSignal): Promise<Entry> {
    const started = performance.now()
    const network = networkKey(service, slot.group)
    let container: EngineContainer | undefined
    let runner: CommandRunner | undefined
    let lease: Claim | undefined
    try {
      this.#emit({ type: 'pool:container-starting', service: service.id, image: service.image, file: spec.file })
      const adopted = slot.adopt && await this.#adopt(slot.adopt, service)
      let hostPorts: Record<number, number>
      if (adopted) {
        ({ container, hostPorts, claim: lease } = adopted)
        this.#counts.adopted++
      }
      else {
        // Only a lone service's container without a private network may be left for the next process.
        if (this.#options.reuseAcrossRuns && service.reuse && !network) lease = newClaim()
        ;({ hostPorts } = await startServiceContainer(this.#connection, service, {
          // A container that may outlive this process belongs to no process: pid 0 (never a
          // process, and alive to every version's orphan check), its creator in `clnrm.creator`.
          labels: this.#labels({ [LABELS.key]: key, [LABELS.service]: service.id, ...(lease && { [REUSE_LABEL]: '1', [LABELS.pid]: '0', [CREATOR_LABEL]: String(process.pid) }) }),
          network: network && await this.#networks.name(network),
          // Names on the shared network would let one test's container find another test's.
          alias: network !== SHARED_NETWORK,
          ...(lease && { name: usedName(lease) }),
          signal,
          onCreated: (created) => {
            container = created
          },
        }))
      }
      const created = container!
      const id = created.id
      // The engine answers again: drop what it could not remove while it was away (once per outage).
      if (this.#unremoved.size) await this.#removeUnremoved()
      const workdir = newWorkdir()
      // A group's service that nothing runs in during this run gets its shell on first use: a
      // multi-service cold start then costs the engine no exec beside the other starts.
      const deferred = !!slot.group && !service.reset && !service.healthCheck && service.waitFor?.kind !== 'port' && !spec.steps.some(step => step.service === service.id)
      // Its main process is looked at once the test's other services are ready (`#acquire`).
      if (deferred) runner = explainExits(deferredRunner(() => startRunner(this.#docker, created), workdir), created, service.id)
      else runner = explainExits(await startRunner(this.#docker, created), created, service.id)
      throwIfAborted(signal)
      const entry: Entry = {
        key, file: spec.file, service: service.id, image: service.image, network, group: slot.group, deferred, container: created, id, runner, hostPorts, claim: lease,
        busy: false, releasing: false, retired: false, freed: Promise.resolve(), markFreed: () => {}, nextWorkdir: workdir, uses: 1, lastUsed: Date.now(), leasedAt: performance.now(),
      }
      if (!deferred) {
        await runner.prepareWorkdir(entry.nextWorkdir).catch((error: Error) => {
          throw new ClnrmError('CLNRM_WORKDIR', `could not create the run directory in "${service.id}": ${error.message}`, { cause: error, hint: 'The image must let clnrm create a directory under /tmp (a writable /tmp, or a `workdir` the image can create).' })
        })
      }
      throwIfAborted(signal)
      await waitUntilReady(service, created, runner, signal)
      // Handed over atomically: the slot becomes a busy entry, so the count never dips.
      this.#starting.delete(slot)
      entry.retired = slot.retired
      this.#markBusy(entry)
      this.#entries.add(entry)
      this.#counts.started++
      const ms = performance.now() - started
      // A claimed container costs no start: only real starts teach what another container would cost.
      if (!adopted) {
        this.#startMs = average(this.#startMs, ms)
        this.#statsOf(key).startMs = average(this.#statsOf(key).startMs, ms)
      }
      this.#emit({ type: 'pool:container-ready', service: service.id, image: service.image, file: spec.file, ms })
      // Tests waiting for this definition's start may now justify the next one (`#worthStarting`).
      this.#turns.pump()
      return entry
    }
    catch (error) {
      let reason = error
      // Whatever went wrong, a main process that ended is the story worth telling.
      if (container && !(error instanceof AbortedError) && !(error instanceof ServiceExitedError) && !(error instanceof EngineRefusedError)) reason = (await exitedError(container, service.id, { settleMs: 1000 })) ?? error
      if (signal.aborted && !(reason instanceof ServiceExitedError)) reason = this.#closed ? new ClnrmError('CLNRM_POOL_CLOSED', 'the container pool closed while a container started') : new AbortedError()
      runner?.close()
      await container?.remove().catch(() => {})
      if (lease) releaseClaim(lease)
      this.#starting.delete(slot)
      if (network) await this.#networks.drop(network, { spare: !slot.retired })
      this.#turns.pump()
      throw reason
    }
  }

  #statsOf(key: string): KeyStats {
    let stats = this.#keyStats.get(key)
    if (!stats) this.#keyStats.set(key, stats = {})
    return stats
  }

  #markBusy(entry: Entry): void {
    entry.busy = true
    entry.freed = new Promise<void>(resolve => (entry.markFreed = resolve))
  }

  async #release(entry: Entry, service: ServiceSpec): Promise<void> {
    if (!this.#entries.has(entry)) return
    if (!service.reuse || !entry.runner.alive || entry.retired) return this.#remove(entry, entry.retired ? 'retired' : 'no-reuse')
    entry.releasing = true
    // One command: kill what the run left running, empty its directory for the next run.
    const ending = entry.runner.endRun(entry.nextWorkdir, newWorkdir())
    if (entry.runner.pipelinesEnd) {
      // Queued in the container's shell ahead of any later command: the next test can have the
      // container now, its first command written together with this end. A failed end makes
      // the shell exit (that command then fails, and the container is replaced).
      await this.#free(entry)
      const ended = await ending.catch(() => undefined)
      if (ended?.exitCode !== 0) await this.#remove(entry, 'failed')
      return
    }
    try {
      const ended = await ending
      if (ended.exitCode !== 0) throw new Error('end of run failed')
      entry.nextWorkdir = ended.workdir
    }
    catch {
      return this.#remove(entry, 'failed')
    }
    await this.#free(entry)
  }

  /** A released container is idle again (or removed, if its file was deleted meanwhile). */
  #free(entry: Entry): Promise<void> | undefined {
    if (!this.#entries.has(entry)) return
    if (entry.retired) return this.#remove(entry, 'retired')
    entry.busy = false
    entry.releasing = false
    entry.signal = undefined
    entry.markFreed()
    entry.lastUsed = Date.now()
    this.#statsOf(entry.key).holdMs = average(this.#statsOf(entry.key).holdMs, performance.now() - entry.leasedAt)
    entry.idleTimer = setTimeout(() => void this.#remove(entry, 'idle'), this.#options.idleTimeoutMs)
    entry.idleTimer.unref?.()
    this.#turns.pump()
  }

  #remove(entry: Entry, reason: Extract<PoolEvent, { type: 'pool:container-removed' }>['reason']): Promise<void> {
    if (!this.#entries.delete(entry)) return Promise.resolve()
    // Tracked: a run's release removes its containers after its result, and `close` waits for that too.
    const removal = this.#removeEntry(entry, reason)
    this.#removals.add(removal)
    void removal.finally(() => this.#removals.delete(removal))
    return removal
  }

  async #removeEntry(entry: Entry, reason: Extract<PoolEvent, { type: 'pool:container-removed' }>['reason']): Promise<void> {
    clearTimeout(entry.idleTimer)
    entry.markFreed()
    entry.runner.close()
    // Counted until the engine has removed it: the limit is about what the engine holds.
    this.#removing++
    await entry.container.remove().catch((error: unknown) => {
      if (isEngineUnreachable(error)) this.#unremoved.add(entry.container)
    })
    this.#removing--
    if (entry.claim) releaseClaim(entry.claim)
    this.#emit({ type: 'pool:container-removed', service: entry.service, reason })
    // A deleted test's network goes with it; others may serve the next test as a spare.
    if (entry.network) await this.#networks.drop(entry.network, { spare: reason !== 'retired' })
    this.#turns.pump()
  }

  /** Leaves an idle container running for the next process (renamed idle: claimable), or removes it when that fails. */
  async #park(entry: Entry): Promise<void> {
    clearTimeout(entry.idleTimer)
    try {
      // The end of its last run may still be on its way: the next process must find it done.
      await entry.runner.drain?.()
      entry.runner.close()
      await park(entry.container, entry.claim!)
      this.#entries.delete(entry)
      this.#counts.parked++
    }
    catch {
      await this.#remove(entry, 'closed')
    }
  }

  async #removeUnremoved(): Promise<void> {
    const containers = [...this.#unremoved]
    this.#unremoved.clear()
    await Promise.allSettled(containers.map(c => c.remove().catch((error: unknown) => {
      if (isEngineUnreachable(error)) this.#unremoved.add(c)
    })))
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
      const keys = await this.#keysFor(spec).catch(() => undefined)
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

  /** Whether the engine answers a ping within `timeoutMs` (tells a dead container from a dead engine). */
  async engineAnswers(timeoutMs = 2000): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<boolean>(resolve => (timer = setTimeout(() => resolve(false), timeoutMs)))
    try {
      return await Promise.race([this.#docker.ping().then(() => true, () => false), timeout])
    }
    finally {
      clearTimeout(timer)
    }
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
      clearTimeout(this.#recheck)
      this.#shutdown.abort()
      this.#imageId.close()
      await Promise.allSettled([...this.#startPromises])
      // Runs end with a release in flight (results come first): a container being released is
      // about to be idle, and may be left for the next process.
      await Promise.allSettled([...this.#entries].filter(entry => entry.claim && entry.releasing).map(entry => entry.freed))
      // Idle, healthy containers under a cross-process lease are left for the next process.
      await Promise.allSettled([...this.#entries].map(entry => (entry.claim && !entry.busy && !entry.retired && entry.runner.alive ? this.#park(entry) : this.#remove(entry, 'closed'))))
      // Removals a run's release started before the close, too: nothing is left behind.
      await Promise.allSettled([...this.#removals])
      await this.#removeUnremoved()
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
