import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type Dockerode from 'dockerode'
import type { EngineAdapter } from './adapter.ts'
import { clientOptions, engineCandidates } from './endpoint.ts'
import type { EngineCandidate, EngineVia } from './endpoint.ts'
import { ClnrmError } from '../errors.ts'

/** Thrown when no Docker engine answers. The CLI prints it and exits 2. */
export class EngineUnavailableError extends ClnrmError {
  override name = 'EngineUnavailableError'
  declare readonly hint: string
  constructor(cause: unknown) {
    super('CLNRM_ENGINE_UNAVAILABLE', `No Docker engine is reachable${process.env.DOCKER_HOST ? ` at DOCKER_HOST=${process.env.DOCKER_HOST}` : ''}`, {
      cause,
      // Only what every user has: this repository's setup scripts are not in the published package.
      hint: 'Start Docker (e.g. `sudo systemctl start docker`, or Docker Desktop), or point DOCKER_HOST at a running engine.',
    })
  }
}

/** Thrown when a test names an image that is not local and cannot be pulled: names the image, the registry and the engine's reason. */
export class MissingImageError extends ClnrmError {
  override name = 'MissingImageError'
  readonly image: string
  /** The registry the pull went to (`docker.io` for short names), when one was tried. */
  readonly registry: string | undefined
  /** The engine's reason, e.g. `manifest unknown`. */
  readonly reason: string | undefined
  declare readonly hint: string
  constructor(image: string, cause: unknown, pull?: { registry: string; reason: string; hint: string }) {
    super('CLNRM_IMAGE_MISSING', `Image "${image}" is not on this machine and could not be pulled${pull ? ` from ${pull.registry}: ${pull.reason}` : ''}`, {
      cause,
      hint: pull?.hint ?? `Build or load it first (docker build -t ${image} …, or docker load), or pull it where a registry is reachable: docker pull ${image}.`,
    })
    this.image = image
    this.registry = pull?.registry
    this.reason = pull?.reason
  }
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ETIMEDOUT'])

/**
 * Whether an error means the engine itself did not answer (its socket is gone or refuses), as
 * opposed to the engine answering with an error. Looks through `cause` chains.
 */
export function isEngineUnreachable(error: unknown): boolean {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof EngineUnavailableError) return true
    const code = (e as { code?: unknown }).code
    const syscall = (e as { syscall?: unknown }).syscall
    // ENOENT also means a missing file: only a failed connect/read/write on the socket counts.
    if (typeof code === 'string' && UNREACHABLE.has(code) && (syscall === undefined ? /^connect /.test((e as Error).message) : /^(connect|read|write)$/.test(String(syscall)))) return true
  }
  return false
}

/** Where the engine was found: how (`via`), the endpoint, and the file or socket kind it came from. */
export interface EngineSource {
  /**
   * `DOCKER_HOST` (the user's); `tc.host` or `docker.host` of `~/.testcontainers.properties`;
   * the docker CLI's current `docker context`; a `socket` found at a usual place (the default
   * one, rootless, Docker Desktop, Podman, Colima, Rancher Desktop); or `discovery`, testcontainers'
   * own strategies, asked only when none of those answered.
   */
  via: EngineVia
  /** The endpoint clnrm talks to: `unix:///var/run/docker.sock`, `tcp://127.0.0.1:2375`, … */
  endpoint: string
  /** Where it came from: the properties file, the context and its file, or which socket it is. */
  from?: string
  /** `~/.testcontainers.properties`, when it exists (it can point discovery elsewhere). */
  propertiesFile?: string
}

/**
 * A connection to a container engine: the adapter every engine call goes through, and where the
 * engine was found. No dockerode or testcontainers type appears here: they are implementation.
 */
export interface EngineConnection {
  engine: EngineAdapter
  source: EngineSource
}

/** The former name of `EngineConnection`. */
export type DockerConnection = EngineConnection

let connecting: Promise<EngineConnection> | undefined

