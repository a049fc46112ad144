import { ClnrmError } from '../errors.ts'
import type { EngineContainer } from './adapter.ts'
import type { StartWatch } from './container.ts'
import { deferredRunner, exitedError, explainExits, startServiceContainer, watchStart } from './container.ts'
import type { DockerConnection } from './docker.ts'
import { AbortedError, EngineRefusedError, ServiceExitedError, throwIfAborted } from './docker.ts'
import { startRunner } from './exec/strategy.ts'
import type { CommandRunner } from './exec/types.ts'
import type { ServiceSpec, TestSpec } from '../format/spec.ts'
import type { DemandLedger } from './pool-demand.ts'
import type { Entry, PoolCounts, Starting } from './pool-entry.ts'
import { markBusy, networkKey, newWorkdir, SHARED_NETWORK } from './pool-entry.ts'
import type { PoolNetworks } from './pool-networks.ts'
import type { PoolTeardown } from './pool-teardown.ts'
import type { PoolEvent } from './pool-types.ts'
import { LABELS } from './pool-types.ts'
import { waitUntilReady } from './readiness.ts'
import type { Claim, Parked } from './reuse.ts'
import { claim, CREATOR_LABEL, newClaim, publishedPorts, releaseClaim, REUSE_LABEL, usedName } from './reuse.ts'

/**
 * How long a deferred service's main process is watched after its start before `acquire` calls
 * it running: about what a shell's start gave it (a service with a shell started would have
 * failed that start). A run (`checkStartsLater`) asks the kernel instead, after its first step.
 */
export const DEFERRED_EXIT_GRACE_MS = 100

/** What a start reads and changes of the pool. */
export interface StartContext {
  connection: DockerConnection
  networks: PoolNetworks
  teardown: PoolTeardown
  demand: DemandLedger
  counts: PoolCounts
  /** The slot of a start leaves it when the container is ready (or failed). */
  starting: Set<Starting>
  /** A ready container joins it, busy. */
  entries: Set<Entry>
  /** `ContainerPoolOptions.reuseAcrossRuns`. */
  reuseAcrossRuns: boolean
  /** The labels of this pool's containers, with `extra`. */
  labels: (extra: Record<string, string>) => Record<string, string>
  emit: (event: PoolEvent) => void
  /** Asks the pool's waiters again. */
  pump: () => void
  /** Whether the pool is closed (an aborted start then says so). */
  closed: () => boolean
}

/** A container an earlier process left for this definition, claimed for this process, or undefined. */
async function adopt(pool: StartContext, parked: Parked, service: ServiceSpec): Promise<{ container: EngineContainer; hostPorts: Record<number, number>; claim: Claim } | undefined> {
  const docker = pool.connection.engine
  const got = await claim(docker, parked)
  if (!got) return undefined
  const container = docker.container(parked.id)
  const hostPorts = await publishedPorts(container, service.ports).catch(() => undefined)
  if (hostPorts) return { container, hostPorts, claim: got }
  releaseClaim(got)
  await container.remove().catch(() => {})
  return undefined
}

/**
 * Starts (or adopts) the container of `service` into `slot`, and waits until it is ready: it
 * then joins the pool's entries, busy, leased to the test that started it. On failure,
 * everything half made is removed (container, claim, network) and the slot is freed; the error
 * told is the main process's exit when it ended, `AbortedError` or a closed pool when aborted.
 */
