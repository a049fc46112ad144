// A model of upstream clnrm's test-file loader, for `npm run compat` only (not shipped, not in
// `npm test`). Upstream (seanchatmangpt/clnrm, crates/clnrm-core/src/config/) loads a file with
// `load_config_from_file`: Tera-render it when it holds `{{`, `{%` or `{#`, then
// `toml::from_str::<TestConfig>` (serde: unknown keys dropped, required fields and field types
// enforced), then `TestConfig::validate()`. This file restates those structs as data and walks a
// parsed document the way serde would. It is written from reading the Rust source; where versions
// of a struct differ, the v1.0 shape (the one the 2025-10 files were written for) is modelled.
import { parse } from 'smol-toml'

// Field types. `opt()` fields may be missing (serde treats a missing Option as None); fields built
// with `dflt()` have #[serde(default)]; anything else is required.
const str = { kind: 'string' }
const bool = { kind: 'bool' }
const f64 = { kind: 'float' }
const json = { kind: 'any' }
const int = (min, max) => ({ kind: 'int', min, max })
const u8 = int(0, 255)
const u16 = int(0, 65535)
const u32 = int(0, 2 ** 32 - 1)
const u64 = int(0, Number.MAX_SAFE_INTEGER)
const i32 = int(-(2 ** 31), 2 ** 31 - 1)
const vec = item => ({ kind: 'vec', item })
const map = value => ({ kind: 'map', value })
const tuple = (...items) => ({ kind: 'tuple', items })
const struct = (fields, flatten) => ({ kind: 'struct', fields, flatten })
const opt = type => ({ ...type, optional: true })
const dflt = type => ({ ...type, optional: true })

