import type { OtelSpec, SpanExpectations } from '../otel/types.ts'
import type { AssertionSpec } from '../assertions.ts'
import type { LimitsSpec } from './limits.ts'
import type { ReportSpec } from './report-table.ts'

/** A mount of a host path into a service's container. */
export interface VolumeSpec {
  /** Absolute host path (relative paths are resolved against the test file). */
  hostPath: string
  containerPath: string
  readOnly: boolean
}

/** A health check run inside the container before the first step. */
export interface HealthCheckSpec {
  cmd: string[]
  intervalMs: number
  timeoutMs: number
  retries: number
}

/** What to wait for before the first step: a log line or an open port. */
export type WaitForSpec =
  | { kind: 'log'; pattern: string; timeoutMs: number }
  | { kind: 'port'; port: number; timeoutMs: number }

/** One container of a test, normalized. */
export interface ServiceSpec {
  id: string
  plugin: string
  /** Upstream's `plugin = "alpine"` next to `type = "generic_container"`: a name only, the container is generic. */
  label?: string
  /** What the service is for, as written (documentation). */
  description?: string
  image: string
  /** Overrides the image's command when set. */
  command?: string[]
  env: Record<string, string>
  /** Container ports; host ports are assigned at run time. */
  ports: number[]
  volumes: VolumeSpec[]
  healthCheck?: HealthCheckSpec
  waitFor?: WaitForSpec
  /** Upstream's `wait_for_span`: ready once a span of that name appears on the container's output. */
  waitForSpan?: { name: string; timeoutMs: number }
  /** Run before a reused container serves the next run. */
  reset?: string[]
  reuse: boolean
  /** `/etc/hosts` entries (`name:ip`, or `name:host-gateway`), e.g. for reaching clnrm's OTLP receiver. */
  extraHosts?: string[]
  /**
   * Put the container on a clnrm network even when it is its test's only service. Services that
   * reach the host (clnrm's OTLP receiver) need it: a user-defined bridge keeps its MAC address,
   * while the default bridge may take another one whenever a container joins or leaves it, and
   * a container that cached the old one cannot reach the host for half a minute.
   */
  privateNetwork?: boolean
  /** `[limits]`: CPU and memory limits; part of the definition, so reuse keys change with them. */
  limits?: LimitsSpec
}

/** One command run inside one service's container, normalized. */
export interface StepSpec {
  name: string
  service: string
  /** The argv; a `run` string becomes `['sh', '-c', run]`. */
  command: string[]
  /** The original shell string when the step was written with `run`. */
  run?: string
  env: Record<string, string>
  workdir?: string
  timeoutMs: number
  /** What the step checks, as written (documentation, shown in reports). */
  description?: string
  expectedExitCode: number
  /** `should_fail = true`: any non-zero exit code passes, and 0 fails; replaces `expectedExitCode`. */
  shouldFail: boolean
  expectedOutputRegex: string[]
  /** Substrings that must all occur in stdout (`expected_output_contains`). */
  expectedOutputContains: string[]
  expectedOutputRegexNot: string[]
  expectedStderrRegex: string[]
  continueOnFailure: boolean
  /**
   * `artifacts.collect = ["spans:default"]`: the step's stdout is read as NDJSON spans (the
   * upstream flat shape or OTLP-JSON envelopes) and added to the test's spans.
   */
  collectSpans: boolean
  /** The `[[scenario]]` the step came from, if any. */
  scenario?: string
  /**
   * The scenario's `timeout_ms`: a deadline for its steps together, from the start of its first
   * step. A step still running then is killed and fails; the scenario's later steps fail unstarted.
   */
  scenarioTimeoutMs?: number
  /** Where the step is written: its key path in the (rendered) TOML, for editor links. */
  source: ReadonlyArray<string | number>
}

/** The normalized test: what `[meta]`/`[test.metadata]`, `[services]`/`[service]`, `[[steps]]` and `[[scenario]]` mean. */
export interface TestSpec {
  /** Absolute path of the file the user edits. */
  file: string
  name: string
  description?: string
  version?: string
  /** Budget for the whole test, when set. */
  timeoutMs?: number
  services: Record<string, ServiceSpec>
  steps: StepSpec[]
  determinism: { seed?: number; freezeClock?: string }
  /** Extra inputs for the dev loop: globs and entry modules, absolute. */
  watch: { files: string[]; modules: string[] }
  /**
   * `[otel]` with its defaults; present when the file declares `[otel]` or any `expect.*` table
   * (services then get OTEL_* env and the run collects spans).
   */
  otel?: OtelSpec
  /** The `expect.*` tables; present when any is declared. */
  expect?: SpanExpectations
  /** `[assertions]` / `[test.assertions]`: the checkable claims, judged after the run. */
  assertions?: AssertionSpec[]
  /** The file's `[vars]` table as written (rendered): template data, shown by `clnrm dry-run`. */
  vars?: Record<string, unknown>
  /** The `[matrix]` combination this variant runs (its name ends with `[key=value, …]`). */
  matrix?: Record<string, string>
  /**
   * The TOML this variant's template rendered to, when a `[matrix]` template renders one per
   * combination: its failures are located in it (a key may stand on another line in each).
   */
  toml?: string
  /**
   * A file with `[matrix]`: one test per combination. `clnrm run` reports each as its own test;
   * `runTest` on this spec runs them all, one after the other, as one result whose `steps` are
   * theirs side by side (these `steps`, each named after its combination).
   */
  variants?: TestSpec[]
  /** `[report]`: the reports `clnrm run` writes for this file, absolute paths. */
  report?: ReportSpec
}

/** Default per-step timeout. */
export const DEFAULT_STEP_TIMEOUT_MS = 30_000
/** Default interval between health checks: fast, since the dev loop waits on it. */
export const DEFAULT_HEALTH_INTERVAL_MS = 50
/** Default time a service gets to become healthy. */
export const DEFAULT_READY_TIMEOUT_MS = 30_000
