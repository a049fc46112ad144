import type { KeyPath, PendingDiagnostic } from './diagnostics.ts'
import { formatKeyPath } from './diagnostics.ts'
import { array, boolean, field, integer, notSupported, number, record, string, table } from './fields.ts'
import type { FieldDef, TypeDef } from './fields.ts'
import { attributeMap, expectTable, spanRuleTable } from '../otel/format.ts'
import { flattenAttributes, normalizeExpect } from '../otel/normalize.ts'
import type { SpanExpectations, SpanKind, SpanRule, StatusCode } from '../otel/types.ts'

/**
 * `[otel_validation]`: upstream's older span checks. Each maps onto the span checks of
 * `[[expect.span]]` and the other `expect.*` tables (docs/format.md says which); a key that maps
 * onto nothing clnrm checks is `CLNRM_NOT_SUPPORTED`, so the table never passes unchecked.
 */

const pairs: TypeDef = array(array(string({ nonEmpty: true })))
const expectField = (key: string): FieldDef => expectTable.fields[key]!

const expectedSpanTable = table({
  name: field(string({ nonEmpty: true, examples: ['clnrm.run'] }), 'A glob over span names: some span it matches must satisfy the other keys (as `[[expect.span]] name`).', { required: true }),
  kind: spanRuleTable.fields.kind!,
  parent: spanRuleTable.fields.parent!,
  attributes: field(attributeMap, 'Attributes the span must carry with these values (as `attrs.all`).'),
  required: field(boolean, 'The span must exist (`true`, the default). `false` is `CLNRM_NOT_SUPPORTED`: an optional span checks nothing when it is absent.', { default: true }),
  min_duration_ms: field(number({ minimum: 0 }), 'The span lasts at least this long (as `duration_ms.min`).'),
  max_duration_ms: field(number({ minimum: 0 }), 'The span lasts at most this long (as `duration_ms.max`).'),
  status: spanRuleTable.fields.status!,
  count: field(integer({ minimum: 0 }), 'Exactly this many spans of this name satisfy the rest of the entry (its attributes, kind, parent, status), as upstream counts them: one name may carry a count per attribute set.'),
  required_attributes: field(table({
    attributes: field(array(string({ nonEmpty: true })), 'Attribute keys the span must carry, with any value.', { required: true }),
  }), 'Attributes that must be present with any value (upstream\'s files write them beside `attributes`).'),
})

const expectedTraceTable = table({
  span_names: field(array(string({ nonEmpty: true })), 'Name globs: one trace must hold a span of each.', { required: true }),
  complete: field(boolean, 'Every name must be in the trace (`true`, the default). `false` is `CLNRM_NOT_SUPPORTED`: a partial trace checks nothing definite.', { default: true }),
  parent_child: field(pairs, '`[parent, child]` name globs: in that same trace, a span of the first is the direct parent of a span of the second.'),
  trace_id: notSupported('a trace id fixed in advance (clnrm starts a new trace for every run)'),
})

/** `[otel_validation]` as upstream's `OtelValidationSection` declares it. */
export const otelValidationTable: TypeDef & { kind: 'table' } = table({
  enabled: field(boolean, 'Whether the table\'s checks run. `false` beside a check is `CLNRM_CONFLICTING_KEYS`: declared checks always run.', { required: true }),
  validate_spans: field(boolean, '`expected_spans` are checked; `false` beside them is `CLNRM_CONFLICTING_KEYS`.'),
  validate_traces: field(boolean, '`expected_traces` are checked; `false` beside them is `CLNRM_CONFLICTING_KEYS`.'),
  validate_exports: notSupported('a check that exports succeeded (write [expect.counts] spans_total = { gte = 1 })'),
  validate_performance: notSupported('a tracing overhead check'),
  max_overhead_ms: notSupported('a tracing overhead bound'),
  expected_spans: field(array(expectedSpanTable), 'Spans that must exist, each `[[otel_validation.expected_spans]]` (as `[[expect.span]]`).'),
  expected_traces: field(array(expectedTraceTable), 'Traces that must hold spans of the names given, each `[[otel_validation.expected_traces]]`.'),
  expect_graph: field(expectField('graph').type, 'As `[expect.graph]`.'),
  expect_counts: field(expectField('counts').type, 'As `[expect.counts]`.'),
  expect_windows: field(array((expectField('window').type as { items: TypeDef }).items), 'As `[[expect.window]]`.'),
  expect_hermeticity: field(table({
    no_external_services: field(boolean, 'As `[expect.hermeticity] no_external_services`.'),
    resource_attrs_must_match: field(record(string()), 'As `[expect.hermeticity] resource_attrs.must_match`.'),
    span_attrs_forbid_keys: field(array(string({ nonEmpty: true })), 'As `[expect.hermeticity] span_attrs.forbid_keys`.'),
  }), 'As `[expect.hermeticity]`, in upstream\'s flat spelling.'),
  expect_order: field(expectField('order').type, 'As `[expect.order]`.'),
  expect_status: field(expectField('status').type, 'As `[expect.status]`.'),
})

