import { contentHash } from '../hash.ts'
import type { ServiceSpec, TestSpec } from '../format/spec.ts'
import type { DemandLedger } from './pool-demand.ts'
import type { Entry, Starting } from './pool-entry.ts'
import { newGroup } from './pool-entry.ts'
import { PASS } from './turns.ts'

/**
 * Multi-service groups: a test with several services gets them as one group on a network of
 * its own, where the service ids are host names. A group is therefore reused only whole, by a
 * test whose services have the same ids and definitions (the set is the key), one test at a time.
 */

/**
 * The keys of a multi-service test's services, from their lone keys (image id and definition,
 * in the order of `services`): each is keyed by the whole set of (service id, definition) pairs
 * and its own id, so a container is reused only inside a group of the same set, by any test, of
 * any file.
 */
export function groupKeys(services: readonly ServiceSpec[], lone: readonly string[]): string[] {
  const set = contentHash(...services.map((service, i) => `${service.id}=${lone[i]}`).sort())
  return services.map(service => contentHash(set, service.id))
}

/** What `chooseGroup` reads of the pool, and how it drops a dead container. */
export interface GroupContext {
  entries: ReadonlySet<Entry>
  starting: ReadonlySet<Starting>
  demand: DemandLedger
  /** An idle container whose main process ended: counted, reported (as `service` of `file`) and removed by the pool. */
  replaceDead: (entry: Entry, service: string, file: string) => void
}

/** The group a test takes: its id, the idle members it reuses by key, and whether starting it was optional (see `#reserve`). */
export interface ChosenGroup {
  group: string
  entries: Map<string, Entry>
  optional: boolean
}

/**
 * The group a multi-service test takes: an idle group of the same set of services (its
 * containers reused, any missing one started into it, on its network), else a new group. `PASS`
 * waits, as for a lone definition (`ContainerPool#reserve`): for a busy group about to be freed,
 * for a start of the same set in flight, or while the queued work does not justify another
 * group's start.
 */
export function chooseGroup(pool: GroupContext, spec: TestSpec, services: readonly ServiceSpec[], keys: readonly string[]): typeof PASS | ChosenGroup {
  const fresh = { group: newGroup(), entries: new Map<string, Entry>(), optional: false }
  const reusable = keys.filter((_, i) => services[i]!.reuse)
  if (!reusable.length) return fresh
  const wanted = new Set(reusable)
  const groups = new Map<string, Entry[]>()
  for (const entry of pool.entries) {
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
    for (const dead of members.filter(entry => !entry.runner.alive)) pool.replaceDead(dead, dead.service, spec.file)
    if (alive.length > (best?.length ?? 0)) best = alive
  }
  if (best) return { group: best[0]!.group!, entries: new Map(best.map(entry => [entry.key, entry])), optional: false }
  // Freed in a few milliseconds: waiting for it beats starting another group.
  if (soon) return PASS
  // One start of a set in flight: the others wait for it rather than start their own.
  if ([...pool.starting].some(slot => slot.group && !slot.retired && wanted.has(slot.key))) return PASS
  if (live) {
    if (!pool.demand.worthStarting(reusable[0]!, live)) {
      pool.demand.armRecheck(reusable[0]!)
      return PASS
    }
    fresh.optional = true
  }
  return fresh
}
