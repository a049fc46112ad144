import {
  array, boolean, field, integer, notSupported, number, oneOrMany, positiveDuration, record, scalar, string, table, union,
} from '../format/fields.ts'
import type { FieldDef, TypeDef } from '../format/fields.ts'

/**
 * The format of `[otel]`, every `expect.*` table and a step's `artifacts`: the type definitions
 * the validator, the JSON Schema and `fmt` share. What the checked values mean is in
 * `normalize.ts` beside this file; docs/format.md documents each key.
 */

/** Span kinds as `[[expect.span]] kind` spells them (OTLP's, lower-cased). */
export const SPAN_KINDS: readonly string[] = ['internal', 'server', 'client', 'producer', 'consumer', 'unspecified']

/** Propagators the OpenTelemetry SDKs know by name (`OTEL_PROPAGATORS`). */
export const PROPAGATORS: readonly string[] = ['tracecontext', 'baggage', 'b3', 'b3multi', 'jaeger', 'xray', 'ottrace', 'none']

// A dotted key inside an inline table (`attrs.all = { http.method = "GET" }`) is a nested table
// in TOML; the normalizer joins the keys back with dots. Six levels cover the semantic
// conventions' longest names (`http.request.header.<name>` and the like).
const nestedAttribute = (depth: number): TypeDef => (depth === 0 ? scalar : union(scalar, record(nestedAttribute(depth - 1))))

/**
 * Attribute expectations: a table of key → value (values compared as strings, dotted keys
 * allowed unquoted), or upstream's list of `"key=value"` strings.
 */
export const attributeMap: TypeDef = union(
  record(nestedAttribute(6)),
  array(string({ pattern: { source: '^[^=]+=', what: 'a "key=value" string', hint: 'Write "key=value", or a table: { "key" = "value" }.' } })),
)

/** A pattern accepting each word in any case (upstream reads kinds and statuses case-insensitively). */
function anyCase(words: readonly string[]): string {
  const letters = (word: string): string => [...word].map(c => (/[a-z]/i.test(c) ? `[${c.toUpperCase()}${c.toLowerCase()}]` : c)).join('')
  return `^(?:${words.map(letters).join('|')})$`
}

const spanName = (what: string): TypeDef => string({ nonEmpty: true, examples: [what] })

const statusCode: TypeDef = string({
  examples: ['OK', 'ERROR', 'UNSET'],
  pattern: { source: anyCase(['ok', 'error', 'unset']), what: 'a span status', hint: 'Write "OK", "ERROR" or "UNSET" (any case).' },
})

const spanKind: TypeDef = string({
  examples: [...SPAN_KINDS],
  pattern: { source: anyCase(SPAN_KINDS), what: 'a span kind', hint: `Write one of ${SPAN_KINDS.join(', ')} (any case).` },
})

/** `{ eq = 1 }` or `{ gte = 2, lte = 10 }`. */
const countBound: TypeDef = table({
  eq: field(integer({ minimum: 0 }), 'Exactly this many.'),
  gte: field(integer({ minimum: 0 }), 'At least this many.'),
  lte: field(integer({ minimum: 0 }), 'At most this many (waits for the quiet window before passing).'),
})

const pairs = (what: string): TypeDef => array(array(string({ nonEmpty: true, examples: [what] })))

/** `[[expect.span]]`. */
export const spanRuleTable: TypeDef & { kind: 'table' } = table({
  name: field(spanName('checkout.*'), 'A glob (`*`, `?`) over span names. Passes when some matching span satisfies every other key.', { required: true }),
  parent: field(spanName('http.request'), 'A glob: the matching span\'s direct parent has a name it matches.'),
  kind: field(spanKind, 'The span kind (any case).'),
  attrs: field(table({
    all: field(attributeMap, 'Attributes that must all be present with these values (compared as strings).'),
    any: field(attributeMap, 'Attributes of which at least one must be present with its value.'),
  }), 'Attribute expectations on the matching span.'),
  events: field(table({
    all: field(array(string({ nonEmpty: true })), 'Event names that must all occur on the span.'),
    any: field(array(string({ nonEmpty: true })), 'Event names of which at least one must occur on the span.'),
  }), 'Span event expectations, by event name.'),
  duration_ms: field(table({
    min: field(number({ minimum: 0 }), 'The span lasts at least this many milliseconds.'),
    max: field(number({ minimum: 0 }), 'The span lasts at most this many milliseconds.'),
  }), 'Bounds on the span\'s duration.'),
  status: field(statusCode, 'The span\'s status: `"OK"`, `"ERROR"` or `"UNSET"` (any case).'),
})

