import { randomUUID } from 'node:crypto'
import { throwIfAborted } from './docker.ts'
import { portEnvName } from '../format/plan.ts'
import type { ServiceSpec, TestSpec } from '../format/spec.ts'
import type { DemandLedger } from './pool-demand.ts'
import type { Entry, RemovalReason, Reservation, Starting } from './pool-entry.ts'
import { networksOf, newWorkdir } from './pool-entry.ts'
import type { PoolNetworks } from './pool-networks.ts'
import type { Lease, LeasedService } from './pool-types.ts'
import { ResetFailedError } from './pool-types.ts'

/**
 * The lease's side of the pool: turning what a test reserved into a `Lease` (its fresh
 * containers started, `reset` run, failures undone) and taking its containers back on release.
 */

/** What leasing and releasing read and change of the pool. */
export interface LessorContext {
  entries: ReadonlySet<Entry>
  demand: DemandLedger
  networks: PoolNetworks
  /** `ContainerPoolOptions.idleTimeoutMs`: how long a freed container waits for its next run. */
  idleTimeoutMs: number
  /** Starts a reserved slot's container (tracked by the pool, so `close` waits for it). */
  start: (spec: TestSpec, service: ServiceSpec, key: string, slot: Starting, signal: AbortSignal) => Promise<Entry>
  remove: (entry: Entry, reason: RemovalReason) => Promise<void>
  /** Asks the pool's waiters again. */
  pump: () => void
}

/**
 * The lease of a test's reservation: the reused containers at once, the fresh ones once started
 * (after the evicted ones are gone), every `reset` run. When anything fails, reused containers go
 * back to the pool, the others are removed, and the failure is thrown.
 * `signal` ends the starts; `runSignal` is the run's own (an aborted run's containers are freed
 * soon, which the pool's waiters count on); `start` is when the acquire began (`acquireMs`).
 * `checkStartsLater`: the lease is handed over before the start check of its deferred services
 * ends (`Lease.startsChecked` tells it; a crash found then undoes the lease on release, as here).
 */
export async function leaseReservation(
  pool: LessorContext,
  spec: TestSpec,
  services: readonly ServiceSpec[],
  reservation: Reservation,
  { signal, runSignal, start, checkStartsLater = false }: { signal: AbortSignal; runSignal: AbortSignal | undefined; start: number; checkStartsLater?: boolean },
): Promise<Lease> {
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
      lease(service, await pool.start(spec, service, key, slot, signal), false)
    }),
  ])
  let failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason as unknown
  // A service whose shell was deferred had no exec to tell that its main process ended at
  // start: the engine watches it (`watchStart`). `acquire` calls it running once it ran for as
  // long as a shell's start would have given it (`DEFERRED_EXIT_GRACE_MS`), as far as the engine
  // told by then. When it started last that grace sat on the test's path; a run
  // (`checkStartsLater`) checks after its first step instead, and again until its verdict: the
  // kernel is asked once whether the process runs (`probe`: an exit is known there at once,
  // where the engine tells it 60 to 250 ms late, so a grace that passed proves nothing yet),
  // and the engine's watch tells any exit after. An engine that cannot list processes gets the grace.
  const watches = [...entries.keys()].filter(entry => entry.deferred && entry.uses === 1 && entry.startWatch).map(entry => entry.startWatch!)
  const stopWatches = (): void => watches.forEach(watch => watch.stop())
  let crash: unknown
  let probed = false
  const check = async (): Promise<void> => {
    if (crash) throw crash
    if (checkStartsLater && !probed && watches.length) {
      const answers = await Promise.all(watches.map(watch => watch.probe()))
      crash = answers.find(answer => answer instanceof Error)
      if (crash) throw crash
      probed = !answers.includes('unknown')
    }
    const pending = probed ? [] : watches.filter(watch => watch.graceEnd > performance.now())
    const left = Math.max(0, ...pending.map(watch => watch.graceEnd)) - performance.now()
    if (left > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined
      await Promise.race([new Promise(resolve => (timer = setTimeout(resolve, left))), ...pending.map(watch => watch.ended)])
      clearTimeout(timer)
    }
    crash = (await Promise.all(watches.map(watch => watch.exit()))).find(exit => exit !== undefined)
    if (crash) throw crash
  }
  if (watches.length && !checkStartsLater && !failure) {
    failure = await check().then(() => undefined, (error: unknown) => error)
    stopWatches()
  }
  // The next multi-service test's network is made now, not beside these starts.
  if (services.length > 1) pool.networks.refill()
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
  // Reused containers go back to the pool; new ones and those whose reset failed are removed.
  const reused = new Set(reservation.reused.map(r => r.entry))
  const undo = (): Promise<void> => Promise.allSettled([...entries].map(([entry, service]) => (reused.has(entry) && !failed.has(entry) ? releaseEntry(pool, entry, service) : pool.remove(entry, 'failed')))).then(() => {})
  if (failure) {
    stopWatches()
    await undo()
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
    // Nothing to check without a deferred service (most tests): no awaits on every step's path.
    startsChecked: () => (checkStartsLater && watches.length ? check() : Promise.resolve()),
    release: () => {
      // Checked a last time: a service that ended at start undoes the lease as a failed acquire does.
      released ??= (checkStartsLater && watches.length ? check() : Promise.resolve()).then(() => true, () => false).then((running) => {
        stopWatches()
        return running ? Promise.allSettled([...entries].map(([entry, service]) => releaseEntry(pool, entry, service))).then(() => {}) : undo()
      })
      return released
    },
  }
}

/**
 * Hands a run's container back: removed when it is not reused (or stopped, or its file was
 * deleted), else its run ended in one command (what the run left running killed, its directory
 * emptied) and it is idle again.
 */
export async function releaseEntry(pool: LessorContext, entry: Entry, service: ServiceSpec): Promise<void> {
  if (!pool.entries.has(entry)) return
  if (!service.reuse || !entry.runner.alive || entry.retired) return pool.remove(entry, entry.retired ? 'retired' : 'no-reuse')
  entry.releasing = true
  // One command: kill what the run left running, empty its directory for the next run.
  const ending = entry.runner.endRun(entry.nextWorkdir, newWorkdir())
  if (entry.runner.pipelinesEnd) {
    // Queued in the container's shell ahead of any later command: the next test can have the
    // container now, its first command written together with this end. A failed end makes
    // the shell exit (that command then fails, and the container is replaced).
    await freeEntry(pool, entry)
    const ended = await ending.catch(() => undefined)
    if (ended?.exitCode !== 0) await pool.remove(entry, 'failed')
    return
  }
  try {
    const ended = await ending
    if (ended.exitCode !== 0) throw new Error('end of run failed')
    entry.nextWorkdir = ended.workdir
  }
  catch {
    return pool.remove(entry, 'failed')
  }
  await freeEntry(pool, entry)
}

/** A released container is idle again (or removed, if its file was deleted meanwhile). */
function freeEntry(pool: LessorContext, entry: Entry): Promise<void> | undefined {
  if (!pool.entries.has(entry)) return
  if (entry.retired) return pool.remove(entry, 'retired')
  entry.busy = false
  entry.releasing = false
  entry.signal = undefined
  entry.markFreed()
  entry.lastUsed = Date.now()
  pool.demand.recordHold(entry.key, performance.now() - entry.leasedAt)
  entry.idleTimer = setTimeout(() => void pool.remove(entry, 'idle'), pool.idleTimeoutMs)
  entry.idleTimer.unref?.()
  pool.pump()
}
