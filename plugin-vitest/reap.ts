import { connectDocker, LABELS } from '../core/index.ts'

/**
 * Removes one pool session's containers and networks (`node reap.mjs <session>`). The run server
 * runs it synchronously from its process's `exit` event when the process ends before the pool
 * could close: the Vitest CLI exits 1 ms after Ctrl-C or SIGTERM, too soon for async cleanup.
 */
async function reap(session: string): Promise<void> {
  const { engine } = await connectDocker()
  const label = [`${LABELS.session}=${session}`]
  const containers = await engine.listContainers(label)
  await Promise.allSettled(containers.map(c => engine.container(c.Id).remove()))
  // After the containers: a network with containers on it cannot be removed.
  const networks = await engine.listNetworks(label)
  await Promise.allSettled(networks.map(n => engine.removeNetwork(n.Id)))
}

const session = process.argv[2]
if (session) {
  // Nothing to report to: the process that asked is exiting. Its exit code says whether it worked.
  reap(session).then(() => process.exit(0), () => process.exit(1))
}