/** `[expect]`: what a test requires of the spans its services emit. */
export const expectTable: TypeDef & { kind: 'table' } = table({
  span: field(array(spanRuleTable), 'Spans that must exist, each written `[[expect.span]]`.'),
  graph: field(table({
    must_include: field(pairs('parent'), '`[parent, child]` name globs: some span of the first is the direct parent of some span of the second.'),
    must_not_cross: field(pairs('a'), '`[a, b]` name globs: no span of the first is the direct parent of a span of the second.'),
    acyclic: field(boolean, 'No span is its own ancestor through parent ids.'),
  }), 'The shape of the span tree.'),
  counts: field(table({
    spans_total: field(countBound, 'How many spans in all.'),
    events_total: field(countBound, 'How many span events in all (not spans with events).'),
    errors_total: field(countBound, 'How many spans have the status ERROR.'),
    by_name: field(record(countBound), 'Keys are name globs: how many spans match each.'),
  }), 'How many spans, events and errors.'),
  window: field(oneOrMany(table({
    outer: field(spanName('checkout'), 'A name glob: every span it matches must contain the others in time.', { required: true }),
    contains: field(array(string({ nonEmpty: true })), 'Name globs: each `outer` span contains (starts no earlier, ends no later) at least one span of each.', { required: true }),
  })), 'Spans that must happen within other spans, each written `[[expect.window]]`.'),
  order: field(table({
    must_precede: field(pairs('first'), '`[a, b]` name globs: some span of the first ends before some span of the second starts.'),
    must_follow: field(pairs('later'), '`[a, b]` name globs: some span of the first starts after some span of the second ends.'),
  }), 'Which spans come before which.'),
  status: field(table({
    all: field(statusCode, 'Every span has this status.'),
    by_name: field(record(statusCode), 'Keys are name globs: each matches at least one span, and every match has the status.'),
  }), 'Span statuses (the OTLP status, else the `otel.status_code` attribute).'),
  hermeticity: field(table({
    no_external_services: field(boolean, 'No span names a network peer other than the test\'s own services and localhost.'),
    resource_attrs: field(table({
      must_match: field(attributeMap, 'Every resource seen carries these attributes with these values.'),
    }), 'Expectations on every resource.'),
    span_attrs: field(table({
      forbid_keys: field(array(string({ nonEmpty: true })), 'No span carries any of these attribute keys.'),
    }), 'Expectations on every span\'s attributes.'),
  }), 'The services under test talk to nothing outside the test.'),
  chaos: notSupported('chaos expectations (fault injection is not implemented)'),
  isolation: notSupported('container isolation expectations'),
  concurrent: notSupported('concurrency expectations'),
  timeouts: notSupported('timeout enforcement expectations'),
})

/** `[otel]`: how the services under test export spans, and how long clnrm waits for them. */
export const otelTable: TypeDef & { kind: 'table' } = table({
  exporter: field(string({ enum: ['otlp', 'stdout', 'none'] }), 'How services export spans: `otlp` to clnrm\'s receiver (or `endpoint`), `stdout` as NDJSON on a step\'s stdout (needs `artifacts.collect`), `none` not at all.', { default: 'otlp' }),
  endpoint: field(string({
    examples: ['http://collector:4318'],
    pattern: { source: '^https?://[^\\s/]+', what: 'an http(s) URL', hint: 'Write the OTLP/HTTP base URL, such as "http://collector:4318"; leave it out to use clnrm\'s own receiver.' },
  }), 'An OTLP/HTTP collector of your own, instead of the receiver clnrm starts. Only with `exporter = "otlp"`.'),
  protocol: field(string({ enum: ['http/protobuf', 'http/json'] }), 'The OTLP encoding services use (`OTEL_EXPORTER_OTLP_PROTOCOL`). Only with `exporter = "otlp"`.', { default: 'http/protobuf' }),
  sample_ratio: field(number({ minimum: 0, maximum: 1 }), 'The share of traces services sample (1.0: all).', { default: 1 }),
  resources: field(attributeMap, 'Resource attributes given to every service (`OTEL_RESOURCE_ATTRIBUTES`).'),
  headers: field(record(scalar), 'Headers services send with every export (`OTEL_EXPORTER_OTLP_HEADERS`). Only with `exporter = "otlp"`.'),
  propagators: field(union(
    array(string({ enum: PROPAGATORS })),
    table({ use: field(array(string({ enum: PROPAGATORS })), 'The propagators, in order.', { required: true }) }),
  ), 'Context propagators (`OTEL_PROPAGATORS`): a list, or upstream\'s `{ use = [...] }`.', { default: ['tracecontext', 'baggage'] }),
  settle_timeout: field(positiveDuration, 'The longest clnrm waits after the last step for spans to arrive.', { default: '2s' }),
  quiet_window: field(positiveDuration, 'No new span for this long means the spans are complete.', { default: '50ms' }),
})

/** `artifacts` of a step or scenario. */
export const artifactsField: FieldDef = field(table({
  collect: field(array(string({
    examples: ['spans:default'],
    pattern: { source: '^[a-z]+(?::.*)?$', what: 'an artifact such as "spans:default"', hint: 'Write "spans:default": the step\'s stdout is read as NDJSON spans.' },
  })), 'What to collect from the step: `"spans:default"` reads its stdout as NDJSON spans.', { required: true }),
}), 'What the step produces besides its exit code and output.')