/** The endpoint a dockerode client talks to, from its modem's settings. */
function endpointOf(modem: { socketPath?: unknown; host?: unknown; port?: unknown; protocol?: unknown }): string {
  if (typeof modem.socketPath === 'string' && modem.socketPath) return `unix://${modem.socketPath}`
  const protocol = modem.protocol === 'https' ? 'https' : modem.protocol === 'ssh' ? 'ssh' : 'tcp'
  return `${protocol}://${String(modem.host ?? '?')}${modem.port ? `:${String(modem.port)}` : ''}`
}

/**
 * Connects once per process. Throws `EngineUnavailableError` when no engine answers. The engine
 * is found where users configure it (`engineCandidates`: `DOCKER_HOST`, testcontainers'
 * properties file, the docker context, the usual sockets) without loading testcontainers, which
 * costs more than a whole warm `clnrm run`; testcontainers' own discovery is the last resort, when
 * none of those answers. Every call after that goes through the engine adapter (`node:http`; dockerode for ssh).
 */
export function connectDocker(): Promise<EngineConnection> {
  connecting ??= (async () => {
    // clnrm labels and removes its own containers, so testcontainers' Ryuk sidecar is not needed
    // (and cannot be pulled on machines without a registry).
    process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true'
    const home = homedir()
    const properties = join(home, '.testcontainers.properties')
    const propertiesFile = existsSync(properties) ? properties : undefined
    const candidates = engineCandidates({ env: process.env, home, platform: process.platform, uid: process.getuid?.() })
    let failure: unknown
    for (const candidate of candidates) {
      try {
        const engine = await adapterFor(candidate)
        await engine.ping()
        return { engine, source: { via: candidate.via, endpoint: candidate.endpoint, ...(candidate.from && { from: candidate.from }), ...(propertiesFile && { propertiesFile }) } }
      }
      catch (error) {
        // Not answering (a stale socket file, a stopped VM): the next place, as testcontainers does.
        failure ??= error
      }
    }
    // An explicit DOCKER_HOST is what the user means: nothing else is tried (testcontainers would
    // quietly fall back to the default socket).
    if (process.env.DOCKER_HOST) throw new EngineUnavailableError(failure)
    const [testcontainers, { dockerodeAdapter }] = await Promise.all([import('testcontainers'), import('./docker-adapter.ts')])
    try {
      const client = await testcontainers.getContainerRuntimeClient()
      const docker = client.container.dockerode
      await docker.ping()
      return { engine: dockerodeAdapter(docker), source: { via: 'discovery', endpoint: endpointOf(docker.modem as object), ...(propertiesFile && { propertiesFile }) } }
    }
    catch (error) {
      throw new EngineUnavailableError(error)
    }
  })()
  connecting.catch(() => {
    connecting = undefined
  })
  return connecting
}

/** The adapter for a candidate: the Docker API over `node:http`, or dockerode for ssh. */
async function adapterFor(candidate: EngineCandidate): Promise<EngineAdapter> {
  const options = clientOptions(candidate)
  if (options.kind === 'http') return (await import('./http-adapter.ts')).httpAdapter(options.endpoint)
  const [{ default: Dockerode }, { dockerodeAdapter }] = await Promise.all([import('dockerode'), import('./docker-adapter.ts')])
  // DOCKER_HOST=ssh://… is read by docker-modem itself, with its ssh agent settings.
  if (candidate.via === 'DOCKER_HOST') return dockerodeAdapter(new Dockerode())
  return dockerodeAdapter(new Dockerode({ protocol: 'ssh', host: options.host, ...(options.port && { port: options.port }), ...(options.username && { username: options.username }), sshOptions: { agent: process.env.SSH_AUTH_SOCK } } as Dockerode.DockerOptions))
}

/** The engine's own words from a Dockerode error (`json.message`), without the `(HTTP code …)` wrapping. */
export function engineMessage(error: unknown): string {
  const e = error as { json?: { message?: string } | null; reason?: string; message?: string }
  return (e?.json?.message ?? e?.message ?? String(error)).replace(/^\(HTTP code \d+\)\s*(\S+ - )?/, '').trim()
}

