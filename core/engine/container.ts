import type { ContainerCreateBody, EngineContainer } from './adapter.ts'
import { answerWithin } from './answer-within.ts'
import type { DockerConnection } from './docker.ts'
import { EngineRefusedError, ServiceExitedError, throwIfAborted } from './docker.ts'
import { createDemuxer } from './exec/demux.ts'
import { limitsHostConfig } from '../format/limits.ts'
import type { CommandRunner } from './exec/types.ts'
import type { ServiceSpec } from '../format/spec.ts'

/** A service container that has started: its id, its Docker API handle and its host ports. */
export interface StartedService {
  id: string
  container: EngineContainer
  /** Container port → host port on 127.0.0.1. */
  hostPorts: Record<number, number>
}

/** Where published ports listen on the host: loopback only, never every interface. */
export const PUBLISH_HOST_IP = '127.0.0.1'

/** The engine's create options for a service: labels, env, 127.0.0.1-only ports, binds, network alias. */
export function containerCreateOptions(service: ServiceSpec, options: { labels: Record<string, string>; network?: string; alias?: boolean; name?: string }): ContainerCreateBody {
  const ports = Object.fromEntries(service.ports.map(port => [`${port}/tcp`, {}]))
  // HostPort "" lets the engine choose a free port; HostIp keeps it off the network.
  const bindings = Object.fromEntries(service.ports.map(port => [`${port}/tcp`, [{ HostIp: PUBLISH_HOST_IP, HostPort: '' }]]))
  return {
    // Named only when it may be parked for the next process (the name is its lease, see reuse.ts).
    ...(options.name && { name: options.name }),
    Image: service.image,
    Cmd: service.command,
    Env: Object.entries(service.env).map(([k, v]) => `${k}=${v}`),
    Labels: options.labels,
    // OpenStdin keeps images whose command is a shell (busybox, alpine) running, as `docker run -i` does.
    OpenStdin: true,
    ExposedPorts: ports,
    HostConfig: {
      // Init reaps the processes that steps leave behind.
      Init: true,
      PortBindings: bindings,
      Binds: service.volumes.map(v => `${v.hostPath}:${v.containerPath}:${v.readOnly ? 'ro' : 'rw'}`),
      NetworkMode: options.network,
      ExtraHosts: service.extraHosts,
      ...limitsHostConfig(service.limits),
    },
    NetworkingConfig: options.network ? { EndpointsConfig: { [options.network]: options.alias === false ? {} : { Aliases: [service.id] } } } : undefined,
  }
}

/**
 * Creates and starts one service's container through the engine API. The image must be local
 * already (the pool resolves and pulls it, with progress), and readiness is the caller's.
 *
 * `onCreated` receives the container as soon as it exists, so the caller can remove it whatever
 * happens next (a refused start, an abort). Engine refusals come back as `EngineRefusedError`
 * naming the service and the key that most likely caused them; a main process that exits at
 * once as `ServiceExitedError`.
 */
export async function startServiceContainer(
  connection: DockerConnection,
  service: ServiceSpec,
  options: { labels: Record<string, string>; network?: string; alias?: boolean; name?: string; signal?: AbortSignal; onCreated: (container: EngineContainer) => void },
): Promise<StartedService> {
  const { engine } = connection
  let container: EngineContainer
  try {
    container = await engine.createContainer(containerCreateOptions(service, options))
  }
  catch (error) {
    throw new EngineRefusedError(service.id, 'create', error)
  }
  options.onCreated(container)
  throwIfAborted(options.signal)
  try {
    await container.start()
  }
  catch (error) {
    // A refused start (a bad mount, a missing binary) never ran: the engine's reason is the story.
    throw new EngineRefusedError(service.id, 'start', error)
  }
  throwIfAborted(options.signal)
  const hostPorts: Record<number, number> = {}
  if (service.ports.length) {
    const info = await container.inspect()
    for (const port of service.ports) {
      const binding = info.NetworkSettings.Ports?.[`${port}/tcp`]?.find(b => b.HostIp === PUBLISH_HOST_IP) ?? info.NetworkSettings.Ports?.[`${port}/tcp`]?.[0]
      if (!binding) throw (await exitedError(container, service.id)) ?? new EngineRefusedError(service.id, 'start', new Error(`no host port was bound for port ${port}`))
      hostPorts[port] = Number(binding.HostPort)
    }
  }
  return { id: container.id, container, hostPorts }
}