const Volume = struct({ host_path: str, container_path: str, read_only: opt(bool) })
const HealthCheck = struct({ cmd: vec(str), interval: opt(u64), timeout: opt(u64), retries: opt(u32) })
const Service = struct({
  plugin: dflt(str), image: opt(str), args: dflt(vec(str)), env: opt(map(str)), ports: opt(vec(u16)),
  volumes: opt(vec(Volume)), health_check: opt(HealthCheck), username: opt(str), password: opt(str),
  strict: opt(bool), wait_for_span: opt(str), wait_for_span_timeout_secs: opt(u64),
})
const Step = struct({
  name: str, command: vec(str), expected_output_regex: opt(str), workdir: opt(str), env: opt(map(str)),
  expected_exit_code: opt(i32), continue_on_failure: opt(bool), service: opt(str),
})
const Policy = struct({
  security_level: opt(str), max_execution_time: opt(u64), max_memory_mb: opt(u64), max_cpu_usage: opt(f64),
  allowed_network_hosts: opt(vec(str)), disallowed_commands: opt(vec(str)),
})
const Scenario = struct({
  name: str, steps: dflt(vec(Step)), service: dflt(str), run: dflt(str), concurrent: opt(bool),
  timeout_ms: opt(u64), policy: opt(Policy), artifacts: dflt(struct({ collect: vec(str) })),
})
const Propagators = struct({ use: vec(str) })
const Otel = struct({
  exporter: str, endpoint: dflt(str), protocol: dflt(str), sample_ratio: dflt(f64), resources: dflt(map(str)),
  headers: dflt(map(str)), propagators: dflt(Propagators),
})
const Bound = struct({ gte: dflt(u64), lte: dflt(u64), eq: dflt(u64) })
const Counts = struct({ spans_total: dflt(Bound), events_total: dflt(Bound), errors_total: dflt(Bound), by_name: dflt(map(Bound)) })
const Graph = struct({ must_include: dflt(vec(vec(str))), must_not_cross: dflt(vec(vec(str))), acyclic: dflt(bool) })
const Window = struct({ outer: str, contains: vec(str) })
const Hermeticity = struct({
  no_external_services: dflt(bool),
  resource_attrs: dflt(struct({ must_match: dflt(map(str)) })),
  span_attrs: dflt(struct({ forbid_keys: dflt(vec(str)) })),
}, undefined)
// serde aliases: resource_attrs_must_match / span_attrs_forbid_keys name the same fields.
Hermeticity.aliases = { resource_attrs_must_match: 'resource_attrs', span_attrs_forbid_keys: 'span_attrs' }
const Order = struct({ must_precede: dflt(vec(vec(str))), must_follow: dflt(vec(vec(str))) })
const Status = struct({ all: dflt(str), by_name: dflt(map(str)) })
const SpanExpectation = struct({
  name: str, parent: dflt(str), kind: dflt(str), attrs: dflt(struct({ all: opt(map(str)), any: opt(map(str)) })),
  events: dflt(struct({ any: dflt(vec(str)), all: dflt(vec(str)) })), duration_ms: dflt(struct({ min: dflt(f64), max: dflt(f64) })),
})
const Expectations = struct({
  span: dflt(vec(SpanExpectation)), order: dflt(Order), status: dflt(Status), counts: dflt(Counts),
  window: dflt(vec(Window)), graph: dflt(Graph), hermeticity: dflt(Hermeticity),
})
const OtelValidation = struct({
  enabled: bool, validate_spans: dflt(bool), validate_traces: dflt(bool), validate_exports: dflt(bool),
  validate_performance: dflt(bool), max_overhead_ms: dflt(f64),
  expected_spans: dflt(vec(struct({ name: str, attributes: opt(map(str)), required: opt(bool), min_duration_ms: opt(f64), max_duration_ms: opt(f64) }))),
  expected_traces: dflt(vec(struct({ trace_id: opt(str), span_names: vec(str), complete: opt(bool), parent_child: opt(vec(tuple(str, str))) }))),
  expect_graph: dflt(Graph), expect_counts: dflt(Counts), expect_windows: dflt(vec(Window)),
  expect_hermeticity: dflt(Hermeticity), expect_order: dflt(Order), expect_status: dflt(Status),
})
const TestConfig = struct({
  test: opt(struct({ metadata: struct({ name: str, description: opt(str), timeout: opt(str) }) })),
  meta: opt(struct({ name: str, version: str, description: opt(str) })),
  services: dflt(map(Service)), service: dflt(map(Service)), steps: dflt(vec(Step)), scenario: dflt(vec(Scenario)),
  assertions: dflt(map(json)), otel_validation: dflt(OtelValidation), otel: dflt(Otel), vars: dflt(map(json)),
  matrix: dflt(map(vec(str))), expect: dflt(Expectations), report: dflt(struct({ json: dflt(str), junit: dflt(str), digest: dflt(str) })),
  determinism: dflt(struct({ seed: dflt(u64), freeze_clock: dflt(str) })),
  limits: dflt(struct({ cpu_millicores: dflt(u32), memory_mb: dflt(u32) })),
  otel_headers: dflt(struct({}, map(str))), otel_propagators: dflt(Propagators),
  performance: dflt(struct({ sample_size: dflt(u32), baseline_name: dflt(str), regression_detection: dflt(bool) })),
  chaos: dflt(struct({ enabled: bool, experiments: dflt(vec(struct({
    type: str, target_service: str, latency_ms: dflt(u64), duration_seconds: dflt(u64), cpu_percent: dflt(u8),
    memory_mb: dflt(u64), fill_mb: dflt(u64), timing: dflt(str), count: dflt(u32),
  }))) })),
})

/** Whether upstream's loader would read a file: `{ ok: true }` or `{ ok: false, reason }`. */
export function upstreamLoads(text) {
  let doc
  try {
    doc = parse(text)
  }
  catch (error) {
    return { ok: false, reason: `TOML: ${String(error.message).split('\n')[0]}` }
  }
  try {
    deserialize(TestConfig, doc, '')
    validate(doc)
  }
  catch (error) {
    if (error instanceof Rejected) return { ok: false, reason: error.message }
    throw error
  }
  return { ok: true }
}

/** Whether upstream renders the file with Tera before parsing it (its `is_template`). */
export function upstreamIsTemplate(text) {
  return text.includes('{{') || text.includes('{%') || text.includes('{#')
}

class Rejected extends Error {}
const reject = message => {
  throw new Rejected(message)
}

function typeName(value) {
  if (Array.isArray(value)) return 'array'
  if (value instanceof Date || value?.constructor?.name === 'TomlDate') return 'datetime'
  return typeof value === 'object' ? 'table' : typeof value
}