/** Which service key an engine refusal most likely points at, from the engine's message. */
export function refusedKey(message: string): 'volumes' | 'ports' | 'command' | 'image' | 'env' | 'limits' | undefined {
  // `[limits]`: "Range of CPUs is from 0.01 to 2.00", "Minimum memory limit allowed is 6MB".
  if (/\bCPUs?\b|memory limit|NanoCPUs/i.test(message)) return 'limits'
  if (/\bports?\b/i.test(message)) return 'ports'
  if (/mount|volume|destination|rootfs/i.test(message)) return 'volumes'
  if (/executable|exec:|exec format|entrypoint|\bcmd\b|command/i.test(message)) return 'command'
  if (/image|manifest|platform/i.test(message)) return 'image'
  if (/env/i.test(message)) return 'env'
  return undefined
}

/** The engine refused to create or start a service's container (a bad mount, port, command…). */
export class EngineRefusedError extends ClnrmError {
  override name = 'EngineRefusedError'
  readonly service: string
  /** The service key the refusal most likely comes from, when the engine's message says. */
  readonly key: string | undefined
  declare readonly hint: string
  constructor(service: string, phase: 'create' | 'start', cause: unknown) {
    const said = engineMessage(cause)
    const key = refusedKey(said)
    // `[limits]` is the test's table, applied to every service; the other keys are the service's own.
    const where = key === 'limits' ? { note: ' (check [limits])', fix: 'Fix [limits] in the test file (it applies to every service container)' }
      : key ? { note: ` (check its \`${key}\`)`, fix: `Fix \`${key}\` of [services.${service}] in the test file` }
      : { note: '', fix: `Check [services.${service}] in the test file` }
    super('CLNRM_ENGINE_REFUSED', `The engine refused to ${phase} service "${service}"${where.note}: ${said}`, { cause, hint: `${where.fix}; the message above is the engine's.` })
    this.service = service
    this.key = key
  }
}

/** A service's main process ended (it exits at once, its binary is missing, it crashed). */
export class ServiceExitedError extends ClnrmError {
  override name = 'ServiceExitedError'
  readonly service: string
  readonly exitCode: number | undefined
  /** The container's last lines of output. */
  readonly logs: string
  declare readonly hint: string
  constructor(service: string, exitCode: number | undefined, logs: string, detail?: string) {
    const status = exitCode === undefined ? '' : ` with exit code ${exitCode}`
    super('CLNRM_SERVICE_EXITED', `Service "${service}" stopped${status}${detail ? ` (${detail.trim()})` : ''}; ${logs ? `its last output:\n${logs.split('\n').map(l => `  │ ${l}`).join('\n')}` : 'it printed nothing'}`, { hint: exitedHint(service, exitCode, detail) })
    this.service = service
    this.exitCode = exitCode
    this.logs = logs
  }
}

function exitedHint(service: string, exitCode: number | undefined, detail: string | undefined): string {
  return exitCode === 127 || /executable file not found|no such file/i.test(detail ?? '')
    ? `The command of [services.${service}] is not in the image: check \`command\` (or the image's entrypoint).`
    : exitCode === 0
      ? `The image's command exits at once; keep it running, e.g. command = ["sleep", "infinity"], or run a server in the foreground.`
      : `The service's main process ended; its last output above says why. clnrm needs it running for every step.`
}

/** Thrown when a run is cancelled (Ctrl-C, a newer save) while its containers start. */
export class AbortedError extends ClnrmError {
  override name = 'AbortedError'
  constructor(what = 'the run') {
    super('CLNRM_ABORTED', `${what} was cancelled`)
  }
}

/** Throws `AbortedError` when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError()
}

/** A signal that fires when either does; `dispose` detaches it from both. */
export function linkSignals(a: AbortSignal | undefined, b: AbortSignal): { signal: AbortSignal; dispose: () => void } {
  if (!a) return { signal: b, dispose: () => {} }
  const controller = new AbortController()
  const abort = (): void => controller.abort()
  if (a.aborted || b.aborted) abort()
  a.addEventListener('abort', abort, { once: true })
  b.addEventListener('abort', abort, { once: true })
  return {
    signal: controller.signal,
    dispose: () => {
      a.removeEventListener('abort', abort)
      b.removeEventListener('abort', abort)
    },
  }
}
