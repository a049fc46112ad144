import { hostname } from 'node:os'
import type { EngineAdapter } from './adapter.ts'
import { LABELS } from './pool-types.ts'
import { isAlive, REUSE_LABEL } from './reuse.ts'

/**
 * Removes the containers and networks of clnrm processes on this host that no longer run
 * (`kill -9`, a crash). A live process's are never touched, nor another host's.
 */
export async function removeOrphans(engine: EngineAdapter): Promise<{ containers: number; networks: number }> {
  const host = hostname()
  const dead = (labels: Record<string, string> | undefined): boolean =>
    !!labels && labels[LABELS.host] === host && !isAlive(Number(labels[LABELS.pid]))
  const containers = await engine.listContainers([LABELS.managed])
  // Containers left for a later process (`--reuse`) outlive their creator: the reuse sweep owns them.
  const orphans = containers.filter(c => dead(c.Labels) && c.Labels[REUSE_LABEL] !== '1')
  await Promise.allSettled(orphans.map(c => engine.container(c.Id).remove()))
  // After the containers: a network with containers on it cannot be removed.
  const networks = await engine.listNetworks([LABELS.managed])
  const orphanNetworks = networks.filter(n => dead(n.Labels))
  await Promise.allSettled(orphanNetworks.map(n => engine.removeNetwork(n.Id)))
  return { containers: orphans.length, networks: orphanNetworks.length }
}
