import { hostname } from 'node:os'
import type Dockerode from 'dockerode'
import { LABELS } from './pool-types.ts'

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
 * Removes the containers and networks of clnrm processes on this host that no longer run
 * (`kill -9`, a crash). A live process's are never touched, nor another host's.
 */
export async function removeOrphans(docker: Dockerode): Promise<{ containers: number; networks: number }> {
  const host = hostname()
  const dead = (labels: Record<string, string> | undefined): boolean =>
    !!labels && labels[LABELS.host] === host && !isAlive(Number(labels[LABELS.pid]))
  const containers = await docker.listContainers({ all: true, filters: { label: [LABELS.managed] } })
  const orphans = containers.filter(c => dead(c.Labels))
  await Promise.allSettled(orphans.map(c => docker.getContainer(c.Id).remove({ force: true, v: true })))
  // After the containers: a network with containers on it cannot be removed.
  const networks = await docker.listNetworks({ filters: { label: [LABELS.managed] } })
  const orphanNetworks = networks.filter(n => dead(n.Labels))
  await Promise.allSettled(orphanNetworks.map(n => docker.getNetwork(n.Id).remove()))
  return { containers: orphans.length, networks: orphanNetworks.length }
}
