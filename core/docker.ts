import type Dockerode from 'dockerode'

/** Thrown when no Docker engine answers. The CLI prints it and exits 2. */
export class EngineUnavailableError extends Error {
  override name = 'EngineUnavailableError'
  readonly code = 'CLNRM_ENGINE_UNAVAILABLE'
  readonly hint: string = 'Start Docker (on Debian: `bash scripts/setup-docker.sh`, or `sudo systemctl start docker`), or point DOCKER_HOST at a running engine.'
  constructor(cause: unknown) {
    super(`[clnrm] No Docker engine is reachable${process.env.DOCKER_HOST ? ` at DOCKER_HOST=${process.env.DOCKER_HOST}` : ''}`, { cause })
  }
}

/** Thrown when a test names an image that is not local and cannot be pulled. */
export class MissingImageError extends Error {
  override name = 'MissingImageError'
  readonly code = 'CLNRM_IMAGE_MISSING'
  readonly image: string
  readonly hint: string
  constructor(image: string, cause: unknown) {
    super(`[clnrm] Image "${image}" is not on this machine and could not be pulled`, { cause })
    this.image = image
    this.hint = `Build or load it first (docker build -t ${image} …, or docker load), or pull it where a registry is reachable: docker pull ${image}.`
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

/** The Docker API and testcontainers, loaded on first use so static commands never pay for them. */
export interface DockerConnection {
  docker: Dockerode
  testcontainers: typeof import('testcontainers')
}

let connecting: Promise<DockerConnection> | undefined

/** Connects once per process. Throws `EngineUnavailableError` when no engine answers. */
export function connectDocker(): Promise<DockerConnection> {
  connecting ??= (async () => {
    // clnrm labels and removes its own containers, so testcontainers' Ryuk sidecar is not needed
    // (and cannot be pulled on machines without a registry).
    process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true'
    // An explicit DOCKER_HOST is what the user means: testcontainers would quietly fall back to
    // the default socket, so check it ourselves first.
    if (process.env.DOCKER_HOST) {
      const { default: Dockerode } = await import('dockerode')
      try {
        await new Dockerode().ping()
      }
      catch (error) {
        throw new EngineUnavailableError(error)
      }
    }
    const testcontainers = await import('testcontainers')
    try {
      const client = await testcontainers.getContainerRuntimeClient()
      await client.container.dockerode.ping()
      return { docker: client.container.dockerode, testcontainers }
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