function deserialize(type, value, path) {
  const got = typeName(value)
  const wrong = () => reject(`${path || 'document'}: invalid type ${got}, expected ${type.kind}`)
  switch (type.kind) {
    case 'any': return
    case 'string': if (got !== 'string') wrong(); return
    case 'bool': if (got !== 'boolean') wrong(); return
    // serde's f64 visitor takes integers too; integer fields never take floats.
    case 'float': if (got !== 'number' && got !== 'bigint') wrong(); return
    case 'int':
      if (got === 'bigint') return
      if (got !== 'number' || !Number.isInteger(value)) wrong()
      if (value < type.min || value > type.max) reject(`${path}: ${value} out of range`)
      return
    case 'vec':
      if (got !== 'array') wrong()
      value.forEach((item, i) => deserialize(type.item, item, `${path}[${i}]`))
      return
    case 'tuple':
      if (got !== 'array' || value.length !== type.items.length) wrong()
      value.forEach((item, i) => deserialize(type.items[i], item, `${path}[${i}]`))
      return
    case 'map':
      if (got !== 'table') wrong()
      for (const [k, v] of Object.entries(value)) deserialize(type.value, v, `${path}.${k}`)
      return
    case 'struct': {
      const names = Object.keys(type.fields)
      // serde's derived structs also take a sequence, field by field in declaration order.
      if (got === 'array') {
        if (value.length > names.length) reject(`${path}: too many elements`)
        names.forEach((name, i) => {
          if (i < value.length) deserialize(type.fields[name], value[i], `${path}[${i}]`)
          else if (!type.fields[name].optional) reject(`${path}: missing element ${name}`)
        })
        return
      }
      if (got !== 'table') wrong()
      const seen = new Set()
      for (const [key, v] of Object.entries(value)) {
        const name = type.aliases?.[key] ?? key
        const field = type.fields[name]
        if (field) {
          if (seen.has(name)) reject(`${path}: duplicate field ${name}`)
          seen.add(name)
          deserialize(field, v, path ? `${path}.${key}` : key)
        }
        // #[serde(flatten)] HashMap<String, String>: every other key lands there.
        else if (type.flatten) deserialize(type.flatten.value, v, `${path}.${key}`)
      }
      for (const name of names) if (!seen.has(name) && !type.fields[name].optional) reject(`${path || 'document'}: missing field \`${name}\``)
    }
  }
}

const blank = s => typeof s !== 'string' || s.trim() === ''
const absolute = p => p.startsWith('/')

