import type { AttributeValue, Attributes, Span, SpanEvent, SpanKind, StatusCode } from './types.ts'

/**
 * Spans from a step's stdout (`artifacts.collect = ["spans:default"]`): NDJSON, one JSON value a
 * line, other lines (logs) skipped. Accepted per line:
 * - upstream clnrm's flat span (`name`, `trace_id`, `span_id`, `parent_span_id`,
 *   `start_time_unix_nano`, `end_time_unix_nano`, `kind`, `attributes`, `events`,
 *   `resource_attributes`) and the camelCase spelling of the same fields (`traceId`, …);
 * - an OTLP-JSON envelope (`{"resourceSpans": [...]}`), as SDK file/stdout exporters write it.
 * Pure: a line that is not a span is skipped, never an error.
 */
export function spansFromStdout(text: string, options: { receivedAt?: number } = {}): Span[] {
  const receivedAt = options.receivedAt ?? 0
  const spans: Span[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line.startsWith('{')) continue
    let value: unknown
    try {
      value = JSON.parse(line)
    }
    catch {
      continue
    }
    if (!isObject(value)) continue
    if (Array.isArray(value.resourceSpans) || Array.isArray(value.resource_spans)) spans.push(...fromEnvelope(value, receivedAt))
    else {
      const span = fromFlat(value, {}, undefined, receivedAt)
      if (span) spans.push(span)
    }
  }
  return spans
}

/**
 * The spans of a run's collecting steps (`artifacts.collect`), in step order. A step whose
 * stdout was kept only in part (its excerpt cut the middle) is listed in `incomplete`: spans may
 * be missing, so a runner must not let an `eq`/`lte` count or a hermeticity rule pass on them.
 */
export function spansFromSteps(
  steps: ReadonlyArray<{ name: string; collectSpans: boolean }>,
  results: ReadonlyArray<{ name: string; stdout: string; truncated?: { stdout: boolean } }>,
  options: { receivedAt?: number } = {},
): { spans: Span[]; incomplete: string[] } {
  const collecting = new Set(steps.filter(s => s.collectSpans).map(s => s.name))
  const spans: Span[] = []
  const incomplete: string[] = []
  for (const result of results) {
    if (!collecting.has(result.name)) continue
    spans.push(...spansFromStdout(result.stdout, options))
    if (result.truncated?.stdout) incomplete.push(result.name)
  }
  return { spans, incomplete }
}

type Json = Record<string, unknown>

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value)

/** A field under its snake_case or camelCase name. */
function pick(obj: Json, snake: string): unknown {
  if (obj[snake] !== undefined) return obj[snake]
  return obj[snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())]
}

function fromEnvelope(envelope: Json, receivedAt: number): Span[] {
  const spans: Span[] = []
  for (const resourceSpans of (pick(envelope, 'resource_spans') as unknown[])) {
    if (!isObject(resourceSpans)) continue
    const resource = isObject(resourceSpans.resource) ? attributesOf(resourceSpans.resource.attributes) : {}
    const scopes = (pick(resourceSpans, 'scope_spans') ?? pick(resourceSpans, 'instrumentation_library_spans')) as unknown
    for (const scopeSpans of Array.isArray(scopes) ? scopes : []) {
      if (!isObject(scopeSpans)) continue
      const scopeRaw = scopeSpans.scope ?? pick(scopeSpans, 'instrumentation_library')
      const scope = isObject(scopeRaw) && typeof scopeRaw.name === 'string'
        ? { name: scopeRaw.name, ...(typeof scopeRaw.version === 'string' && scopeRaw.version !== '' && { version: scopeRaw.version }) }
        : undefined
      for (const item of Array.isArray(scopeSpans.spans) ? scopeSpans.spans : []) {
        const span = isObject(item) ? fromFlat(item, resource, scope, receivedAt) : undefined
        if (span) spans.push(span)
      }
    }
  }
  return spans
}