/**
 * When the container's main process has ended, the error that says so: the service, its exit
 * code and its last log lines. `undefined` while it runs (or when the engine cannot tell).
 */
export async function exitedError(container: EngineContainer, service: string, options: { settleMs?: number } = {}): Promise<ServiceExitedError | undefined> {
  let state: { Running: boolean; Status?: string; Dead?: boolean; ExitCode: number; Error?: string; OOMKilled?: boolean }
  const deadline = Date.now() + (options.settleMs ?? 0)
  let confirmed = false
  for (;;) {
    try {
      state = (await container.inspect()).State
    }
    catch {
      // Removed from outside, or the engine is away: not an exit of the service; the caller says which.
      return undefined
    }
    // Being removed from outside (`docker rm -f`): not an exit of the service.
    if (state.Status === 'removing' || state.Dead) return undefined
    // `docker rm -f` kills (137) before it removes, and an engine that shuts down stops its
    // containers (143) before it stops answering: look again before calling either an exit of
    // the service, so the caller can tell a removal or the engine going away instead.
    if (!state.Running && !confirmed && ((state.ExitCode === 137 && !state.OOMKilled) || state.ExitCode === 143)) {
      confirmed = true
      await new Promise(resolve => setTimeout(resolve, state.ExitCode === 143 ? 1000 : 300))
      continue
    }
    // A stopping container ends its execs before the engine marks it stopped: give it a moment.
    if (!state.Running || Date.now() >= deadline) break
    await new Promise(resolve => setTimeout(resolve, Math.min(100, deadline - Date.now())))
  }
  if (state.Running) return undefined
  return new ServiceExitedError(service, state.ExitCode, await lastLogLines(container), state.Error || (state.OOMKilled ? 'killed: out of memory' : undefined))
}

/** How long `StartWatch.probe` waits for the engine's process list. */
const PROBE_TIMEOUT_MS = 2000

/** A just-started container's main process, watched through the engine (`watchStart`). */
export interface StartWatch {
  /** When its start grace ends (`performance.now()`). */
  graceEnd: number
  /** Settles when the engine reports the main process ended (never, while it runs). */
  ended: Promise<void>
  /** The error naming its exit when one was reported by now (service, exit code, last output), else `undefined`. */
  exit: () => Promise<ServiceExitedError | undefined>
  /**
   * Asks the kernel, through the engine's process list, whether the main process runs now:
   * `undefined` when it does, the error naming its exit when it ended (the engine's own report
   * awaited for its exit code and output), `'unknown'` when the engine cannot list processes.
   */
  probe: () => Promise<ServiceExitedError | undefined | 'unknown'>
  /** Stops watching (the engine's wait is ended). */
  stop: () => void
}

/**
 * Watches a container that has just started: the engine tells the moment its main process ends
 * (`waitNotRunning`, one request held open until `stop`), so an exit is known whenever it comes
 * (no inspect polls beside the other starts). The engine reports an exit only after it has torn
 * the container's network down: measured here, 60 to 250 ms after the start returned when other
 * containers start beside it. So the watch lasts until its holder stops it (a run's verdict),
 * not only for `graceMs`; and `probe` asks the kernel's view, which knows an exit at once. An
 * engine that refuses the wait is asked once (inspect) per `exit`.
 */
