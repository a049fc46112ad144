import { contentHash } from '../hash.ts'
import { describeExpectations } from '../otel/describe.ts'
import type { ServiceSpec, TestSpec } from './spec.ts'

/** The env var a step reads to reach a service's published port: `SERVICE_WEB_PORT_8080`. */
export function portEnvName(serviceId: string, port: number): string {
  return `SERVICE_${serviceId.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_PORT_${port}`
}

/**
 * A hash of everything that defines a service's container. Two tests whose services hash the
 * same may share a pooled container; any change (env, ports, volumes, health check…) gets a new one.
 */
export function serviceDefinitionHash(service: ServiceSpec): string {
  // A label or a description names nothing the container depends on: they must not split the pool.
  const { id: _id, label: _label, description: _description, ...definition } = service
  return contentHash(stableStringify(definition))
}

/**
 * JSON with object keys sorted at every level, so equal definitions hash equal. Built by hand
 * (no entry pairs, closures or joins): the pool asks for the hash of every new spec's services,
 * and a shared partial's save makes a new spec for each of its tests. The text must not change:
 * pooled containers carry keys made from it.
 */
function stableStringify(value: unknown): string {
  if (Array.isArray(value)) {
    let out = '['
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ','
      // As Array.prototype.join: an item with no JSON (undefined, a function) is empty.
      out += stableStringify(value[i]) ?? ''
    }
    return `${out}]`
  }
  if (value && typeof value === 'object') {
    const table = value as Record<string, unknown>
    const keys = Object.keys(table).filter(key => table[key] !== undefined).sort()
    let out = '{'
    for (let i = 0; i < keys.length; i++) {
      if (i > 0) out += ','
      out += `${JSON.stringify(keys[i])}:${stableStringify(table[keys[i]!])}`
    }
    return `${out}}`
  }
  return JSON.stringify(value)
}

/** What `clnrm run` would do for one test, without starting anything. */
export interface TestPlan {
  file: string
  name: string
  timeoutMs?: number
  services: Array<{
    id: string
    image: string
    /** Upstream's `plugin` written as a label; the service is a generic container. */
    label?: string
    description?: string
    command?: string[]
    env: Record<string, string>
    /** Container port → the env var steps read for its host port (assigned at run time). */
    ports: Array<{ container: number; env: string }>
    volumes: Array<{ host: string; container: string; readOnly: boolean }>
    ready: string
    reuse: boolean
    definitionHash: string
  }>
  steps: Array<{
    name: string
    description?: string
    service: string
    argv: string[]
    workdir: string
    timeoutMs: number
    expect: string[]
    continueOnFailure: boolean
    /** The step's stdout is read as NDJSON spans (`artifacts.collect`). */
    collectSpans: boolean
  }>
  /**
   * How services export spans, when the test uses OpenTelemetry. Header values are left out:
   * they are often credentials, and a plan is printed and shared.
   */
  otel?: {
    exporter: string
    endpoint?: string
    protocol: string
    sampleRatio: number
    resources: Record<string, string>
    headers: string[]
    propagators: string[]
    settleTimeoutMs: number
    quietWindowMs: number
  }
  /** Every span rule the test declares, named as its failures would be, in the file's order. */
  expectations: Array<{ rule: string; expected: string }>
  /** The file's `[vars]` table: template data, as written. */
  vars?: Record<string, unknown>
  /** The `[matrix]` combination this plan runs. */
  matrix?: Record<string, string>
  /** `[report]`: the files `clnrm run` writes for this test file. */
  report?: { json?: string; junit?: string; digest?: string }
}

/** Resolves a spec into the plan `clnrm dry-run` prints. */
export function createPlan(spec: TestSpec): TestPlan {
  return {
    file: spec.file,
    name: spec.name,
    timeoutMs: spec.timeoutMs,
    services: Object.values(spec.services).map(service => ({
      id: service.id,
      image: service.image,
      ...(service.label !== undefined && { label: service.label }),
      ...(service.description !== undefined && { description: service.description }),
      command: service.command,
      env: service.env,
      ports: service.ports.map(port => ({ container: port, env: portEnvName(service.id, port) })),
      volumes: service.volumes.map(v => ({ host: v.hostPath, container: v.containerPath, readOnly: v.readOnly })),
      ready: describeReadiness(service),
      reuse: service.reuse,
      definitionHash: serviceDefinitionHash(service),
    })),
    steps: spec.steps.map(step => ({
      name: step.name,
      ...(step.description !== undefined && { description: step.description }),
      service: step.service,
      argv: step.command,
      workdir: step.workdir ?? '(fresh per-run directory)',
      timeoutMs: step.timeoutMs,
      expect: [
        step.shouldFail ? 'exit code not 0' : `exit code ${step.expectedExitCode}`,
        ...step.expectedOutputRegex.map(p => `stdout ~ /${p}/`),
        ...step.expectedOutputContains.map(s => `stdout contains ${JSON.stringify(s)}`),
        ...step.expectedOutputRegexNot.map(p => `stdout !~ /${p}/`),
        ...step.expectedStderrRegex.map(p => `stderr ~ /${p}/`),
      ],
      continueOnFailure: step.continueOnFailure,
      collectSpans: step.collectSpans,
    })),
    ...(spec.otel && {
      otel: {
        exporter: spec.otel.exporter,
        ...(spec.otel.endpoint !== undefined && { endpoint: spec.otel.endpoint }),
        protocol: spec.otel.protocol,
        sampleRatio: spec.otel.sampleRatio,
        resources: spec.otel.resources,
        headers: Object.keys(spec.otel.headers),
        propagators: spec.otel.propagators,
        settleTimeoutMs: spec.otel.settleTimeoutMs,
        quietWindowMs: spec.otel.quietWindowMs,
      },
    }),
    expectations: spec.expect ? describeExpectations(spec.expect).map(({ rule, expected }) => ({ rule, expected })) : [],
    ...(spec.vars !== undefined && { vars: spec.vars }),
    ...(spec.matrix !== undefined && { matrix: spec.matrix }),
    ...(spec.report !== undefined && { report: spec.report }),
  }
}

function describeReadiness(service: ServiceSpec): string {
  const parts: string[] = []
  if (service.waitFor?.kind === 'log') parts.push(`log matches /${service.waitFor.pattern}/`)
  if (service.waitFor?.kind === 'port') parts.push(`port ${service.waitFor.port} accepts connections`)
  if (service.healthCheck) parts.push(`health check \`${service.healthCheck.cmd.join(' ')}\` every ${service.healthCheck.intervalMs}ms`)
  if (service.waitForSpan) parts.push(`a span named "${service.waitForSpan.name}" appears on its output (within ${service.waitForSpan.timeoutMs / 1000}s)`)
  return parts.length ? parts.join(', then ') : 'running'
}
