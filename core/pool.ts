import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type Dockerode from 'dockerode'
import { startServiceContainer } from './container.ts'
import type { DockerConnection } from './docker.ts'
import { connectDocker, isEngineUnreachable, MissingImageError } from './docker.ts'
import { createExecRunner } from './exec/exec-runner.ts'
import { startShellRunner } from './exec/shell-runner.ts'
import type { CommandRunner } from './exec/types.ts'
import { contentHash } from './hash.ts'
import { portEnvName, serviceDefinitionHash } from './plan.ts'
import { waitUntilReady } from './readiness.ts'
import type { ServiceSpec, TestSpec } from './spec.ts'

/** Labels on every container and network clnrm creates. */
export const LABELS = {
  managed: 'clnrm',
  key: 'clnrm.key',
  pid: 'clnrm.pid',
  host: 'clnrm.host',
  session: 'clnrm.session',
  service: 'clnrm.service',
} as const

/** What the pool reports: starts, reuse, replacements, removals, pulls. Plain data. */
export type PoolEvent =
  | { type: 'pool:orphans-removed'; containers: number; networks: number }
  | { type: 'pool:image-pull'; image: string; status: string; progress?: string }
  | { type: 'pool:container-starting'; service: string; image: string; file: string }
  | { type: 'pool:container-ready'; service: string; image: string; file: string; ms: number }
  | { type: 'pool:container-replaced'; service: string; file: string; reason: string }
  | { type: 'pool:container-removed'; service: string; reason: 'idle' | 'retired' | 'evicted' | 'closed' | 'no-reuse' | 'failed' }

/** Options of a `ContainerPool`. */
export interface ContainerPoolOptions {
  /** Containers kept alive at most; idle ones are evicted first. @default 8 */
  maxContainers?: number
  /** Milliseconds an unused container lives. @default 600_000 (10 min) */
  idleTimeoutMs?: number
  onEvent?: (event: PoolEvent) => void
  /** Injected connection (tests); connects lazily by default. */
  connection?: DockerConnection
}

/** A service's container as leased to one run of a test. */
export interface LeasedService {
  id: string
  containerId: string
  runner: CommandRunner
  /** Container port → host port on 127.0.0.1. */
  hostPorts: Record<number, number>
  /** Whether the container served an earlier run. */
  reused: boolean
  /** A fresh, empty directory for this run: the steps' default workdir. */
  workdir: string
}

/** The containers of one run of one test. Release it when the run ends. */
export interface Lease {
  runId: string
  services: Record<string, LeasedService>
  /** `SERVICE_<ID>_PORT_<n>` for every published port. */
  env: Record<string, string>
  acquireMs: number
  /**
   * Hands the containers back: kills what the run left running and removes its workdir. The
   * pool waits for it before leasing them again, so callers need not await it.
   */
  release: () => Promise<void>
}

const newWorkdir = (): string => `/tmp/clnrm-run-${randomUUID().slice(0, 12)}`

interface Entry {
  key: string
  /** The test file whose run started it. */
  file: string
  service: string
  image: string
  container: Dockerode.Container
  id: string
  runner: CommandRunner
  hostPorts: Record<number, number>
  busy: boolean
  releasing: boolean
  /** The signal of the run holding it: an aborted run frees it soon, so wait rather than start another. */
  signal?: AbortSignal
  /** Pending while busy; settles when the entry is free again (or removed). */
  freed: Promise<void>
  markFreed: () => void
  /** Created after the previous run, so a warm lease costs no command at all. */
  nextWorkdir: string
  uses: number
  lastUsed: number
  idleTimer?: ReturnType<typeof setTimeout>
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  }
  catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Starts, reuses and removes service containers. A container is reused only for an identical
 * service definition (image id, command, env, ports, volumes, health check…), is leased to one
 * run at a time, and every run gets a fresh workdir, so reuse stays hermetic. Containers carry
 * this process's pid and session: a new pool removes those of dead sessions, and never adopts a
 * live process's containers.
 */
export class ContainerPool {
  readonly sessionId: string = randomUUID()
  readonly #options: Required<Omit<ContainerPoolOptions, 'connection' | 'onEvent'>> & Pick<ContainerPoolOptions, 'onEvent'>
  readonly #connection: DockerConnection
  readonly #entries = new Set<Entry>()
  readonly #imageIds = new Map<string, Promise<string>>()
  readonly #networks = new Map<string, Promise<string>>()
  readonly #starting = new Set<Promise<Entry>>()
  readonly #keys = new WeakMap<ServiceSpec, { imageId: string; key: string }>()
  /** Containers whose removal failed because the engine was away: removed once it answers again. */
  readonly #unremoved = new Set<Dockerode.Container>()
  #closing: Promise<void> | undefined
  #counts = { started: 0, reused: 0, replaced: 0 }

