import type { ServiceSpec, TestSpec } from '../format/spec.ts'
import type { Entry, PoolCounts, RemovalReason, Reservation, Starting } from './pool-entry.ts'
import { markBusy, networkKey } from './pool-entry.ts'
import { chooseGroup } from './pool-groups.ts'
import type { GroupContext } from './pool-groups.ts'
import type { PoolNetworks } from './pool-networks.ts'
import type { Parked } from './reuse.ts'
import type { TakeResult } from './turns.ts'
import { PASS } from './turns.ts'

/** What `reserve` reads of the pool, and what it changes: slots started, containers marked busy or evicted. */
export interface ReserveContext extends GroupContext {
  /** A fresh container's slot joins it (counted against the limit from then on). */
  starting: Set<Starting>
  networks: PoolNetworks
  counts: PoolCounts
  /** Containers earlier processes left (`reuseAcrossRuns`), by definition key: a lone fresh slot adopts one. */
  parked: Map<string, Parked[]>
  /** `ContainerPoolOptions.maxContainers`. */
  maxContainers: number
  /** Containers counted against the limit: live ones, those starting and those being removed. */
  used: () => number
  remove: (entry: Entry, reason: RemovalReason) => Promise<void>
}

/**
 * Takes everything a test needs in one synchronous step, or nothing: idle containers of the
 * same definitions, and slots for the rest (removing idle containers of other definitions to
 * make room). `undefined` means wait, holding the queue: the limit is reached. `PASS` means wait
 * for a container of the test's own definition (busy, starting, or about to be freed), letting
 * tests of other definitions by.
 *
 * A definition that has containers gets another only when its queued work justifies the start
 * (`DemandLedger.worthStarting`), and never while one of its starts is in flight: the tests that arrive
 * meanwhile wait for that start instead of starting their own (`clnrm run -j 8` on 50 files of
 * one definition starts one container, not eight).
 */
export function reserve(pool: ReserveContext, spec: TestSpec, services: readonly ServiceSpec[], keys: readonly string[]): TakeResult<Reservation> {
  const taken = new Set<Entry>()
  const reused: Reservation['reused'] = []
  const missing: Array<{ service: ServiceSpec; key: string }> = []
  /** Some missing containers are extra ones of a definition that has some: waiting is an option. */
  let optional = false
  // A multi-service test takes one whole group (one network), never parts of two.
  let group: string | undefined
  if (services.length > 1) {
    const chosen = chooseGroup(pool, spec, services, keys)
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
      for (const entry of pool.entries) {
        if (entry.key !== key || taken.has(entry) || entry.retired) continue
        if (entry.busy) {
          live++
          soon ||= entry.releasing || !!entry.signal?.aborted
          continue
        }
        if (!entry.runner.alive) {
          pool.replaceDead(entry, service.id, spec.file)
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
      const starting = [...pool.starting].filter(slot => slot.key === key && !slot.retired).length
      // One start in flight per definition: the others wait for it rather than start their own.
      if (starting) return PASS
      if (live) {
        if (!pool.demand.worthStarting(key, live)) {
          pool.demand.armRecheck(key)
          return PASS
        }
        optional = true
      }
    }
    missing.push({ service, key })
  }
  let evicted: Promise<unknown> = Promise.resolve()
  if (missing.length) {
    const free = pool.maxContainers - pool.used()
    const idle = [...pool.entries].filter(e => !e.busy && !taken.has(e)).sort((a, b) => a.lastUsed - b.lastUsed)
    // Evicting makes room once the evicted containers are gone (`Reservation.evicted`).
    const short = missing.length - free
    if (short > idle.length) {
      // An extra container of a busy definition is worth less than a place in the queue: wait for one of it.
      if (optional) return PASS
      // More services than the limit: run alone, once nothing else is busy or starting.
      const alone = services.length > pool.maxContainers && pool.starting.size === 0 && [...pool.entries].every(e => !e.busy || taken.has(e))
      if (!alone) return undefined
    }
    evicted = Promise.allSettled(idle.slice(0, Math.max(0, short)).map(entry => pool.remove(entry, 'evicted')))
  }
  for (const { entry } of reused) {
    clearTimeout(entry.idleTimer)
    markBusy(entry)
    entry.uses++
    pool.counts.reused++
  }
  const fresh = missing.map(({ service, key }) => {
    const slot: Starting = { file: spec.file, key, retired: false, adopt: group ? undefined : pool.parked.get(key)?.shift(), group }
    pool.starting.add(slot)
    const network = networkKey(service, group)
    if (network) pool.networks.hold(network)
    return { service, key, slot }
  })
  return { reused, fresh, evicted }
}