function fromFlat(obj: Json, resource: Attributes, scope: Span['scope'], receivedAt: number): Span | undefined {
  const name = obj.name
  const traceId = pick(obj, 'trace_id')
  const spanId = pick(obj, 'span_id')
  if (typeof name !== 'string' || typeof traceId !== 'string' || typeof spanId !== 'string' || traceId === '' || spanId === '') return undefined
  const parent = pick(obj, 'parent_span_id')
  // Upstream's flat span carries its resource beside it; an envelope's spans share theirs.
  const ownResource = pick(obj, 'resource_attributes') ?? (isObject(obj.resource) ? obj.resource.attributes : undefined)
  const spanResource = ownResource !== undefined ? { ...resource, ...attributesOf(ownResource) } : resource
  const startTimeMs = nanosToMs(pick(obj, 'start_time_unix_nano'))
  const endTimeMs = nanosToMs(pick(obj, 'end_time_unix_nano'))
  const service = spanResource['service.name']
  return {
    traceId: traceId.toLowerCase(),
    spanId: spanId.toLowerCase(),
    ...(typeof parent === 'string' && parent !== '' && !/^0+$/.test(parent) && { parentSpanId: parent.toLowerCase() }),
    name,
    kind: kindOf(obj.kind),
    startTimeMs: startTimeMs ?? endTimeMs ?? 0,
    endTimeMs: endTimeMs ?? startTimeMs ?? 0,
    attributes: attributesOf(obj.attributes),
    events: eventsOf(obj.events, startTimeMs ?? 0),
    status: statusOf(obj.status),
    resource: spanResource,
    service: typeof service === 'string' && service !== '' ? service : 'unknown_service',
    ...(scope && { scope }),
    source: 'stdout',
    receivedAt,
  }
}

/** Nanoseconds (a number, or a decimal string as OTLP-JSON writes 64-bit integers) to fractional ms. */
function nanosToMs(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value / 1e6
  if (typeof value === 'string' && /^\d+$/.test(value)) {
    // BigInt keeps the microseconds a double would round away at 1.7e18 ns.
    const nanos = BigInt(value)
    return Number(nanos / 1000n) / 1000
  }
  return undefined
}

const KINDS: readonly SpanKind[] = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer']

/** `"server"`, `"SERVER"`, `"SPAN_KIND_SERVER"`, `"Server"` or OTLP's number 2. */
function kindOf(value: unknown): SpanKind {
  if (typeof value === 'number') return KINDS[value] ?? 'unspecified'
  if (typeof value !== 'string') return 'unspecified'
  const name = value.toLowerCase().replace(/^span_kind_/, '') as SpanKind
  return KINDS.includes(name) ? name : 'unspecified'
}

/** OTLP's `{ code: 2 }`, `{ code: "STATUS_CODE_ERROR" }`, or a bare `"Error"`. */
function statusOf(value: unknown): Span['status'] {
  const codeOf = (code: unknown): StatusCode => {
    if (code === 1) return 'ok'
    if (code === 2) return 'error'
    if (typeof code !== 'string') return 'unset'
    const name = code.toLowerCase().replace(/^status_code_/, '')
    return name === 'ok' || name === 'error' ? name : 'unset'
  }
  if (!isObject(value)) return { code: codeOf(value) }
  const message = value.message ?? value.description
  return { code: codeOf(value.code), ...(typeof message === 'string' && message !== '' && { message }) }
}

/** A map (`{"k": "v"}`) or OTLP's KeyValue list (`[{"key": "k", "value": {"stringValue": "v"}}]`). */
function attributesOf(value: unknown): Attributes {
  const result: Attributes = {}
  if (Array.isArray(value)) {
    for (const kv of value) {
      if (isObject(kv) && typeof kv.key === 'string') result[kv.key] = anyValue(kv.value)
    }
  }
  else if (isObject(value)) {
    for (const [key, item] of Object.entries(value)) result[key] = anyValue(item)
  }
  return result
}

/** OTLP-JSON's `AnyValue` wrappers unwrapped; plain JSON values kept. */
function anyValue(value: unknown): AttributeValue {
  if (!isObject(value)) {
    if (Array.isArray(value)) return value.map(anyValue)
    return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? value : null
  }
  if (typeof value.stringValue === 'string') return value.stringValue
  if (typeof value.boolValue === 'boolean') return value.boolValue
  if (value.intValue !== undefined) return Number(value.intValue)
  if (value.doubleValue !== undefined) return Number(value.doubleValue)
  if (isObject(value.arrayValue)) return Array.isArray(value.arrayValue.values) ? value.arrayValue.values.map(anyValue) : []
  if (isObject(value.kvlistValue)) {
    const nested = attributesOf(value.kvlistValue.values)
    return nested
  }
  if (typeof value.bytesValue === 'string') return value.bytesValue
  // A plain JSON object attribute (upstream's flat shape allows any JSON value).
  const result: Record<string, AttributeValue> = {}
  for (const [k, v] of Object.entries(value)) result[k] = anyValue(v)
  return result
}

/** Event names as strings (upstream's flat shape, timed at the span's start) or event objects. */
function eventsOf(value: unknown, spanStartMs: number): SpanEvent[] {
  if (!Array.isArray(value)) return []
  return value.flatMap((event): SpanEvent[] => {
    if (typeof event === 'string') return [{ name: event, timeMs: spanStartMs, attributes: {} }]
    if (!isObject(event) || typeof event.name !== 'string') return []
    return [{ name: event.name, timeMs: nanosToMs(pick(event, 'time_unix_nano')) ?? spanStartMs, attributes: attributesOf(event.attributes) }]
  })
}