  private constructor(connection: DockerConnection, options: ContainerPoolOptions) {
    this.#connection = connection
    this.#options = { maxContainers: options.maxContainers ?? 8, idleTimeoutMs: options.idleTimeoutMs ?? 600_000, onEvent: options.onEvent }
  }

  /** Connects to the engine and removes orphans of dead sessions. */
  static async create(options: ContainerPoolOptions = {}): Promise<ContainerPool> {
    const pool = new ContainerPool(options.connection ?? await connectDocker(), options)
    await pool.removeOrphans()
    return pool
  }

  #emit(event: PoolEvent): void {
    try {
      this.#options.onEvent?.(event)
    }
    catch {}
  }

  get #docker(): Dockerode {
    return this.#connection.docker
  }

  /** Removes containers and networks left by clnrm processes on this host that no longer run. */
  async removeOrphans(): Promise<{ containers: number; networks: number }> {
    const host = hostname()
    const dead = (labels: Record<string, string> | undefined): boolean =>
      !!labels && labels[LABELS.host] === host && !isAlive(Number(labels[LABELS.pid]))
    const containers = await this.#docker.listContainers({ all: true, filters: { label: [LABELS.managed] } })
    const orphans = containers.filter(c => dead(c.Labels))
    await Promise.allSettled(orphans.map(c => this.#docker.getContainer(c.Id).remove({ force: true })))
    const networks = await this.#docker.listNetworks({ filters: { label: [LABELS.managed] } })
    const orphanNetworks = networks.filter(n => dead(n.Labels))
    await Promise.allSettled(orphanNetworks.map(n => this.#docker.getNetwork(n.Id).remove()))
    if (orphans.length || orphanNetworks.length) this.#emit({ type: 'pool:orphans-removed', containers: orphans.length, networks: orphanNetworks.length })
    return { containers: orphans.length, networks: orphanNetworks.length }
  }

  #labels(extra: Record<string, string> = {}): Record<string, string> {
    return { [LABELS.managed]: '1', [LABELS.pid]: String(process.pid), [LABELS.host]: hostname(), [LABELS.session]: this.sessionId, ...extra }
  }

  /** The image's id; pulls it (with progress events) when it is not local. */
  #imageId(image: string): Promise<string> {
    let id = this.#imageIds.get(image)
    if (!id) {
      id = this.#resolveImage(image)
      this.#imageIds.set(image, id)
      id.catch(() => this.#imageIds.delete(image))
    }
    return id
  }

  async #resolveImage(image: string): Promise<string> {
    try {
      return (await this.#docker.getImage(image).inspect()).Id
    }
    catch {}
    try {
      const stream = await this.#docker.pull(image)
      await new Promise<void>((resolve, reject) => {
        this.#docker.modem.followProgress(stream, error => (error ? reject(error) : resolve()), (event: { status?: string; progress?: string }) => {
          this.#emit({ type: 'pool:image-pull', image, status: event.status ?? '', progress: event.progress })
        })
      })
      return (await this.#docker.getImage(image).inspect()).Id
    }
    catch (error) {
      throw new MissingImageError(image, error)
    }
  }

  /** Services of a multi-service test share a private network where their ids are host names. */
  #network(spec: TestSpec): Promise<string> {
    let network = this.#networks.get(spec.file)
    if (!network) {
      const name = `clnrm-${this.sessionId.slice(0, 8)}-${contentHash(spec.file).slice(0, 10).replace(/[^A-Za-z0-9]/g, 'x')}`
      network = this.#docker.createNetwork({ Name: name, Labels: this.#labels(), CheckDuplicate: true }).then(() => name)
      this.#networks.set(spec.file, network)
      network.catch(() => this.#networks.delete(spec.file))
    }
    return network
  }

  async #keyFor(spec: TestSpec, service: ServiceSpec): Promise<string> {
    const imageId = await this.#imageId(service.image)
    // The config cache hands out the same spec objects while a file is unchanged, so the
    // definition hash (a stable stringify and a sha1) is worked out once per definition.
    let cached = this.#keys.get(service)
    if (cached?.imageId !== imageId) {
      const shared = Object.keys(spec.services).length > 1
      // Network membership and host names belong to one test, so multi-service containers are per test.
      cached = { imageId, key: contentHash(imageId, serviceDefinitionHash(service), shared ? `${spec.file}#${service.id}` : '') }
      this.#keys.set(service, cached)
    }
    return cached.key
  }

  /** Leases containers for every service of a test, starting the missing ones in parallel. */
  async acquire(spec: TestSpec, options: { signal?: AbortSignal } = {}): Promise<Lease> {
    if (this.#closing) throw new Error('[clnrm] the container pool is closed')
    const start = performance.now()
    const runId = randomUUID().slice(0, 12)
    const services: Record<string, LeasedService> = {}
    const entries: Entry[] = []
    const settled = await Promise.allSettled(Object.values(spec.services).map(async (service) => {
      const { entry, reused } = await this.#lease(spec, service)
      entry.signal = options.signal
      entries.push(entry)
      services[service.id] = { id: service.id, containerId: entry.id, runner: entry.runner, hostPorts: entry.hostPorts, reused, workdir: entry.nextWorkdir }
      if (reused && service.reset) {
        const reset = await entry.runner.exec({ argv: service.reset, timeoutMs: 30_000 })
        if (reset.exitCode !== 0) throw new Error(`[clnrm] reset of service "${service.id}" exited ${reset.exitCode}: ${reset.stderr.trim().slice(-300)}`)
      }
    }))
    const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failure) {
      await Promise.allSettled(entries.map(entry => this.#remove(entry, 'failed')))
      throw failure.reason
    }
    const env: Record<string, string> = {}
    for (const service of Object.values(spec.services)) {
      for (const port of service.ports) env[portEnvName(service.id, port)] = String(services[service.id]!.hostPorts[port])
    }
    let released: Promise<void> | undefined
    return {
      runId,
      services,
      env,
      acquireMs: performance.now() - start,
      release: () => {
        released ??= Promise.allSettled(entries.map(entry => this.#release(entry, spec.services[entry.service]!))).then(() => {})
        return released
      },
    }
  }

  async #lease(spec: TestSpec, service: ServiceSpec): Promise<{ entry: Entry; reused: boolean }> {
    const key = await this.#keyFor(spec, service)
    if (service.reuse) {
      // A matching container whose run was cancelled, or is being released, is free in a few
      // milliseconds: waiting for it beats starting another (the dev loop's pre-emption).
      const soon = [...this.#entries].find(e => e.key === key && e.busy && (e.signal?.aborted || e.releasing))
      if (soon && ![...this.#entries].some(e => e.key === key && !e.busy)) await soon.freed
      for (const entry of this.#entries) {
        if (entry.key !== key || entry.busy) continue
        if (!entry.runner.alive) {
          this.#counts.replaced++
          this.#emit({ type: 'pool:container-replaced', service: service.id, file: spec.file, reason: 'the container stopped' })
          await this.#remove(entry, 'failed')
          continue
        }
        clearTimeout(entry.idleTimer)
        this.#markBusy(entry)
        entry.uses++
        this.#counts.reused++
        return { entry, reused: true }
      }
    }
    await this.#makeRoom()
    const starting = this.#start(spec, service, key)
    this.#starting.add(starting)
    starting.finally(() => this.#starting.delete(starting)).catch(() => {})
    return { entry: await starting, reused: false }
  }

  async #makeRoom(): Promise<void> {
    if (this.#entries.size < this.#options.maxContainers) return
    const idle = [...this.#entries].filter(e => !e.busy).sort((a, b) => a.lastUsed - b.lastUsed)[0]
    if (idle) await this.#remove(idle, 'evicted')
  }

  async #start(spec: TestSpec, service: ServiceSpec, key: string): Promise<Entry> {
    const started = performance.now()
    this.#emit({ type: 'pool:container-starting', service: service.id, image: service.image, file: spec.file })
    await this.#imageId(service.image)
    const network = Object.keys(spec.services).length > 1 ? await this.#network(spec) : undefined
    const { id, container: dockerContainer, hostPorts } = await startServiceContainer(this.#connection, service, {
      labels: this.#labels({ [LABELS.key]: key, [LABELS.service]: service.id }),
      network,
    })
    // The engine answers again: drop what it could not remove while it was away (once per outage).
    if (this.#unremoved.size) await this.#removeUnremoved()
    if (this.#closing) {
      // The pool closed while this container started: it is nobody's, so it goes now.
      await dockerContainer.remove({ force: true, v: true }).catch(() => {})
      throw new Error('[clnrm] the container pool closed while a container started')
    }
    const runner = await startShellRunner(dockerContainer) ?? createExecRunner(dockerContainer)
    const entry: Entry = {
      key, file: spec.file, service: service.id, image: service.image, container: dockerContainer, id, runner, hostPorts,
      busy: false, releasing: false, freed: Promise.resolve(), markFreed: () => {}, nextWorkdir: newWorkdir(), uses: 1, lastUsed: Date.now(),
    }
    this.#markBusy(entry)
    this.#entries.add(entry)
    this.#counts.started++
    try {
      const mkdir = await runner.exec({ argv: runner.kind === 'shell' ? ['sh', '-c', `mkdir -p ${entry.nextWorkdir}`] : ['mkdir', '-p', entry.nextWorkdir] })
      if (mkdir.exitCode !== 0) throw new Error(`[clnrm] could not create the run directory in "${service.id}": ${mkdir.stderr.trim()}`)
      await waitUntilReady(service, dockerContainer, runner)
    }
    catch (error) {
      await this.#remove(entry, 'failed')
      throw error
    }
    this.#emit({ type: 'pool:container-ready', service: service.id, image: service.image, file: spec.file, ms: performance.now() - started })
    return entry
  }

  #markBusy(entry: Entry): void {
    entry.busy = true
    entry.freed = new Promise<void>(resolve => (entry.markFreed = resolve))
  }

  async #release(entry: Entry, service: ServiceSpec): Promise<void> {
    if (!service.reuse || !entry.runner.alive) return this.#remove(entry, 'no-reuse')
    entry.releasing = true
    const previous = entry.nextWorkdir
    entry.nextWorkdir = newWorkdir()
    try {
      // One command: kill what the run left running, drop its directory, make the next one.
      const result = await entry.runner.endRun(previous, entry.nextWorkdir)
      if (result !== 0) throw new Error('end of run failed')
    }
    catch {
      return this.#remove(entry, 'failed')
    }
    entry.busy = false
    entry.releasing = false
    entry.signal = undefined
    entry.markFreed()
    entry.lastUsed = Date.now()
    entry.idleTimer = setTimeout(() => void this.#remove(entry, 'idle'), this.#options.idleTimeoutMs)
    entry.idleTimer.unref?.()
  }

  async #remove(entry: Entry, reason: Extract<PoolEvent, { type: 'pool:container-removed' }>['reason']): Promise<void> {
    if (!this.#entries.delete(entry)) return
    clearTimeout(entry.idleTimer)
    entry.markFreed()
    entry.runner.close()
    await entry.container.remove({ force: true, v: true }).catch((error: unknown) => {
      if (isEngineUnreachable(error)) this.#unremoved.add(entry.container)
    })
    this.#emit({ type: 'pool:container-removed', service: entry.service, reason })
  }

  async #removeUnremoved(): Promise<void> {
    const containers = [...this.#unremoved]
    this.#unremoved.clear()
    await Promise.allSettled(containers.map(c => c.remove({ force: true, v: true }).catch((error: unknown) => {
      if (isEngineUnreachable(error)) this.#unremoved.add(c)
    })))
  }

  /** Starts the containers of these tests ahead of their first run. */
  async prewarm(specs: readonly TestSpec[]): Promise<void> {
    await Promise.allSettled(specs.map(async spec => (await this.acquire(spec)).release()))
  }

  /** Removes the idle containers a test file started, and its network (the file was deleted). */
  async retire(file: string): Promise<void> {
    const doomed = [...this.#entries].filter(entry => !entry.busy && entry.file === file)
    await Promise.allSettled(doomed.map(entry => this.#remove(entry, 'retired')))
    const network = this.#networks.get(file)
    if (network && ![...this.#entries].some(entry => entry.file === file)) {
      this.#networks.delete(file)
      await network.then(name => this.#docker.getNetwork(name).remove()).catch(() => {})
    }
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

  /** Live containers and what the pool did so far. */
  stats(): { live: number; busy: number; started: number; reused: number; replaced: number } {
    const live = this.#entries.size
    const busy = [...this.#entries].filter(e => e.busy).length
    return { live, busy, ...this.#counts }
  }

  /** Removes every container and network of this session. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Containers still starting remove themselves once they see the pool closing.
      await Promise.allSettled([...this.#starting])
      await Promise.allSettled([...this.#entries].map(entry => this.#remove(entry, 'closed')))
      await this.#removeUnremoved()
      const networks = await Promise.allSettled([...this.#networks.values()])
      await Promise.allSettled(networks.map(n => (n.status === 'fulfilled' ? this.#docker.getNetwork(n.value).remove() : undefined)))
      this.#networks.clear()
    })()
    return this.#closing
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}
