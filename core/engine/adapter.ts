import type { Duplex, Readable } from 'node:stream'

/**
 * The engine seam: everything clnrm asks of a container engine, in our own plain types. The
 * shapes follow the Docker Engine API's JSON (the wire format every Docker-API engine speaks:
 * Docker, Podman's compatible API, kubedock), trimmed to the fields clnrm uses, so no
 * implementation's types (dockerode, testcontainers) reach a public declaration.
 *
 * One implementation today (`docker-adapter.ts`, over dockerode); what a given engine really
 * supports is measured at connect by the capability probe (`probe.ts`), not assumed from here.
 */
export interface EngineAdapter {
  /** Answers when the engine does; rejects when it does not. */
  ping: () => Promise<void>
  /** The engine's `/version`. */
  version: () => Promise<EngineVersion>
  /** Creates (does not start) a container. */
  createContainer: (body: ContainerCreateBody) => Promise<EngineContainer>
  /** A handle on an existing container, by id or name (no engine call). */
  container: (id: string) => EngineContainer
  /** Containers (running or not) carrying every label given (`key` or `key=value`). */
  listContainers: (labels: string[]) => Promise<ContainerSummary[]>
  /** Creates a bridge network; resolves with its name. */
  createNetwork: (body: NetworkCreateBody) => Promise<string>
  /** Removes a network by id or name. */
  removeNetwork: (idOrName: string) => Promise<void>
  /** Networks carrying every label given. */
  listNetworks: (labels: string[]) => Promise<NetworkSummary[]>
  /** A network's IPv4 gateway and subnet (first IPAM config). */
  inspectNetwork: (idOrName: string) => Promise<{ gateway?: string; subnet?: string }>
  /** The local image's id, or `undefined` when it is not on the engine. */
  imageId: (image: string) => Promise<string | undefined>
  /** Pulls an image, reading its event stream to the end (each event to `onEvent`); rejects when the stream breaks. An `error` event is the caller's to judge. */
  pull: (image: string, options: { auth?: RegistryAuth; onEvent: (event: PullEvent) => void }) => Promise<void>
}

/** One line of a pull's event stream, as the engine sends it. */
export interface PullEvent {
  id?: string
  status?: string
  progress?: string
  progressDetail?: { current?: number; total?: number }
  error?: string
}

/** Registry credentials for a pull (the engine's `X-Registry-Auth`). */
export interface RegistryAuth {
  username?: string
  password?: string
  auth?: string
  email?: string
  serveraddress?: string
  identitytoken?: string
  registrytoken?: string
}

/** The engine's `/version`, with the product named. */
export interface EngineVersion {
  /** `Docker`, `Podman`, or the component name the engine gave. */
  name: string
  version: string
  apiVersion: string
  os: string
  arch: string
}

/** One container on the engine. */
export interface EngineContainer {
  readonly id: string
  start: () => Promise<void>
  inspect: () => Promise<ContainerInfo>
  /** The last `tail` lines of stdout and stderr, multiplexed as the engine sends them. */
  logs: (tail: number) => Promise<Buffer>
  /** stdout and stderr from the start, multiplexed, following until the container stops. */
  followLogs: () => Promise<Readable>
  /** Removes it (forced, with its anonymous volumes). */
  remove: () => Promise<void>
  /** Renames it; the engine refuses a name in use (the cross-process lease of `reuse.ts` relies on it). */
  rename: (name: string) => Promise<void>
  /**
   * Resolves with the main process's exit code once it is not running: at once when it already
   * is not, else the moment the engine sees it end (`POST /containers/{id}/wait?condition=not-running`,
   * one request held open, no polling). Aborting `signal` stops waiting (it then rejects).
   */
  waitNotRunning: (signal: AbortSignal) => Promise<number>
  /**
   * How many processes run in it now, as the kernel counts them (`GET /containers/{id}/top`):
   * 0 once its main process ended, even before the engine has told that exit.
   */
  processes: () => Promise<number>
  /** SIGKILL to its main process. */
  kill: () => Promise<void>
  /** Creates an exec; `start` attaches to it. */
  exec: (body: ExecCreateBody) => Promise<EngineExec>
  /** Extracts a tar archive into the container at `path`. */
  putArchive: (tar: Buffer, path: string) => Promise<void>
}

/** An exec instance. */
export interface EngineExec {
  /** Starts it and returns the attached (multiplexed) stream; with `stdin`, writable too. */
  start: (options: { stdin: boolean }) => Promise<Duplex>
  /** Its exit code once ended (`undefined` while running or unknown). */
  inspect: () => Promise<{ exitCode: number | undefined; running: boolean }>
}

/** `POST /containers/create`, the fields clnrm sets. */
export interface ContainerCreateBody {
  /** The container's name (a query parameter of the create call). */
  name?: string
  Image: string
  Cmd?: string[]
  Entrypoint?: string[]
  Env?: string[]
  Labels?: Record<string, string>
  WorkingDir?: string
  OpenStdin?: boolean
  ExposedPorts?: Record<string, Record<string, never>>
  HostConfig?: {
    Init?: boolean
    PortBindings?: Record<string, Array<{ HostIp: string; HostPort: string }>>
    Binds?: string[]
    NetworkMode?: string
    ExtraHosts?: string[]
    NanoCpus?: number
    Memory?: number
    MemorySwap?: number
  }
  NetworkingConfig?: { EndpointsConfig: Record<string, { Aliases?: string[] }> }
}

/** `POST /containers/{id}/exec`, the fields clnrm sets. */
export interface ExecCreateBody {
  Cmd: string[]
  Env?: string[]
  WorkingDir?: string
  AttachStdin?: boolean
  AttachStdout: boolean
  AttachStderr: boolean
  Tty: false
}

/** `POST /networks/create`, the fields clnrm sets. */
export interface NetworkCreateBody {
  Name: string
  Labels?: Record<string, string>
}

/** `GET /containers/{id}/json`, the fields clnrm reads. */
export interface ContainerInfo {
  Id: string
  State: { Running: boolean; Status?: string; Dead?: boolean; ExitCode: number; Error?: string; OOMKilled?: boolean }
  NetworkSettings: {
    Ports?: Record<string, Array<{ HostIp: string; HostPort: string }> | null>
    Networks?: Record<string, { IPAddress?: string; Gateway?: string; Aliases?: string[] | null }>
    IPAddress?: string
  }
}

/** One row of `GET /containers/json`. */
export interface ContainerSummary {
  Id: string
  Labels: Record<string, string>
  State?: string
  /** Its name, with the engine's leading `/`. */
  Names?: string[]
}

/** One row of `GET /networks`. */
export interface NetworkSummary {
  Id: string
  Name: string
  Labels: Record<string, string>
}