export function watchStart(container: EngineContainer, service: string, graceMs: number): StartWatch {
  const controller = new AbortController()
  let seen: Promise<ServiceExitedError | undefined> | undefined
  let refused = false
  const ended = container.waitNotRunning(controller.signal).then(
    () => {
      // Ended, or removed from outside (which `exitedError` tells apart).
      seen = exitedError(container, service)
    },
    () => {
      if (!controller.signal.aborted) refused = true
      return new Promise<void>(() => {})
    },
  )
  return {
    graceEnd: performance.now() + graceMs,
    ended,
    exit: async () => seen ?? (refused ? exitedError(container, service) : undefined),
    probe: async () => {
      let count: number | undefined
      try {
        // Bounded: an engine slow to list processes is not waited for (the grace is, instead).
        count = await answerWithin(container.processes(), PROBE_TIMEOUT_MS, undefined)
      }
      catch {}
      if (count === undefined) return 'unknown'
      // Its init (clnrm starts every container with one) and the main process: both run, or
      // neither does (the init ends with its child, and the kernel ends the rest with the init).
      if (count >= 2) return undefined
      return exitedError(container, service, { settleMs: 2000 })
    },
    stop: () => controller.abort(),
  }
}

/** The container's last lines of output (stdout and stderr together), best effort. */
async function lastLogLines(container: EngineContainer, lines = 20): Promise<string> {
  try {
    // Without `follow` the engine answers with the whole (multiplexed) body at once.
    const body = await container.logs(lines)
    const chunks: Buffer[] = []
    createDemuxer((_which, chunk) => chunks.push(chunk))(body)
    return Buffer.concat(chunks).toString('utf8').trimEnd()
  }
  catch {
    return ''
  }
}

/**
 * Wraps a runner so that its failures name a service that exited (its exit code and last
 * output) rather than a broken stream. Costs nothing while commands succeed.
 */
export function explainExits(raw: CommandRunner, container: EngineContainer, service: string): CommandRunner {
  return {
    kind: raw.kind,
    sendsOutput: raw.sendsOutput,
    get alive() {
      return raw.alive
    },
    exec: async (request) => {
      try {
        return await raw.exec(request)
      }
      catch (error) {
        throw (await exitedError(container, service, { settleMs: 2000 })) ?? error
      }
    },
    pipelinesEnd: raw.pipelinesEnd,
    endRun: (workdir, nextWorkdir) => raw.endRun(workdir, nextWorkdir),
    ...(raw.drain && { drain: raw.drain }),
    prepareWorkdir: dir => raw.prepareWorkdir(dir),
    close: () => raw.close(),
  }
}

/**
 * A runner whose shell starts on first use, for a service of a multi-service test that nothing
 * runs in during its first run (no step, `reset`, port wait or health check): its cold start
 * then costs the engine no exec beside the other services' starts. The first command creates
 * `workdir` first; an end of run needs none (it makes the next one). Not `alive` once its start
 * failed or it was closed.
 */
export function deferredRunner(start: () => Promise<CommandRunner>, workdir: string): CommandRunner {
  let started: Promise<CommandRunner> | undefined
  let inner: CommandRunner | undefined
  let failed = false
  let closed = false
  const get = (): Promise<CommandRunner> => {
    started ??= start().then((runner) => {
      inner = runner
      if (closed) runner.close()
      return runner
    }, (error: unknown) => {
      failed = true
      throw error
    })
    return started
  }
  let prepared: Promise<void> | undefined
  return {
    get kind() {
      return inner?.kind ?? 'shell'
    },
    get alive() {
      return !failed && !closed && (inner?.alive ?? true)
    },
    exec: async (request) => {
      const runner = await get()
      prepared ??= runner.prepareWorkdir(workdir)
      await prepared
      return runner.exec(request)
    },
    endRun: async (previous, next) => {
      const runner = await get()
      // The run's workdir was made only if a command ran; the end of a run makes the next either way.
      prepared ??= Promise.resolve()
      return runner.endRun(previous, next)
    },
    prepareWorkdir: async dir => (await get()).prepareWorkdir(dir),
    close: () => {
      closed = true
      inner?.close()
    },
  }
}
