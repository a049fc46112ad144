import { ClnrmError } from '../errors.ts'
import type { CommandRunner } from './exec/types.ts'
import type { DockerConnection } from './docker.ts'
import type { TestSpec } from '../format/spec.ts'

/** Labels on every container and network clnrm creates. */
export const LABELS = {
  managed: 'clnrm',
  key: 'clnrm.key',
  pid: 'clnrm.pid',
  host: 'clnrm.host',
  session: 'clnrm.session',
  service: 'clnrm.service',
} as const

/** What the pool reports: starts, reuse, replacements, removals, pulls. Plain data. */
export type PoolEvent =
  | { type: 'pool:orphans-removed'; containers: number; networks: number }
  | { type: 'pool:reusable-swept'; containers: number }
  /** A missing image's pull began (all missing images of a run start at once). */
  | { type: 'pool:image-pull-start'; image: string; registry: string }
  /** A pull moved: the engine's latest status, and layers and bytes so far (throttled). */
  | { type: 'pool:image-pull'; image: string; status: string; progress?: string; layers: { done: number; total: number }; bytes: { current: number; total: number } }
  /** A pull ended: pulled, or failed with `error` (the tests that need the image fail with it). */
  | { type: 'pool:image-pull-done'; image: string; registry: string; ms: number; layers: { done: number; total: number }; bytes: { current: number; total: number }; error?: { message: string; reason: string; hint: string } }
  | { type: 'pool:container-starting'; service: string; image: string; file: string }
  | { type: 'pool:container-ready'; service: string; image: string; file: string; ms: number }
  | { type: 'pool:container-replaced'; service: string; file: string; reason: string }
  | { type: 'pool:container-removed'; service: string; reason: 'idle' | 'retired' | 'evicted' | 'closed' | 'no-reuse' | 'failed' }

/** Options of a `ContainerPool`. */
export interface ContainerPoolOptions {
  /**
   * Containers alive at once, counting starting, busy and idle ones. A test that needs a new
   * container when all are taken waits for one (idle containers of other definitions are removed
   * first). A test with more services than this runs alone, over the limit. @default 8
   */
  maxContainers?: number
  /** Milliseconds an unused container lives. @default 600_000 (10 min) */
  idleTimeoutMs?: number
  /**
   * Leave idle containers running for the next clnrm process, and claim those a previous one
   * left (`clnrm run --reuse`). Only single-service containers without a private network are
   * left; a cross-process lease keeps two processes from sharing one (see reuse.ts). @default false
   */
  reuseAcrossRuns?: boolean
  /** How long a container left for the next process waits before any clnrm process removes it. @default 600_000 (10 min) */
  reuseIdleTimeoutMs?: number
  onEvent?: (event: PoolEvent) => void
  /**
   * The tests the pool will run, when known up front (`clnrm run`): as `prepareImages` does,
   * their images start resolving (missing ones pulling) and a multi-service test's network is
   * made, while the pool still sweeps what dead processes left.
   */
  plan?: Iterable<TestSpec>
  /** Injected connection (tests); connects lazily by default. */
  connection?: DockerConnection
}

/** A service's container as leased to one run of a test. */
export interface LeasedService {
  id: string
  containerId: string
  runner: CommandRunner
  /** Container port → host port on 127.0.0.1. */
  hostPorts: Record<number, number>
  /** Whether the container served an earlier run. */
  reused: boolean
  /** A fresh, empty directory for this run: the steps' default workdir. */
  workdir: string
  /**
   * The container's addresses on its networks (what a server on the host sees as the peer of
   * its connections): how the OTLP receiver tells which lease sent a span. Looked up once per container.
   */
  addresses: () => Promise<string[]>
  /** The gateways of the container's networks: where a server on the host listens to be reached from it without `host-gateway`. */
  gateways: () => Promise<string[]>
}

/** The containers of one run of one test. Release it when the run ends. */
export interface Lease {
  runId: string
  services: Record<string, LeasedService>
  /** `SERVICE_<ID>_PORT_<n>` for every published port. */
  env: Record<string, string>
  acquireMs: number
  /**
   * Settles once the services started for this lease that no step uses (their shells deferred)
   * have been watched through their start: rejects with the `ServiceExitedError` of one whose
   * main process ended then. Resolved already unless the lease was acquired with
   * `checkStartsLater` (without it, `acquire` itself rejects with that error). A run awaits it
   * before its verdict; `release` does too, and removes the containers when it rejects.
   */
  startsChecked: () => Promise<void>
  /**
   * Hands the containers back: kills what the run left running and removes its workdir. The
   * pool waits for it before leasing them again, so callers need not await it.
   */
  release: () => Promise<void>
}

/** A service's `reset` failed: the container is replaced, and every run of the test errors alike. */
export class ResetFailedError extends ClnrmError {
  override name = 'ResetFailedError'
  readonly service: string
  declare readonly hint: string
  constructor(service: string, exitCode: number, stderr: string) {
    super('CLNRM_RESET_FAILED', `reset of service "${service}" exited ${exitCode}${stderr ? `: ${stderr}` : ''}`, {
      hint: '`reset` runs before every run, on fresh containers too: it must succeed on a new container (e.g. `rm -rf /data/*`, not `rm /data/file`).',
    })
    this.service = service
  }
}
