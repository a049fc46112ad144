import type Dockerode from 'dockerode'
import type { DockerConnection } from './docker.ts'
import type { ServiceSpec } from './spec.ts'

/** A service container that has started: its id, its Docker API handle and its host ports. */
export interface StartedService {
  id: string
  container: Dockerode.Container
  /** Container port → host port on 127.0.0.1. */
  hostPorts: Record<number, number>
}

/**
 * Starts one service's container with testcontainers. The image must be local already (the pool
 * resolves and pulls it, with progress), and readiness is the caller's: testcontainers' wait
 * strategies poll slower than the dev loop wants.
 */
export async function startServiceContainer(
  connection: DockerConnection,
  service: ServiceSpec,
  options: { labels: Record<string, string>; network?: string },
): Promise<StartedService> {
  const { GenericContainer } = connection.testcontainers
  // OpenStdin keeps images whose command is a shell (busybox, alpine) running, as `docker run -i`
  // does; Init reaps the processes that steps leave behind.
  class ServiceContainer extends GenericContainer {
    protected override async beforeContainerCreated(): Promise<void> {
      this.createOpts.OpenStdin = true
      this.hostConfig.Init = true
    }
  }
  let builder = new ServiceContainer(service.image)
    .withLabels(options.labels)
    .withEnvironment(service.env)
    .withPullPolicy({ shouldPull: () => false })
    .withWaitStrategy({
      waitUntilReady: async () => {},
      withStartupTimeout() {
        return this
      },
      isStartupTimeoutSet: () => false,
      getStartupTimeout: () => 60_000,
    })
  if (service.command) builder = builder.withCommand(service.command)
  if (service.ports.length) builder = builder.withExposedPorts(...service.ports)
  if (service.volumes.length) {
    builder = builder.withBindMounts(service.volumes.map(v => ({ source: v.hostPath, target: v.containerPath, mode: v.readOnly ? 'ro' as const : 'rw' as const })))
  }
  if (options.network) builder = builder.withNetworkMode(options.network).withNetworkAliases(service.id)
  const started = await builder.start()
  const hostPorts: Record<number, number> = {}
  for (const port of service.ports) hostPorts[port] = started.getMappedPort(port)
  return { id: started.getId(), container: connection.docker.getContainer(started.getId()), hostPorts }
}
