import type { ServiceSpec, TestSpec } from '../format/spec.ts'
import type { HostRoute } from '../engine/host-reach.ts'
import { HOST_ROUTES } from '../engine/host-reach.ts'
import { DEFAULT_PROPAGATORS, DEFAULT_QUIET_WINDOW_MS, DEFAULT_SETTLE_TIMEOUT_MS } from './normalize.ts'
import type { OtelSpec } from './types.ts'

/** What an `[otel]`-less test with span expectations gets. */
export const DEFAULT_OTEL: OtelSpec = {
  exporter: 'otlp',
  protocol: 'http/protobuf',
  sampleRatio: 1,
  resources: {},
  headers: {},
  propagators: [...DEFAULT_PROPAGATORS],
  settleTimeoutMs: DEFAULT_SETTLE_TIMEOUT_MS,
  quietWindowMs: DEFAULT_QUIET_WINDOW_MS,
}

/**
 * The SDKs' batch processors wait 5 s by default before exporting, which would make every run
 * wait that long for its spans: 20 ms keeps export well inside the 50 ms quiet window.
 */
export const BATCH_DELAY_MS = 20

/** Whether a test declares `[otel]` or any span expectation: only those get the OTel env. */
export function wantsOtel(spec: TestSpec): boolean {
  const { otel, expect } = spec
  if (otel) return true
  if (!expect) return false
  return expect.spans.length > 0 || expect.windows.length > 0 || !!(expect.graph || expect.counts || expect.order || expect.status || expect.hermeticity)
}

/** The test's `[otel]`, or the defaults. */
export function otelOf(spec: TestSpec): OtelSpec {
  return spec.otel ?? DEFAULT_OTEL
}

/** Whether clnrm's own receiver must run for this test (OTLP export, and no collector of the user's). */
export function needsReceiver(spec: TestSpec): boolean {
  const otel = otelOf(spec)
  return wantsOtel(spec) && otel.exporter === 'otlp' && !otel.endpoint
}

/**
 * The env every service of an OTel test gets, before its own `env` (which overrides any of it).
 * Only stable values: injected env is part of the container definition, so the same endpoint
 * gives the same definition and containers stay reusable across runs.
 */
export function otelServiceEnv(serviceId: string, otel: OtelSpec, endpoint: string): Record<string, string> {
  const env: Record<string, string> = {
    OTEL_TRACES_EXPORTER: otel.exporter === 'stdout' ? 'console' : otel.exporter,
    // Where to export means nothing to a service that prints its spans or exports none.
    ...(otel.exporter === 'otlp' ? { OTEL_EXPORTER_OTLP_ENDPOINT: otel.endpoint ?? endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: otel.protocol } : {}),
    OTEL_SERVICE_NAME: serviceId,
    OTEL_TRACES_SAMPLER: otel.sampleRatio >= 1 ? 'always_on' : 'parentbased_traceidratio',
    OTEL_BSP_SCHEDULE_DELAY: String(BATCH_DELAY_MS),
  }
  if (otel.sampleRatio < 1) env.OTEL_TRACES_SAMPLER_ARG = String(otel.sampleRatio)
  const list = (record: Record<string, string>): string => Object.entries(record).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join(',')
  if (Object.keys(otel.resources).length) env.OTEL_RESOURCE_ATTRIBUTES = list(otel.resources)
  if (Object.keys(otel.headers).length) env.OTEL_EXPORTER_OTLP_HEADERS = list(otel.headers)
  if (otel.propagators.length) env.OTEL_PROPAGATORS = otel.propagators.join(',')
  return env
}

const derived = new WeakMap<TestSpec, { endpoint: string; route: HostRoute; spec: TestSpec }>()

/**
 * The test as the pool should see it: every service with the OTel env and, when the endpoint is
 * clnrm's receiver, what the engine's measured route to this machine asks of the container
 * (`route`, see host-reach.ts): on Docker `host.docker.internal` mapped to host-gateway; on
 * Podman nothing, since it names the host `host.containers.internal` on every network itself.
 * Either way the services go on a network of the pool's (`privateNetwork`), whose gateway the
 * receiver can answer on. The same derived spec (same service objects) comes back while the test,
 * the endpoint and the route are unchanged, so the pool's per-definition caches keep working.
 */
export function withOtelEnv(spec: TestSpec, endpoint: string, route: HostRoute = 'host-gateway'): TestSpec {
  const cached = derived.get(spec)
  if (cached?.endpoint === endpoint && cached.route === route) return cached.spec
  const otel = otelOf(spec)
  const mapsHost = otel.exporter === 'otlp' && !otel.endpoint
  const extra = HOST_ROUTES[route].extraHosts
  const services: Record<string, ServiceSpec> = {}
  for (const [id, service] of Object.entries(spec.services)) {
    const own = (service.extraHosts ?? []).filter(h => !extra.includes(h))
    services[id] = {
      ...service,
      env: { ...otelServiceEnv(id, otel, endpoint), ...service.env },
      ...(mapsHost ? { ...(own.length || extra.length ? { extraHosts: [...own, ...extra] } : {}), privateNetwork: true } : {}),
    }
  }
  const result = { ...spec, services }
  derived.set(spec, { endpoint, route, spec: result })
  return result
}
