import type { TestProject } from 'vitest/node'
import type { RunServerInfo, SetupOptions } from './protocol.ts'
import { OPTIONS_KEY, SERVER_KEY } from './protocol.ts'
import { startRunServer } from './server.ts'

/**
 * Vitest's global setup for `clnrm/vitest` (added by the plugin): starts the run server and its
 * warm container pool in the main process, tells workers where it is (`project.provide`), and
 * removes every container on teardown, and on SIGINT/SIGTERM before the process ends.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const options = (project.getProvidedContext() as Record<string, unknown>)[OPTIONS_KEY] as SetupOptions | undefined
  const server = await startRunServer({ root: project.config.root, vars: options?.vars })
  const provide = project.provide as unknown as (key: string, value: RunServerInfo) => void
  provide(SERVER_KEY, server.info)

  // Without these, a signal ends the process at once (testcontainers' signal-exit, or the default
  // action) and the containers stay until the next start sweeps them. Ours stay until they are
  // removed, then pass the signal on.
  const onSignal = (signal: NodeJS.Signals): void => {
    void server.close().finally(() => {
      removeListeners()
      if (signal === 'SIGINT' || process.listenerCount(signal) === 0) process.kill(process.pid, signal)
    })
  }
  const removeListeners = (): void => {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  return async () => {
    removeListeners()
    await server.close()
  }
}
