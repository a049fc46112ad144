import { gzipSync } from 'node:zlib'
import { it } from 'vitest'
import { decodeOtlpJson, decodeOtlpProtobuf, exportTraceServiceRequest } from '../core/otel/decode.ts'
import { startOtlpReceiver } from '../core/otel/receiver.ts'
import { record } from './results.ts'

/** Spans per export: the batch size the JS SDK's BatchSpanProcessor sends at most. */
const BATCH = 512
/** Exports sent to the receiver per encoding, and how many at once. */
const EXPORTS = Number(process.env.CLNRM_BENCH_EXPORTS ?? 200)
const IN_FLIGHT = 4

const hex = (n: number, digits: number): string => n.toString(16).padStart(digits, '0')

/**
 * One export as the SDKs send it (OTLP's JSON mapping): a resource, a scope and `BATCH` spans
 * in parent → child chains of four, each with attributes and an event, sized like real spans.
 */
function exportRequest(seed: number): { resourceSpans: unknown[] } {
  const start = BigInt(Date.now()) * 1_000_000n
  const traceId = hex(seed, 32)
  const spans = Array.from({ length: BATCH }, (_, i) => ({
    traceId,
    spanId: hex(seed * BATCH + i + 1, 16),
    ...(i % 4 ? { parentSpanId: hex(seed * BATCH + i, 16) } : {}),
    name: ['checkout', 'checkout.validate', 'checkout.charge', 'db.query'][i % 4],
    kind: 1 + (i % 3),
    startTimeUnixNano: String(start + BigInt(i) * 1000n),
    endTimeUnixNano: String(start + BigInt(i) * 1000n + 5_000_000n),
    attributes: [
      { key: 'http.request.method', value: { stringValue: 'GET' } },
      { key: 'url.path', value: { stringValue: `/checkout/${i}` } },
      { key: 'order.amount', value: { intValue: String(i) } },
      { key: 'cache.hit', value: { boolValue: i % 2 === 0 } },
    ],
    events: [{ timeUnixNano: String(start + BigInt(i) * 1000n + 1000n), name: 'step.done', attributes: [{ key: 'n', value: { intValue: '1' } }] }],
    status: { code: i % 16 === 0 ? 2 : 0 },
  }))
  return {
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'bench' } }, { key: 'telemetry.sdk.language', value: { stringValue: 'nodejs' } }] },
      scopeSpans: [{ scope: { name: 'bench', version: '1.0.0' }, spans }],
    }],
  }
}

/** The protobuf encoding of `exportRequest`: ids as bytes, as the binary format carries them. */
function protobuf(request: { resourceSpans: unknown[] }): Uint8Array {
  const bytes = (id: string): Uint8Array => Buffer.from(id, 'hex')
  const withBytes = JSON.parse(JSON.stringify(request), (key, value: unknown) =>
    (key === 'traceId' || key === 'spanId' || key === 'parentSpanId') && typeof value === 'string' ? bytes(value) : value)
  const type = exportTraceServiceRequest()
  return type.encode(type.fromObject(withBytes as object)).finish()
}

/** Calls `fn` repeatedly for about `ms` and returns the calls per second. */
function rate(fn: () => void, ms = 1000): number {
  for (let i = 0; i < 3; i++) fn()
  let calls = 0
  const start = performance.now()
  while (performance.now() - start < ms) {
    fn()
    calls++
  }
  return calls / ((performance.now() - start) / 1000)
}

it(`OTLP receiver throughput: ${EXPORTS} exports of ${BATCH} spans per encoding over HTTP (protobuf, gzipped protobuf, JSON), and decoding alone`, async () => {
  const request = exportRequest(1)
  const binary = protobuf(request)
  // What SDKs send: binary protobuf, the same gzipped (OTEL_EXPORTER_OTLP_COMPRESSION=gzip), JSON.
  const bodies = { 'protobuf': binary, 'protobuf+gzip': gzipSync(binary), 'json': new TextEncoder().encode(JSON.stringify(request)) }
  const headers: Record<keyof typeof bodies, Record<string, string>> = {
    'protobuf': { 'content-type': 'application/x-protobuf' },
    'protobuf+gzip': { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' },
    'json': { 'content-type': 'application/json' },
  }
  if (decodeOtlpProtobuf(binary).length !== BATCH || decodeOtlpJson(JSON.stringify(request)).length !== BATCH) throw new Error('the bench export does not decode to its spans')

  let received = 0
  const receiver = await startOtlpReceiver({ onSpans: (spans) => void (received += spans.length) })
  const overHttp: Record<string, number> = {}
  try {
    for (const encoding of ['protobuf', 'protobuf+gzip', 'json'] as const) {
      /** Sends `count` exports, `IN_FLIGHT` at a time, and returns the seconds it took. */
      const blast = async (count: number): Promise<number> => {
        let next = 0
        const send = async (): Promise<void> => {
          while (next++ < count) {
            const response = await fetch(`${receiver.url}/v1/traces`, { method: 'POST', headers: headers[encoding], body: bodies[encoding] })
            await response.arrayBuffer()
            if (!response.ok) throw new Error(`the receiver answered ${response.status} to a ${encoding} export`)
          }
        }
        const start = performance.now()
        await Promise.all(Array.from({ length: IN_FLIGHT }, send))
        return (performance.now() - start) / 1000
      }
      // Warm the JIT and the connections first; only the second round is measured.
      await blast(20)
      received = 0
      const seconds = await blast(EXPORTS)
      if (received !== EXPORTS * BATCH) throw new Error(`sent ${EXPORTS * BATCH} ${encoding} spans, the receiver decoded ${received}`)
      overHttp[encoding] = Math.round(received / seconds)
    }
  }
  finally {
    await receiver.close()
  }
  const decodeProtobuf = Math.round(rate(() => decodeOtlpProtobuf(binary)) * BATCH)
  const text = JSON.stringify(request)
  const decodeJson = Math.round(rate(() => decodeOtlpJson(text)) * BATCH)
  const e = 'OTLP receiver'
  console.log(`\n  export of ${BATCH} spans: ${binary.length} bytes protobuf (${bodies['protobuf+gzip'].length} gzipped), ${bodies.json.length} bytes JSON`)
  record({
    [`${e} › spans decoded per second over HTTP › protobuf`]: { value: overHttp.protobuf!, unit: 'spans/s', better: 'higher' },
    [`${e} › spans decoded per second over HTTP › protobuf, gzip`]: { value: overHttp['protobuf+gzip']!, unit: 'spans/s', better: 'higher' },
    [`${e} › spans decoded per second over HTTP › json`]: { value: overHttp.json!, unit: 'spans/s', better: 'higher' },
    [`${e} › spans decoded per second, decoding alone › protobuf`]: { value: decodeProtobuf, unit: 'spans/s', better: 'higher' },
    [`${e} › spans decoded per second, decoding alone › json`]: { value: decodeJson, unit: 'spans/s', better: 'higher' },
  })
})
