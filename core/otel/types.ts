/**
 * The OpenTelemetry model clnrm checks tests against: spans as the services under test emitted
 * them (decoded from OTLP protobuf or JSON, or read from a step's NDJSON stdout), the span
 * expectations a test file declares, and what their evaluation says. Plain data only, so the same
 * objects go to the terminal, JSON and JUnit reports, NDJSON and the browser panel.
 */

/** An attribute value as OTLP carries it (`AnyValue`), with 64-bit integers as numbers. */
export type AttributeValue = string | number | boolean | null | AttributeValue[] | { [key: string]: AttributeValue }

/** Attributes by key. */
export type Attributes = Record<string, AttributeValue>

/** OTLP's `Span.SpanKind`, lower-cased. */
export type SpanKind = 'unspecified' | 'internal' | 'server' | 'client' | 'producer' | 'consumer'

/** OTLP's `Status.StatusCode`, lower-cased. */
export type StatusCode = 'unset' | 'ok' | 'error'

/** One span event. */
export interface SpanEvent {
  name: string
  /** Milliseconds since the Unix epoch (fractional: nanoseconds / 1e6). */
  timeMs: number
  attributes: Attributes
}

/** One span, as a service under test emitted it. Never one of clnrm's own spans. */
export interface Span {
  /** 32 lower-case hex digits. */
  traceId: string
  /** 16 lower-case hex digits. */
  spanId: string
  /** Absent (not empty) for a root span. */
  parentSpanId?: string
  name: string
  kind: SpanKind
  /** Milliseconds since the Unix epoch, fractional (µs precision survives in a double). */
  startTimeMs: number
  endTimeMs: number
  attributes: Attributes
  events: SpanEvent[]
  status: { code: StatusCode; message?: string }
  /** The resource's attributes (`service.name`, …). */
  resource: Attributes
  /** `service.name` of the resource, or `unknown_service`. */
  service: string
  scope?: { name: string; version?: string }
  /** How clnrm got it: the OTLP/HTTP receiver, or a step's stdout (`artifacts.collect`). */
  source: 'otlp' | 'stdout'
  /** When the receiver decoded it (performance.now() of the runner's process); for settling. */
  receivedAt: number
}

/** `{ eq = 1 }`, `{ gte = 2, lte = 10 }`. */
export interface CountBound {
  eq?: number
  gte?: number
  lte?: number
}

/** Where a rule is written in the test file: its TOML key path, for locations in reports. */
export type RulePath = ReadonlyArray<string | number>

/** `[[expect.span]]`: passes when some span whose name matches `name` satisfies every other key. */
export interface SpanRule {
  /** A glob (`*` and `?`) over span names. */
  name: string
  /** The name (a glob) of the matching span's parent. */
  parent?: string
  kind?: SpanKind
  /** Every one must be present with this value (compared as strings). */
  attrsAll?: Record<string, string>
  /** At least one must be present with this value. */
  attrsAny?: Record<string, string>
  /** Attribute keys that must be present, with any value (upstream's `required_attributes`). */
  attrsPresent?: string[]
  /** Event names that must all occur on the span. */
  eventsAll?: string[]
  /** Event names of which at least one must occur. */
  eventsAny?: string[]
  durationMs?: { min?: number; max?: number }
  /** The span's status (the OTLP status, else its `otel.status_code` attribute). */
  status?: StatusCode
  /**
   * Exactly this many spans satisfy the whole rule (upstream's `[[otel_validation.expected_spans]]
   * count`, which counts spans of that name *with* the listed attributes: one name may carry
   * several counts, one per attribute set).
   */
  count?: number
  source: RulePath
}

/** Everything a test declares about spans; each part is optional. */
export interface SpanExpectations {
  spans: SpanRule[]
  graph?: {
    /** Each `[parent, child]` must be a direct edge. */
    mustInclude: Array<[string, string]>
    /** No direct edge from the first to the second. */
    mustNotCross: Array<[string, string]>
    acyclic?: boolean
    source: RulePath
  }
  counts?: {
    spansTotal?: CountBound
    /** The number of span events (not of spans with events). */
    eventsTotal?: CountBound
    /** Spans whose status is ERROR. */
    errorsTotal?: CountBound
    /** Keys are globs over span names. */
    byName?: Record<string, CountBound>
    source: RulePath
  }
  /** `[[expect.window]]`: every `outer` span contains (in time) at least one span of each `contains` name. */
  windows: Array<{ outer: string; contains: string[]; source: RulePath }>
  order?: {
    /** `[a, b]`: some `a` ends before some `b` starts. */
    mustPrecede: Array<[string, string]>
    /** `[a, b]`: some `a` starts after some `b` ends. */
    mustFollow: Array<[string, string]>
    source: RulePath
  }
  status?: {
    /** Every span has this status. */
    all?: StatusCode
    /** Keys are globs; each must match at least one span, and all its matches have the status. */
    byName?: Record<string, StatusCode>
    source: RulePath
  }
  hermeticity?: {
    /** No span names a network peer outside the test's own services. */
    noExternalServices?: boolean
    /** Every resource seen carries these attributes with these values. */
    resourceAttrsMustMatch?: Record<string, string>
    /** No span carries any of these attribute keys. */
    spanAttrsForbidKeys?: string[]
    /**
     * Hosts that belong to the test, besides localhost: the test's service ids, set by the
     * normalizer (the runner may add container addresses through the evaluation's context).
     */
    internalHosts?: string[]
    source: RulePath
  }
  /**
   * Upstream's `[[otel_validation.expected_traces]]`: one trace holds a span of each name (globs),
   * and, in that trace, each `[parent, child]` is a direct edge.
   */
  traces?: Array<{ spanNames: string[]; parentChild: Array<[string, string]>; source: RulePath }>
}

/** `[otel]`: how services export, and how long clnrm waits for their spans. */
export interface OtelSpec {
  exporter: 'otlp' | 'stdout' | 'none'
  /** Overrides the receiver clnrm starts (a collector of the user's). */
  endpoint?: string
  protocol: 'http/protobuf' | 'http/json'
  sampleRatio: number
  /** Resource attributes given to every service (`OTEL_RESOURCE_ATTRIBUTES`). */
  resources: Record<string, string>
  headers: Record<string, string>
  propagators: string[]
  /** The longest clnrm waits after the last step for spans to arrive. */
  settleTimeoutMs: number
  /** No span for this long means the spans are complete. @default 50 */
  quietWindowMs: number
}

/** One rule that did not hold. */
export interface SpanRuleFailure {
  /** `expect.span[checkout.charge].attrs.all`, `expect.counts.spans_total`, `expect.graph.must_include[0]`. */
  rule: string
  /** What the rule asked for, as written. */
  expected: string
  /** What the spans showed. */
  actual: string
  /** For span rules: the candidate that came closest, and how it differs. */
  closest?: { spanId: string; name: string; service: string; differences: string[] }
  /** Span ids involved (for highlighting in a waterfall). */
  spanIds: string[]
  source: RulePath
}

/** The verdict on a test's spans. */
export interface SpanVerdict {
  /** Rules evaluated (each span rule, graph edge, count… counts once). */
  checked: number
  failures: SpanRuleFailure[]
  /**
   * The name of every rule evaluated, failed or not, in the file's order (the same names as
   * `failures[].rule`), when the evaluator lists them: JUnit shows the ones that held as passing
   * cases. Optional, so a verdict without it stays valid (reports then count `checked` only).
   */
  rules?: string[]
  /** The spans the verdict was given on (this run's only). */
  spans: Span[]
  /** How long clnrm waited after the last step for spans to settle. */
  settleMs: number
}