type Table = Record<string, any>
type Report = (code: PendingDiagnostic['code'], message: string, path: KeyPath, target: PendingDiagnostic['target'], hint?: string) => void

/** Upstream's `expect_*` keys and the `expect.*` table each one is. */
const EXPECT_KEYS: Readonly<Record<string, string>> = {
  expect_graph: 'graph', expect_counts: 'counts', expect_windows: 'window', expect_hermeticity: 'hermeticity', expect_order: 'order', expect_status: 'status',
}
const BASE = ['otel_validation']

/** Where an `expect.*` path of the synthetic table is written in `[otel_validation]`. */
function remap(path: KeyPath): KeyPath {
  if (path[0] !== 'expect') return path
  const key = Object.entries(EXPECT_KEYS).find(([, table]) => table === path[1])?.[0]
  if (!key) return path
  const rest = path.slice(2)
  if (key === 'expect_hermeticity' && rest[0] === 'resource_attrs') return [...BASE, key, 'resource_attrs_must_match', ...rest.slice(2)]
  if (key === 'expect_hermeticity' && rest[0] === 'span_attrs') return [...BASE, key, 'span_attrs_forbid_keys', ...rest.slice(2)]
  return [...BASE, key, ...rest]
}

/**
 * The span checks a checked `[otel_validation]` table maps onto, with their sources at its own
 * keys; undefined when it has none (or is off). `declared` is the file's own `expect.*` tables:
 * one check written in both places is `CLNRM_CONFLICTING_KEYS`.
 */
