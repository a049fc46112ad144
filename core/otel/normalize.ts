import type { KeyPath, PendingDiagnostic } from '../format/diagnostics.ts'
import { formatKeyPath } from '../format/diagnostics.ts'
import type { CountBound, OtelSpec, SpanExpectations, SpanKind, SpanRule, StatusCode } from './types.ts'

/** Defaults of `[otel]` (docs/format.md lists them). */
export const DEFAULT_SETTLE_TIMEOUT_MS = 2_000
export const DEFAULT_QUIET_WINDOW_MS = 50
export const DEFAULT_PROPAGATORS: readonly string[] = ['tracecontext', 'baggage']

type Table = Record<string, any>
type Report = (code: PendingDiagnostic['code'], message: string, path: KeyPath, target: PendingDiagnostic['target'], hint?: string) => void

/**
 * Turns checked attribute expectations into `key → string`: a table (dotted keys written bare
 * are nested tables in TOML, joined back here) or upstream's `["key=value", …]`.
 */
export function flattenAttributes(value: unknown): Record<string, string> {
  const result: Record<string, string> = {}
  if (Array.isArray(value)) {
    for (const item of value as string[]) {
      const at = item.indexOf('=')
      result[item.slice(0, at).trim()] = item.slice(at + 1).trim()
    }
    return result
  }
  const walk = (table: Table, prefix: string): void => {
    for (const [key, item] of Object.entries(table)) {
      if (item !== null && typeof item === 'object') walk(item as Table, `${prefix}${key}.`)
      else result[`${prefix}${key}`] = String(item)
    }
  }
  if (value && typeof value === 'object') walk(value as Table, '')
  return result
}

/**
 * `artifacts.collect` of one step: true when it collects spans from stdout. `"spans"` and
 * `"spans:default"` are the spellings; `logs:…` is upstream's, which clnrm does not collect.
 */
export function collectsSpans(artifacts: Table | undefined, path: KeyPath, report: Report): boolean {
  let spans = false
  ;((artifacts?.collect ?? []) as string[]).forEach((entry, index) => {
    const at = [...path, 'artifacts', 'collect', index]
    if (entry === 'spans' || entry === 'spans:default') spans = true
    else if (entry.startsWith('logs')) {
      report('CLNRM_NOT_SUPPORTED', `artifacts.collect "${entry}" is not supported by this clnrm yet: collecting logs would not be checked`, at, 'value',
        'Remove it; check output with expected_output_regex. Only "spans:default" is collected.')
    }
    else {
      report('CLNRM_INVALID_VALUE', `artifacts.collect "${entry}" is not an artifact clnrm collects`, at, 'value', 'Write "spans:default": the step\'s stdout is read as NDJSON spans.')
    }
  })
  return spans
}

/**
 * The `[otel]` and `expect.*` parts of a test: checked values in, `OtelSpec` and
 * `SpanExpectations` out, with the rules that span keys (bounds, pairs, exporter choices).
 * `collecting` says whether any step reads spans from its stdout; `serviceIds` are the test's own
 * hosts for `no_external_services`.
 */