export async function startContainer(pool: StartContext, spec: TestSpec, service: ServiceSpec, key: string, slot: Starting, signal: AbortSignal): Promise<Entry> {
  const started = performance.now()
  const network = networkKey(service, slot.group)
  let container: EngineContainer | undefined
  let runner: CommandRunner | undefined
  let lease: Claim | undefined
  let startWatch: StartWatch | undefined
  try {
    pool.emit({ type: 'pool:container-starting', service: service.id, image: service.image, file: spec.file })
    const adopted = slot.adopt && await adopt(pool, slot.adopt, service)
    let hostPorts: Record<number, number>
    if (adopted) {
      ({ container, hostPorts, claim: lease } = adopted)
      pool.counts.adopted++
    }
    else {
      // Only a lone service's container without a private network may be left for the next process.
      if (pool.reuseAcrossRuns && service.reuse && !network) lease = newClaim()
      ;({ hostPorts } = await startServiceContainer(pool.connection, service, {
        // A container that may outlive this process belongs to no process: pid 0 (never a
        // process, and alive to every version's orphan check), its creator in `clnrm.creator`.
        labels: pool.labels({ [LABELS.key]: key, [LABELS.service]: service.id, ...(lease && { [REUSE_LABEL]: '1', [LABELS.pid]: '0', [CREATOR_LABEL]: String(process.pid) }) }),
        network: network && await pool.networks.name(network),
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
    if (pool.teardown.hasUnremoved) await pool.teardown.removeUnremoved()
    const workdir = newWorkdir()
    // A group's service that nothing runs in during this run gets its shell on first use: a
    // multi-service cold start then costs the engine no exec beside the other starts.
    const deferred = !!slot.group && !service.reset && !service.healthCheck && service.waitFor?.kind !== 'port' && !spec.steps.some(step => step.service === service.id)
    // Its main process is looked at once the test's other services are ready (`ContainerPool#acquire`).
    // It has no shell to fail when its main process ends at start: the engine is asked to tell
    // that exit instead, from now until the grace has passed.
    startWatch = deferred ? watchStart(created, service.id, DEFERRED_EXIT_GRACE_MS) : undefined
    if (deferred) runner = explainExits(deferredRunner(() => startRunner(pool.connection.engine, created), workdir), created, service.id)
    else runner = explainExits(await startRunner(pool.connection.engine, created), created, service.id)
    throwIfAborted(signal)
    const entry: Entry = {
      key, file: spec.file, service: service.id, image: service.image, network, group: slot.group, deferred, container: created, id, runner, hostPorts, claim: lease,
      busy: false, releasing: false, retired: false, freed: Promise.resolve(), markFreed: () => {}, nextWorkdir: workdir, uses: 1, lastUsed: Date.now(), leasedAt: performance.now(), startWatch,
    }
    if (!deferred) {
      await runner.prepareWorkdir(entry.nextWorkdir).catch((error: Error) => {
        throw new ClnrmError('CLNRM_WORKDIR', `could not create the run directory in "${service.id}": ${error.message}`, { cause: error, hint: 'The image must let clnrm create a directory under /tmp (a writable /tmp, or a `workdir` the image can create).' })
      })
    }
    throwIfAborted(signal)
    await waitUntilReady(service, created, runner, signal)
    // Handed over atomically: the slot becomes a busy entry, so the count never dips.
    pool.starting.delete(slot)
    entry.retired = slot.retired
    markBusy(entry)
    pool.entries.add(entry)
    pool.counts.started++
    const ms = performance.now() - started
    // A claimed container costs no start: only real starts teach what another container would cost.
    if (!adopted) pool.demand.recordStart(key, ms)
    pool.emit({ type: 'pool:container-ready', service: service.id, image: service.image, file: spec.file, ms })
    // Tests waiting for this definition's start may now justify the next one (`DemandLedger.worthStarting`).
    pool.pump()
    return entry
  }
  catch (error) {
    let reason = error
    // Whatever went wrong, a main process that ended is the story worth telling.
    if (container && !(error instanceof AbortedError) && !(error instanceof ServiceExitedError) && !(error instanceof EngineRefusedError)) reason = (await exitedError(container, service.id, { settleMs: 1000 })) ?? error
    if (signal.aborted && !(reason instanceof ServiceExitedError)) reason = pool.closed() ? new ClnrmError('CLNRM_POOL_CLOSED', 'the container pool closed while a container started') : new AbortedError()
    runner?.close()
    startWatch?.stop()
    await container?.remove().catch(() => {})
    if (lease) releaseClaim(lease)
    pool.starting.delete(slot)
    if (network) await pool.networks.drop(network, { spare: !slot.retired })
    pool.pump()
    throw reason
  }
}