export function normalizeOtelValidation(raw: Table | undefined, declared: Table | undefined, serviceIds: readonly string[], report: Report): SpanExpectations | undefined {
  if (raw === undefined) return undefined
  const spans = (raw.expected_spans ?? []) as Table[]
  const traces = (raw.expected_traces ?? []) as Table[]
  const expectKeys = Object.keys(EXPECT_KEYS).filter(key => raw[key] !== undefined)
  const checks = spans.length + traces.length + expectKeys.length
  if (raw.enabled === false) {
    if (checks > 0) report('CLNRM_CONFLICTING_KEYS', '[otel_validation] enabled = false, but the table declares checks: clnrm never skips a declared check', [...BASE, 'enabled'], 'value', 'Remove the checks, or write enabled = true.')
    return undefined
  }
  if (raw.enabled === undefined) return undefined
  if (checks === 0) {
    report('CLNRM_MISSING_KEY', '[otel_validation] declares no check: nothing would be validated', BASE, 'table', 'Add [[otel_validation.expected_spans]] with name = "…" (or write [[expect.span]]), or remove the table.')
    return undefined
  }
  for (const [flag, list] of [['validate_spans', 'expected_spans'], ['validate_traces', 'expected_traces']] as const) {
    if (raw[flag] === false && raw[list] !== undefined) {
      report('CLNRM_CONFLICTING_KEYS', `[otel_validation] ${flag} = false, but ${list} are declared: clnrm never skips a declared check`, [...BASE, flag], 'value', `Remove ${list}, or write ${flag} = true.`)
    }
  }
  for (const key of expectKeys) {
    if (declared?.[EXPECT_KEYS[key]!] !== undefined) {
      report('CLNRM_CONFLICTING_KEYS', `${formatKeyPath([...BASE, key])} and [expect.${EXPECT_KEYS[key]}] both declare ${EXPECT_KEYS[key]} checks`, [...BASE, key], 'key', `Keep one of them; [expect.${EXPECT_KEYS[key]}] is the current spelling.`)
    }
  }

  const synthetic: Table = {}
  for (const key of expectKeys) synthetic[EXPECT_KEYS[key]!] = raw[key]
  if (raw.expect_hermeticity) {
    const h = raw.expect_hermeticity as Table
    synthetic.hermeticity = {
      ...(h.no_external_services !== undefined && { no_external_services: h.no_external_services }),
      ...(h.resource_attrs_must_match !== undefined && { resource_attrs: { must_match: h.resource_attrs_must_match } }),
      ...(h.span_attrs_forbid_keys !== undefined && { span_attrs: { forbid_keys: h.span_attrs_forbid_keys } }),
    }
  }
  const result = normalizeExpect(synthetic, serviceIds, (code, message, path, target, hint) => report(code, message, remap(path), target, hint))
  for (const part of [result.graph, result.counts, result.order, result.status, result.hermeticity]) if (part) part.source = remap(part.source)
  result.windows = result.windows.map(window => ({ ...window, source: remap(window.source) }))

  spans.forEach((span, index) => {
    const source = [...BASE, 'expected_spans', index]
    if (typeof span.name !== 'string') return
    if (span.required === false) {
      report('CLNRM_NOT_SUPPORTED', `${formatKeyPath([...source, 'required'])} = false is not supported: an optional span checks nothing when it is absent`, [...source, 'required'], 'value', 'Remove the span, or make it required (the default).')
      return
    }
    const rule: SpanRule = { name: span.name, source }
    if (span.attributes !== undefined) rule.attrsAll = flattenAttributes(span.attributes)
    if (span.required_attributes?.attributes !== undefined) rule.attrsPresent = span.required_attributes.attributes
    if (span.kind !== undefined) rule.kind = (span.kind as string).toLowerCase() as SpanKind
    if (span.parent !== undefined) rule.parent = span.parent
    if (span.status !== undefined) rule.status = (span.status as string).toLowerCase() as StatusCode
    const { min_duration_ms: min, max_duration_ms: max } = span as { min_duration_ms?: number; max_duration_ms?: number }
    if (min !== undefined && max !== undefined && min > max) {
      report('CLNRM_INVALID_VALUE', `${formatKeyPath(source)} has min_duration_ms ${min} above max_duration_ms ${max}: no span can pass`, [...source, 'max_duration_ms'], 'value', 'Swap them, or widen the range.')
    }
    if (min !== undefined || max !== undefined) rule.durationMs = { ...(min !== undefined && { min }), ...(max !== undefined && { max }) }
    result.spans.push(rule)
    // Upstream counts spans of this name with these attributes: one name may have several
    // counts (one per attribute set), so the count is the rule's own, not a per-name total.
    if (span.count !== undefined) rule.count = span.count
  })

  traces.forEach((trace, index) => {
    const source = [...BASE, 'expected_traces', index]
    if (!Array.isArray(trace.span_names)) return
    if (trace.complete === false) {
      report('CLNRM_NOT_SUPPORTED', `${formatKeyPath([...source, 'complete'])} = false is not supported: a partial trace checks nothing definite`, [...source, 'complete'], 'value', 'Remove it: every name listed must then be in the trace.')
      return
    }
    if (trace.span_names.length === 0) {
      report('CLNRM_INVALID_VALUE', `${formatKeyPath([...source, 'span_names'])} is empty: it checks nothing`, [...source, 'span_names'], 'value', 'Name the spans the trace must hold.')
      return
    }
    const parentChild = ((trace.parent_child ?? []) as string[][]).flatMap((pair, i) => {
      if (pair.length === 2) return [[pair[0]!, pair[1]!] as [string, string]]
      report('CLNRM_INVALID_VALUE', `${formatKeyPath([...source, 'parent_child', i])} has ${pair.length} names, expected a pair`, [...source, 'parent_child', i], 'value', 'Write a pair of span names: ["parent", "child"].')
      return []
    })
    ;(result.traces ??= []).push({ spanNames: trace.span_names, parentChild, source })
  })
  return result
}

/** The file's own `expect.*` checks and those `[otel_validation]` maps onto, as one set. */
export function mergeExpectations(a: SpanExpectations | undefined, b: SpanExpectations | undefined): SpanExpectations | undefined {
  if (!a || !b) return a ?? b
  const merged: SpanExpectations = { ...a, spans: [...a.spans, ...b.spans], windows: [...a.windows, ...b.windows] }
  // A table declared in both places is a located conflict already; the file's own wins here.
  for (const key of ['graph', 'order', 'status', 'hermeticity'] as const) if (!merged[key] && b[key]) Object.assign(merged, { [key]: b[key] })
  if (b.counts) merged.counts = a.counts ? { ...a.counts, byName: { ...b.counts.byName, ...a.counts.byName } } : b.counts
  if (b.traces) merged.traces = [...(a.traces ?? []), ...b.traces]
  return merged
}
