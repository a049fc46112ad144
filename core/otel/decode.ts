import { createRequire } from 'node:module'
import type { AttributeValue, Attributes, Span, SpanEvent, SpanKind, StatusCode } from './types.ts'

/**
 * Decoding OTLP trace exports (`ExportTraceServiceRequest`) into clnrm's `Span`s. Protobuf goes
 * through protobufjs with the code the OpenTelemetry JS project generated from the official
 * opentelemetry-proto definitions (`@opentelemetry/otlp-transformer`'s generated root); JSON
 * follows the spec's JSON mapping (lowerCamelCase, hex ids, integer enums, 64-bit integers as
 * strings or numbers, unknown fields ignored). Both land in the same loose shape, and one walk
 * turns that into spans, so the two encodings cannot drift apart.
 */

/** A message class of the generated root, as far as clnrm uses it. */
export interface OtlpMessageType {
  decode: (body: Uint8Array) => object
  encode: (message: object) => { finish: () => Uint8Array }
  fromObject: (object: object) => object
}

interface GeneratedRoot {
  opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: OtlpMessageType } } } } }
}

let root: GeneratedRoot | undefined
let requireFromTransformer: NodeJS.Require | undefined

const GENERATED_ROOT = '@opentelemetry/otlp-transformer/build/src/generated/root.js'

/**
 * The `ExportTraceServiceRequest` message type, loaded on first use (half a megabyte of code no
 * plain test needs). `createRequire` because the generated module is CommonJS; Node, Bun and
 * Deno all resolve it from node_modules.
 */
export function exportTraceServiceRequest(): OtlpMessageType {
  root ??= createRequire(import.meta.url)(GENERATED_ROOT) as GeneratedRoot
  return root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest
}

/**
 * A `google.rpc.Status` (code = 1, message = 2) in protobuf, for error replies. Written with the
 * protobufjs the generated root uses, since that root has no Status type.
 */
export function encodeRpcStatus(code: number, message: string): Uint8Array {
  requireFromTransformer ??= createRequire(createRequire(import.meta.url).resolve(GENERATED_ROOT))
  const { Writer } = requireFromTransformer('protobufjs/minimal') as { Writer: { create: () => ProtoWriter } }
  return Writer.create().uint32(8).int32(code).uint32(18).string(message).finish()
}

interface ProtoWriter {
  uint32: (value: number) => ProtoWriter
  int32: (value: number) => ProtoWriter
  string: (value: string) => ProtoWriter
  finish: () => Uint8Array
}

/** The body could not be decoded as an OTLP trace export: the receiver answers 400. */
export class OtlpDecodeError extends Error {
  override name = 'OtlpDecodeError'
  readonly code = 'CLNRM_OTLP_UNDECODABLE'
}

/** Decodes a binary protobuf `ExportTraceServiceRequest`. */
export function decodeOtlpProtobuf(body: Uint8Array, receivedAt: number = performance.now()): Span[] {
  let message: object
  try {
    message = exportTraceServiceRequest().decode(body)
  }
  catch (error) {
    throw new OtlpDecodeError(`not an OTLP protobuf trace export: ${(error as Error).message}`, { cause: error })
  }
  return toSpans(message, receivedAt)
}

/** Decodes an OTLP/JSON `ExportTraceServiceRequest`. */
export function decodeOtlpJson(text: string, receivedAt: number = performance.now()): Span[] {
  let message: unknown
  try {
    message = JSON.parse(text)
  }
  catch (error) {
    throw new OtlpDecodeError(`not JSON: ${(error as Error).message}`, { cause: error })
  }
  if (!message || typeof message !== 'object' || Array.isArray(message)) throw new OtlpDecodeError('an OTLP/JSON trace export is an object with `resourceSpans`')
  return toSpans(message, receivedAt)
}

type Loose = Record<string, unknown>

const KINDS: SpanKind[] = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer']
const STATUS: StatusCode[] = ['unset', 'ok', 'error']

/** The walk shared by both encodings: protobufjs messages and parsed JSON have the same field names. */
function toSpans(message: object, receivedAt: number): Span[] {
  const spans: Span[] = []
  for (const rs of list((message as Loose).resourceSpans)) {
    const resource = attributes((rs.resource as Loose | undefined)?.attributes)
    const service = typeof resource['service.name'] === 'string' && resource['service.name'] ? resource['service.name'] : 'unknown_service'
    for (const ss of list(rs.scopeSpans ?? rs.instrumentationLibrarySpans)) {
      const s = (ss.scope ?? ss.instrumentationLibrary) as Loose | undefined
      const scope = s && typeof s.name === 'string' && s.name ? { name: s.name, ...(typeof s.version === 'string' && s.version ? { version: s.version } : {}) } : undefined
      for (const raw of list(ss.spans)) {
        const traceId = id(raw.traceId, 16, 'traceId')
        const spanId = id(raw.spanId, 8, 'spanId')
        const parent = raw.parentSpanId === undefined || raw.parentSpanId === null ? '' : id(raw.parentSpanId, 8, 'parentSpanId', true)
        const status = (raw.status ?? {}) as Loose
        const statusMessage = typeof status.message === 'string' && status.message ? status.message : undefined
        spans.push({
          traceId,
          spanId,
          ...(parent ? { parentSpanId: parent } : {}),
          name: typeof raw.name === 'string' ? raw.name : '',
          kind: KINDS[enumValue(raw.kind, 'SPAN_KIND_')] ?? 'unspecified',
          startTimeMs: nanosToMs(raw.startTimeUnixNano),
          endTimeMs: nanosToMs(raw.endTimeUnixNano),
          attributes: attributes(raw.attributes),
          events: list(raw.events).map((e): SpanEvent => ({ name: typeof e.name === 'string' ? e.name : '', timeMs: nanosToMs(e.timeUnixNano), attributes: attributes(e.attributes) })),
          status: { code: STATUS[enumValue(status.code, 'STATUS_CODE_')] ?? 'unset', ...(statusMessage ? { message: statusMessage } : {}) },
          resource,
          service,
          ...(scope ? { scope } : {}),
          source: 'otlp',
          receivedAt,
        })
      }
    }
  }
  return spans
}

