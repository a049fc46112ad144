import { randomBytes } from 'node:crypto'
import { exportTraceServiceRequest } from './decode.ts'

/** The instrumentation scope of clnrm's own spans: the receiver never lets them count. */
export const CLNRM_SCOPE = 'clnrm'

/** One of clnrm's own spans (`clnrm.test`, `clnrm.step:<name>`), in wall-clock milliseconds. */
export interface OwnSpan {
  name: string
  spanId: string
  parentSpanId?: string
  startMs: number
  endMs: number
  attributes: Record<string, string | number | boolean>
  error?: boolean
}

/**
 * Where clnrm exports its own spans: the collector named by clnrm's own environment
 * (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`), or
 * undefined (the default: clnrm exports nothing of its own).
 */
export function ownSpansEndpoint(env: Record<string, string | undefined> = process.env): string | undefined {
  if (env.OTEL_TRACES_EXPORTER === 'none') return undefined
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) return `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`
  return undefined
}

/** A fresh span id (16 hex digits). */
export const newSpanId = (): string => randomBytes(8).toString('hex')

const nanos = (ms: number): string => (BigInt(Math.round(ms * 1000)) * 1000n).toString()
const hexBytes = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex, 'hex'))

/**
 * Sends one run's own spans (one trace) to `endpoint` as OTLP protobuf. Best effort: a
 * collector that is away costs at most `timeoutMs` and is never an error of the test. These
 * spans never reach an expectation: they go to the user's collector, and clnrm's receiver drops
 * spans of the `clnrm` scope.
 */
export async function exportOwnSpans(endpoint: string, traceId: string, spans: OwnSpan[], options: { timeoutMs?: number } = {}): Promise<boolean> {
  const type = exportTraceServiceRequest()
  const body = type.encode(type.fromObject({
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'clnrm' } }] },
      scopeSpans: [{
        scope: { name: CLNRM_SCOPE },
        spans: spans.map(span => ({
          traceId: hexBytes(traceId),
          spanId: hexBytes(span.spanId),
          ...(span.parentSpanId ? { parentSpanId: hexBytes(span.parentSpanId) } : {}),
          name: span.name,
          kind: 1,
          startTimeUnixNano: nanos(span.startMs),
          endTimeUnixNano: nanos(span.endMs),
          attributes: Object.entries(span.attributes).map(([key, value]) => ({
            key,
            value: typeof value === 'string' ? { stringValue: value } : typeof value === 'boolean' ? { boolValue: value } : Number.isInteger(value) ? { intValue: value } : { doubleValue: value },
          })),
          status: { code: span.error ? 2 : 1 },
        })),
      }],
    }],
  })).finish()
  try {
    const res = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body, signal: AbortSignal.timeout(options.timeoutMs ?? 2000) })
    await res.arrayBuffer()
    return res.ok
  }
  catch {
    return false
  }
}