export function normalizeOtel(
  doc: Table,
  collecting: boolean,
  serviceIds: readonly string[],
  report: Report,
  /** Checks declared elsewhere (`[otel_validation]`), merged with the `expect.*` tables. */
  merge?: (declared: SpanExpectations | undefined) => SpanExpectations | undefined,
): { otel?: OtelSpec; expect?: SpanExpectations } {
  const declared = doc.expect !== undefined && Object.keys(doc.expect).length > 0
  const own = declared ? normalizeExpect(doc.expect as Table, serviceIds, report) : undefined
  const expect = merge ? merge(own) : own
  if (doc.otel === undefined && !expect) return {}
  const table: Table = doc.otel ?? {}
  const exporter: OtelSpec['exporter'] = table.exporter ?? 'otlp'
  if (exporter !== 'otlp') {
    for (const key of ['endpoint', 'protocol', 'headers'] as const) {
      const empty = key === 'headers' && Object.keys(table.headers ?? {}).length === 0
      if (table[key] !== undefined && !empty) {
        report('CLNRM_CONFLICTING_KEYS', `[otel] ${key} has no effect with exporter = "${exporter}": nothing is sent over OTLP`, ['otel', key], 'key',
          `Remove ${key}, or set exporter = "otlp".`)
      }
    }
  }
  if (exporter === 'stdout' && !collecting) {
    report('CLNRM_MISSING_KEY', '[otel] exporter = "stdout" but no step reads its stdout as spans', ['otel', 'exporter'], 'value',
      'Add artifacts.collect = ["spans:default"] to the step (or scenario) whose output holds the spans, or use exporter = "otlp".')
  }
  if (exporter === 'none' && expect && !collecting) {
    report('CLNRM_CONFLICTING_KEYS', '[otel] exporter = "none" but the test declares span expectations: no span could ever arrive', ['otel', 'exporter'], 'value',
      'Use exporter = "otlp" (the default), or collect spans from a step\'s stdout with artifacts.collect = ["spans:default"].')
  }
  const propagators: string[] = Array.isArray(table.propagators) ? table.propagators : table.propagators?.use ?? [...DEFAULT_PROPAGATORS]
  const otel: OtelSpec = {
    exporter,
    endpoint: table.endpoint,
    protocol: table.protocol ?? 'http/protobuf',
    sampleRatio: table.sample_ratio ?? 1,
    resources: flattenAttributes(table.resources),
    headers: table.headers ?? {},
    propagators,
    settleTimeoutMs: table.settle_timeout ?? DEFAULT_SETTLE_TIMEOUT_MS,
    quietWindowMs: table.quiet_window ?? DEFAULT_QUIET_WINDOW_MS,
  }
  if (otel.endpoint === undefined) delete otel.endpoint
  if (otel.quietWindowMs >= otel.settleTimeoutMs) {
    report('CLNRM_INVALID_VALUE', `[otel] quiet_window (${otel.quietWindowMs}ms) is not shorter than settle_timeout (${otel.settleTimeoutMs}ms): spans could never settle`, ['otel', table.quiet_window !== undefined ? 'quiet_window' : 'settle_timeout'], 'value',
      'Make quiet_window shorter than settle_timeout.')
  }
  return { otel, expect }
}