function list(value: unknown): Loose[] {
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) throw new OtlpDecodeError(`expected a list, got ${typeof value}`)
  return value.filter((v): v is Loose => !!v && typeof v === 'object')
}

/** Integer enums per the spec; the enum's name is tolerated too (`SPAN_KIND_SERVER`). */
function enumValue(value: unknown, prefix: string): number {
  if (typeof value === 'number') return value
  if (typeof value === 'string') {
    if (/^\d+$/.test(value)) return Number(value)
    const name = value.toUpperCase().replace(prefix, '').toLowerCase()
    const index = (prefix === 'SPAN_KIND_' ? KINDS : STATUS).indexOf(name as never)
    return index
  }
  return 0
}

/**
 * Trace and span ids: bytes from protobuf; hex in OTLP/JSON, base64 tolerated (the proto3
 * JSON mapping some SDKs used before the OTLP spec settled on hex). All zeroes or empty is
 * "no id" for a parent.
 */
function id(value: unknown, bytes: number, field: string, optional = false): string {
  let hex: string
  if (value instanceof Uint8Array) hex = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')
  else if (typeof value === 'string') {
    if (value.length === bytes * 2 && /^[0-9a-fA-F]+$/.test(value)) hex = value.toLowerCase()
    else if (value === '') hex = ''
    else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) hex = Buffer.from(value, 'base64').toString('hex')
    else throw new OtlpDecodeError(`${field} "${value}" is neither hex nor base64`)
  }
  else throw new OtlpDecodeError(`${field} is missing or not a string`)
  if (optional && (hex === '' || /^0+$/.test(hex))) return ''
  if (hex.length !== bytes * 2) throw new OtlpDecodeError(`${field} must be ${bytes} bytes, got ${hex.length / 2}`)
  return hex
}

/** fixed64 nanoseconds: a protobufjs Long, a number, or a decimal string (OTLP/JSON). */
function nanosToMs(value: unknown): number {
  if (typeof value === 'number') return value / 1e6
  if (typeof value === 'string') {
    if (!/^\d+$/.test(value)) throw new OtlpDecodeError(`"${value}" is not a count of nanoseconds`)
    // BigInt keeps the nanoseconds exact until the last division.
    const ns = BigInt(value)
    return Number(ns / 1000n) / 1000
  }
  if (value && typeof value === 'object' && 'low' in value && 'high' in value) {
    const { low, high } = value as { low: number; high: number }
    return ((high >>> 0) * 4294967296 + (low >>> 0)) / 1e6
  }
  return 0
}

function attributes(value: unknown): Attributes {
  const out: Attributes = {}
  for (const kv of list(value)) if (typeof kv.key === 'string') out[kv.key] = anyValue(kv.value)
  return out
}

/** `AnyValue`: protobufjs leaves unset oneof members null; JSON omits them. */
function anyValue(value: unknown): AttributeValue {
  if (!value || typeof value !== 'object') return null
  const v = value as Loose
  if (v.stringValue !== undefined && v.stringValue !== null) return String(v.stringValue)
  if (v.boolValue !== undefined && v.boolValue !== null) return Boolean(v.boolValue)
  if (v.intValue !== undefined && v.intValue !== null) return int64(v.intValue)
  if (v.doubleValue !== undefined && v.doubleValue !== null) return Number(v.doubleValue)
  if (v.arrayValue) return list((v.arrayValue as Loose).values).map(anyValue)
  if (v.kvlistValue) return attributes((v.kvlistValue as Loose).values)
  if (v.bytesValue !== undefined && v.bytesValue !== null) return v.bytesValue instanceof Uint8Array ? Buffer.from(v.bytesValue).toString('base64') : String(v.bytesValue)
  return null
}

function int64(value: unknown): number {
  if (typeof value === 'number') return value
  if (typeof value === 'string') return Number(value)
  if (value && typeof value === 'object' && 'low' in value && 'high' in value) {
    const { low, high } = value as { low: number; high: number }
    // Signed: the high word carries the sign.
    return (high | 0) * 4294967296 + (low >>> 0)
  }
  return Number(value)
}