// TestConfig::validate() and what it calls, in its order (the first failure is the error).
function validate(doc) {
  const name = doc.meta?.name ?? doc.test?.metadata?.name
  if (name === undefined) reject('Configuration must have either [meta] or [test.metadata] section')
  if (name.trim() === '') reject('Test name cannot be empty')
  const steps = doc.steps ?? []
  const scenarios = doc.scenario ?? []
  if (steps.length === 0 && scenarios.length === 0) reject('At least one step or scenario is required')
  steps.forEach((step, i) => validateStep(step, `Step ${i}`))
  scenarios.forEach((scenario, i) => {
    if (blank(scenario.name)) reject(`Scenario ${i}: Scenario name cannot be empty`)
    const nested = scenario.steps ?? []
    if (scenario.service === undefined && scenario.run === undefined && nested.length === 0) reject(`Scenario ${i}: must have either 'service'/'run' or 'steps'`)
    nested.forEach((step, j) => validateStep(step, `Scenario ${i}: Step ${j}`))
  })
  for (const table of [doc.services, doc.service]) {
    for (const [serviceName, service] of Object.entries(table ?? {})) validateService(service, `Service ${serviceName}`)
  }
  if (doc.assertions && Object.keys(doc.assertions).length === 0) reject('Assertions cannot be empty if provided')
  if (doc.otel) {
    if (!['stdout', 'otlp', 'jaeger', 'zipkin'].includes(doc.otel.exporter.toLowerCase())) reject(`OTEL config: Invalid exporter type '${doc.otel.exporter}'`)
    if (doc.otel.sample_ratio !== undefined && !(doc.otel.sample_ratio >= 0 && doc.otel.sample_ratio <= 1)) reject('OTEL config: Sample ratio must be between 0.0 and 1.0')
    if (doc.otel.protocol !== undefined && !['http/protobuf', 'grpc', 'http/json'].includes(doc.otel.protocol.toLowerCase())) reject(`OTEL config: Invalid protocol '${doc.otel.protocol}'`)
  }
  for (const edges of [doc.expect?.graph?.must_include, doc.expect?.graph?.must_not_cross]) {
    for (const edge of edges ?? []) {
      if (edge.length !== 2) reject('Graph expectations: Graph edges must have exactly 2 elements')
      if (edge[0] === '' || edge[1] === '') reject('Graph expectations: Graph edge names cannot be empty')
    }
  }
  const status = doc.expect?.status
  if (status) {
    const ok = s => ['OK', 'ERROR', 'UNSET'].includes(s.toUpperCase())
    if (status.all !== undefined && !ok(status.all)) reject(`Status expectations: Invalid status value '${status.all}'`)
    for (const [spanName, s] of Object.entries(status.by_name ?? {})) {
      if (spanName === '') reject('Status expectations: Span name in status expectations cannot be empty')
      if (!ok(s)) reject(`Status expectations: Invalid status value '${s}'`)
    }
  }
  if (doc.meta) {
    if (doc.meta.name.trim() === '') reject('Meta name cannot be empty')
    if (doc.meta.version.trim() === '') reject('Meta version cannot be empty')
  }
  if (doc.performance) reject('Performance testing features are not yet implemented')
  if (doc.chaos) {
    const experiments = doc.chaos.experiments ?? []
    if (doc.chaos.enabled && experiments.length === 0) reject('Chaos config: Chaos is enabled but no experiments defined')
    const needs = { network_latency: 'latency_ms', cpu_stress: 'cpu_percent', memory_stress: 'memory_mb', disk_fill: 'fill_mb' }
    experiments.forEach((e, i) => {
      if (blank(e.target_service)) reject(`Chaos experiment ${i}: target_service cannot be empty`)
      if (!(e.type in needs) && !['container_kill', 'network_partition', 'cascading_failures'].includes(e.type)) reject(`Chaos experiment ${i}: Unknown chaos experiment type: ${e.type}`)
      if (needs[e.type] && e[needs[e.type]] === undefined) reject(`Chaos experiment ${i}: ${e.type} requires ${needs[e.type]}`)
      if (e.cpu_percent > 100) reject(`Chaos experiment ${i}: cpu_percent must be between 0 and 100`)
    })
  }
}

function validateStep(step, where) {
  if (blank(step.name)) reject(`${where}: Step name cannot be empty`)
  if (step.command.length === 0) reject(`${where}: Step command cannot be empty`)
}

function validateService(service, where) {
  const plugin = service.plugin ?? 'generic_container'
  if (plugin.trim() === '') reject(`${where}: Service plugin cannot be empty`)
  if (service.image !== undefined) {
    if (service.image.trim() === '') reject(`${where}: Service image cannot be empty`)
  }
  else if (plugin !== 'network_service' && plugin !== 'ollama') reject(`${where}: Service image is required for container-based services`)
  if ((service.ports ?? []).includes(0)) reject(`${where}: Service port cannot be 0`)
  ;(service.volumes ?? []).forEach((v, i) => {
    if (v.host_path.trim() === '') reject(`${where}: Volume ${i}: Volume host path cannot be empty`)
    if (v.container_path.trim() === '') reject(`${where}: Volume ${i}: Volume container path cannot be empty`)
    if (!absolute(v.host_path)) reject(`${where}: Volume ${i}: Volume host path must be absolute: ${v.host_path}`)
    if (!absolute(v.container_path)) reject(`${where}: Volume ${i}: Volume container path must be absolute: ${v.container_path}`)
  })
  const hc = service.health_check
  if (hc) {
    if (hc.cmd.length === 0) reject(`${where}: Health check: command cannot be empty`)
    if (hc.interval === 0) reject(`${where}: Health check: interval must be greater than 0`)
    if (hc.timeout === 0) reject(`${where}: Health check: timeout must be greater than 0`)
  }
  if (service.wait_for_span_timeout_secs === 0) reject(`${where}: wait_for_span_timeout_secs must be greater than 0`)
}