/** The checked `expect.*` tables as `SpanExpectations` (sources at `expect.*`). */
export function normalizeExpect(table: Table, serviceIds: readonly string[], report: Report): SpanExpectations {
  const result: SpanExpectations = { spans: [], windows: [] }
  ;((table.span ?? []) as Table[]).forEach((rule, index) => {
    const source = ['expect', 'span', index]
    if (typeof rule.name !== 'string') return
    const spanRule: SpanRule = { name: rule.name, source }
    if (rule.parent !== undefined) spanRule.parent = rule.parent
    if (rule.kind !== undefined) spanRule.kind = (rule.kind as string).toLowerCase() as SpanKind
    if (rule.attrs?.all !== undefined) spanRule.attrsAll = flattenAttributes(rule.attrs.all)
    if (rule.attrs?.any !== undefined) spanRule.attrsAny = flattenAttributes(rule.attrs.any)
    if (rule.status !== undefined) spanRule.status = (rule.status as string).toLowerCase() as StatusCode
    if (rule.events?.all !== undefined) spanRule.eventsAll = rule.events.all
    if (rule.events?.any !== undefined) spanRule.eventsAny = rule.events.any
    if (rule.duration_ms !== undefined) {
      const { min, max } = rule.duration_ms as { min?: number; max?: number }
      if (min !== undefined && max !== undefined && min > max) {
        report('CLNRM_INVALID_VALUE', `expect.span[${rule.name}].duration_ms has min ${min} above max ${max}: no span can pass`, [...source, 'duration_ms'], 'value', 'Swap them, or widen the range.')
      }
      spanRule.durationMs = { ...(min !== undefined && { min }), ...(max !== undefined && { max }) }
    }
    result.spans.push(spanRule)
  })
  const pairs = (list: unknown, path: KeyPath): Array<[string, string]> => ((list ?? []) as string[][]).flatMap((pair, index) => {
    if (pair.length === 2) return [[pair[0]!, pair[1]!] as [string, string]]
    report('CLNRM_INVALID_VALUE', `${formatKeyPath(path)}[${index}] has ${pair.length} names, expected a pair`, [...path, index], 'value', 'Write a pair of span names: ["parent", "child"].')
    return []
  })
  if (table.graph !== undefined) {
    const source = ['expect', 'graph']
    result.graph = {
      mustInclude: pairs(table.graph.must_include, [...source, 'must_include']),
      mustNotCross: pairs(table.graph.must_not_cross, [...source, 'must_not_cross']),
      source,
    }
    if (table.graph.acyclic !== undefined) result.graph.acyclic = table.graph.acyclic
  }
  if (table.counts !== undefined) {
    const source = ['expect', 'counts']
    const counts: NonNullable<SpanExpectations['counts']> = { source }
    const bound = (value: Table | undefined, path: KeyPath): CountBound | undefined => {
      if (value === undefined) return undefined
      const { eq, gte, lte } = value as CountBound
      if (eq === undefined && gte === undefined && lte === undefined) {
        report('CLNRM_MISSING_KEY', `${formatKeyPath(path)} has no bound`, path, 'value', 'Write { eq = 1 } or { gte = 1, lte = 10 }.')
      }
      else if (eq !== undefined && (gte !== undefined || lte !== undefined)) {
        report('CLNRM_CONFLICTING_KEYS', `${formatKeyPath(path)} has eq with gte/lte`, path, 'value', 'Write { eq = n } alone, or a range { gte, lte }.')
      }
      else if (gte !== undefined && lte !== undefined && gte > lte) {
        report('CLNRM_INVALID_VALUE', `${formatKeyPath(path)} has gte ${gte} above lte ${lte}: no count can pass`, path, 'value', 'Swap them, or widen the range.')
      }
      return { ...(eq !== undefined && { eq }), ...(gte !== undefined && { gte }), ...(lte !== undefined && { lte }) }
    }
    const spansTotal = bound(table.counts.spans_total, [...source, 'spans_total'])
    const eventsTotal = bound(table.counts.events_total, [...source, 'events_total'])
    const errorsTotal = bound(table.counts.errors_total, [...source, 'errors_total'])
    if (spansTotal) counts.spansTotal = spansTotal
    if (eventsTotal) counts.eventsTotal = eventsTotal
    if (errorsTotal) counts.errorsTotal = errorsTotal
    if (table.counts.by_name !== undefined) {
      counts.byName = {}
      for (const [name, value] of Object.entries(table.counts.by_name as Table)) counts.byName[name] = bound(value, [...source, 'by_name', name])!
    }
    result.counts = counts
  }
  ;((table.window ?? []) as Table[]).forEach((window, index) => {
    const source = ['expect', 'window', index]
    if (typeof window.outer !== 'string' || !Array.isArray(window.contains)) return
    if (window.contains.length === 0) {
      report('CLNRM_INVALID_VALUE', `expect.window[${window.outer}].contains is empty: it checks nothing`, [...source, 'contains'], 'value', 'Name the spans that must happen within the outer span.')
    }
    result.windows.push({ outer: window.outer, contains: window.contains, source })
  })
  if (table.order !== undefined) {
    const source = ['expect', 'order']
    result.order = {
      mustPrecede: pairs(table.order.must_precede, [...source, 'must_precede']),
      mustFollow: pairs(table.order.must_follow, [...source, 'must_follow']),
      source,
    }
  }
  if (table.status !== undefined) {
    const status: NonNullable<SpanExpectations['status']> = { source: ['expect', 'status'] }
    if (table.status.all !== undefined) status.all = (table.status.all as string).toLowerCase() as StatusCode
    if (table.status.by_name !== undefined) {
      status.byName = Object.fromEntries(Object.entries(table.status.by_name as Record<string, string>).map(([k, v]) => [k, v.toLowerCase() as StatusCode]))
    }
    result.status = status
  }
  if (table.hermeticity !== undefined) {
    const h = table.hermeticity as Table
    const hermeticity: NonNullable<SpanExpectations['hermeticity']> = { source: ['expect', 'hermeticity'] }
    if (h.no_external_services !== undefined) hermeticity.noExternalServices = h.no_external_services
    if (h.resource_attrs?.must_match !== undefined) hermeticity.resourceAttrsMustMatch = flattenAttributes(h.resource_attrs.must_match)
    if (h.span_attrs?.forbid_keys !== undefined) hermeticity.spanAttrsForbidKeys = h.span_attrs.forbid_keys
    if (hermeticity.noExternalServices) hermeticity.internalHosts = [...serviceIds]
    result.hermeticity = hermeticity
  }
  return result
}
