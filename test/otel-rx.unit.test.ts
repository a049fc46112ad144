import { execFile } from 'node:child_process'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportTraceServiceRequest } from '../core/otel/decode.ts'
import { OtelHub, receiverHosts } from '../core/otel/hub.ts'
import { otelServiceEnv, wantsOtel, withOtelEnv, DEFAULT_OTEL } from '../core/otel/inject.ts'
import type { OtlpReceiver } from '../core/otel/receiver.ts'
import { startOtlpReceiver } from '../core/otel/receiver.ts'
import type { Span, SpanExpectations } from '../core/otel/types.ts'
import type { TestSpec } from '../core/format/spec.ts'

const exec = promisify(execFile)
const root = resolve(import.meta.dirname, '..')

const TRACE = '5b8efff798038103d269b633813fc60c'
const SPAN = 'eee19b7ec3c1b174'
const PARENT = 'eee19b7ec3c1b173'
const hexBytes = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex, 'hex'))

/** An export encoded with the generated code of the official protos (what the OTel SDKs send). */
function protobufExport(name = 'GET /items', traceId = TRACE): Uint8Array {
  const type = exportTraceServiceRequest()
  return type.encode(type.fromObject({
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'api' } }, { key: 'host.cores', value: { intValue: 8 } }] },
      scopeSpans: [{
        scope: { name: '@opentelemetry/instrumentation-http', version: '0.1.0' },
        spans: [{
          traceId: hexBytes(traceId), spanId: hexBytes(SPAN), parentSpanId: hexBytes(PARENT), name, kind: 2,
          startTimeUnixNano: '1764237600123456789', endTimeUnixNano: '1764237600223456789',
          attributes: [
            { key: 'http.response.status_code', value: { intValue: 200 } },
            { key: 'ok', value: { boolValue: true } },
            { key: 'ratio', value: { doubleValue: 0.5 } },
            { key: 'tags', value: { arrayValue: { values: [{ stringValue: 'a' }, { intValue: 2 }] } } },
            { key: 'nested', value: { kvlistValue: { values: [{ key: 'k', value: { stringValue: 'v' } }] } } },
          ],
          events: [{ name: 'cache.miss', timeUnixNano: '1764237600150000000', attributes: [{ key: 'key', value: { stringValue: 'items' } }] }],
          status: { code: 2, message: 'boom' },
        }, {
          traceId: hexBytes(traceId), spanId: hexBytes(PARENT), name: 'root', kind: 1,
          startTimeUnixNano: '1764237600100000000', endTimeUnixNano: '1764237600300000000',
        }],
      }],
    }],
  })).finish()
}

/** OTLP/JSON written by hand per the spec: hex ids, string int64s, integer enums, unknown fields. */
function jsonExport(ids: 'hex' | 'base64' = 'hex'): string {
  const id = (hex: string): string => (ids === 'hex' ? hex : Buffer.from(hex, 'hex').toString('base64'))
  return JSON.stringify({
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'worker' } }], droppedAttributesCount: 0 },
      schemaUrl: 'https://opentelemetry.io/schemas/1.24.0',
      scopeSpans: [{
        scope: { name: 'manual' },
        spans: [{
          traceId: id(TRACE), spanId: id(SPAN), parentSpanId: '', name: 'job.run', kind: 5,
          startTimeUnixNano: '1764237600000000001', endTimeUnixNano: 1764237600500000000,
          attributes: [{ key: 'retries', value: { intValue: '3' } }, { key: 'big', value: { intValue: '9007199254740993' } }],
          status: { code: 1 }, flags: 257, someFutureField: { x: 1 },
        }],
      }],
    }],
  })
}

async function post(url: string, body: Uint8Array | string, headers: Record<string, string>): Promise<{ status: number; type: string | null; body: Buffer }> {
  const res = await fetch(`${url}/v1/traces`, { method: 'POST', headers, body })
  return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) }
}

describe('the OTLP/HTTP receiver', () => {
  let receiver: OtlpReceiver
  const received: Array<{ spans: Span[]; peer: string }> = []
  beforeAll(async () => {
    receiver = await startOtlpReceiver({ maxBodyBytes: 64 * 1024, onSpans: (spans, peer) => received.push({ spans, peer }) })
  })
  afterAll(() => receiver.close())
  const last = (): Span[] => received.at(-1)!.spans

  it('decodes binary protobuf into spans, every attribute type included', async () => {
    const res = await post(receiver.url, protobufExport(), { 'content-type': 'application/x-protobuf' })
    expect(res).toMatchObject({ status: 200, type: 'application/x-protobuf' })
    expect(res.body.length).toBe(0)
    const [span, parent] = last()
    expect(span).toMatchObject({
      traceId: TRACE, spanId: SPAN, parentSpanId: PARENT, name: 'GET /items', kind: 'server', service: 'api', source: 'otlp',
      attributes: { 'http.response.status_code': 200, 'ok': true, 'ratio': 0.5, 'tags': ['a', 2], 'nested': { k: 'v' } },
      events: [{ name: 'cache.miss', attributes: { key: 'items' } }],
      status: { code: 'error', message: 'boom' },
      resource: { 'service.name': 'api', 'host.cores': 8 },
      scope: { name: '@opentelemetry/instrumentation-http', version: '0.1.0' },
    })
    expect(span!.startTimeMs).toBeCloseTo(1764237600123.4568, 2)
    expect(span!.endTimeMs - span!.startTimeMs).toBeCloseTo(100, 3)
    expect(span!.events[0]!.timeMs).toBeCloseTo(1764237600150, 3)
    expect(parent).toMatchObject({ name: 'root', kind: 'internal', status: { code: 'unset' } })
    expect(parent!.parentSpanId).toBeUndefined()
    expect(received.at(-1)!.peer).toBe('127.0.0.1')
  })

  it.each(['hex', 'base64'] as const)('decodes OTLP/JSON with %s ids, string and number int64s, and ignores unknown fields', async (ids) => {
    const res = await post(receiver.url, jsonExport(ids), { 'content-type': 'application/json; charset=utf-8' })
    expect(res.status).toBe(200)
    expect(res.type).toBe('application/json')
    expect(JSON.parse(res.body.toString())).toEqual({})
    const [span] = last()
    expect(span).toMatchObject({ traceId: TRACE, spanId: SPAN, name: 'job.run', kind: 'consumer', service: 'worker', status: { code: 'ok' }, attributes: { retries: 3 } })
    expect(span!.parentSpanId).toBeUndefined()
    expect(span!.startTimeMs).toBeCloseTo(1764237600000.000001, 3)
    expect(span!.endTimeMs).toBe(1764237600500)
  })

  it('accepts gzip bodies in both encodings', async () => {
    expect((await post(receiver.url, gzipSync(protobufExport('zipped')), { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' })).status).toBe(200)
    expect(last()[0]!.name).toBe('zipped')
    expect((await post(receiver.url, gzipSync(jsonExport()), { 'content-type': 'application/json', 'content-encoding': 'gzip' })).status).toBe(200)
    expect(last()[0]!.name).toBe('job.run')
  })

  it('answers 400 to undecodable data, with a google.rpc.Status in the request\'s content type', async () => {
    const before = received.length
    const bad = await post(receiver.url, new Uint8Array([0x0a, 0xff, 0xff, 0xff]), { 'content-type': 'application/x-protobuf' })
    expect(bad.status).toBe(400)
    expect(bad.type).toBe('application/x-protobuf')
    // google.rpc.Status: field 1 (code) = 3 INVALID_ARGUMENT, field 2 the message.
    expect([...bad.body.subarray(0, 2)]).toEqual([0x08, 3])
    expect(bad.body.toString('latin1')).toMatch(/not an OTLP protobuf trace export/)
    for (const body of ['{"resourceSpans": [', '[1,2]', '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz!","spanId":"00"}]}]}]}']) {
      const res = await post(receiver.url, body, { 'content-type': 'application/json' })
      expect(res.status).toBe(400)
      expect(JSON.parse(res.body.toString())).toMatchObject({ code: 3, message: expect.any(String) })
    }
    expect((await post(receiver.url, gzipSync('x').subarray(0, 8), { 'content-type': 'application/json', 'content-encoding': 'gzip' })).status).toBe(400)
    expect(received.length).toBe(before)
  })

  it('answers 413 above the body limit, declared, streamed or inflated', async () => {
    const big = new Uint8Array(65 * 1024)
    expect((await post(receiver.url, big, { 'content-type': 'application/x-protobuf' })).status).toBe(413)
    // No content-length: the limit holds while the body streams in.
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new Uint8Array(8 * 1024))
        controller.close()
      },
    })
    const streamed = await fetch(`${receiver.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: stream, duplex: 'half' } as RequestInit)
    expect(streamed.status).toBe(413)
    const bomb = gzipSync(Buffer.alloc(1024 * 1024, ' '))
    expect(bomb.length).toBeLessThan(64 * 1024)
    expect((await post(receiver.url, bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' })).status).toBe(413)
    // Still serving afterwards.
    expect((await post(receiver.url, jsonExport(), { 'content-type': 'application/json' })).status).toBe(200)
  })

  it('refuses other content types (415), methods (405) and paths (404); takes and drops metrics and logs', async () => {
    expect((await post(receiver.url, 'x', { 'content-type': 'text/plain' })).status).toBe(415)
    expect((await fetch(`${receiver.url}/v1/traces`)).status).toBe(405)
    expect((await fetch(`${receiver.url}/v2/other`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(404)
    expect((await fetch(`${receiver.url}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(200)
  })
})

describe('telling runs apart', () => {
  let hub: OtelHub
  beforeAll(async () => {
    hub = await OtelHub.start({ hosts: ['127.0.0.1'] })
  })
  afterAll(() => hub.close())

  const span = (over: Partial<Span>): Span => ({
    traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), name: 's', kind: 'internal', startTimeMs: Date.now(), endTimeMs: Date.now(), attributes: {}, events: [],
    status: { code: 'unset' }, resource: {}, service: 'svc', source: 'otlp', receivedAt: performance.now(), ...over,
  })
  /** Spans as if `peer` had posted them: posting from here would always come from 127.0.0.1 (the real path is in otel-rx.test.ts). */
  const feed = (spans: Span[], peer: string): void => hub.deliver(spans, peer)

  it('gives each span to the run whose container sent it, or whose trace it is; never to another run', () => {
    const a = hub.open({ addresses: ['172.17.0.2'] })
    const b = hub.open({ addresses: ['172.18.0.3', '172.17.0.4'] })
    feed([span({ name: 'from-a' })], '172.17.0.2')
    feed([span({ name: 'from-b' })], '172.17.0.4')
    // B's trace, sent from A's container (a request that carried B's traceparent): B's.
    feed([span({ name: 'b-trace', traceId: b.traceId })], '172.17.0.2')
    // clnrm's own spans, even of a run's trace (a user who points clnrm's exporter here): nobody's.
    feed([span({ name: 'clnrm.test', traceId: a.traceId, scope: { name: 'clnrm' } })], '172.17.0.2')
    // An unknown sender while two runs collect: nobody's.
    feed([span({ name: 'stranger' })], '10.9.9.9')
    expect(a.spans.map(s => s.name)).toEqual(['from-a'])
    expect(b.spans.map(s => s.name)).toEqual(['from-b', 'b-trace'])
    expect(hub.dropped).toBe(2)
    a.close()
    // A's container, now idle: its late spans are nobody's.
    feed([span({ name: 'late-a' })], '172.17.0.2')
    expect(a.spans).toHaveLength(1)
    b.close()
  })

  it('drops a reused container\'s leftovers that ended before the lease began; gives unknown senders to a lone run', () => {
    const run = hub.open({ addresses: ['172.17.0.9'] })
    const cancelled = hub.open({ addresses: [] })
    cancelled.close()
    feed([span({ name: 'leftover', endTimeMs: run.startWallMs - 5 }), span({ name: 'mine' }), span({ name: 'late-of-cancelled-run', traceId: cancelled.traceId })], '172.17.0.9')
    feed([span({ name: 'via-nat' })], '192.168.65.1')
    expect(run.spans.map(s => s.name)).toEqual(['mine', 'via-nat'])
    expect(run.traceparent).toMatch(new RegExp(`^00-${run.traceId}-[0-9a-f]{16}-01$`))
    run.close()
  })

  it('settles on the quiet window, on expectations that hold, or at the timeout', async () => {
    const run = hub.open({ addresses: ['172.17.0.10'] })
    // Nothing arrives: the quiet window ends it (at least the first span's grace).
    expect(await run.settle({ quietMs: 30, timeoutMs: 5000, firstSpanGraceMs: 0 })).toBeLessThan(2000)
    // A first span later than the quiet window, but within the grace, is waited for.
    setTimeout(() => feed([span({ name: 'slow-first' })], '172.17.0.10'), 80)
    await run.settle({ quietMs: 30, timeoutMs: 5000, firstSpanGraceMs: 1000 })
    expect(run.spans.map(s => s.name)).toEqual(['slow-first'])
    run.spans.length = 0
    // Arrivals keep it open until they stop.
    let n = 0
    const timer = setInterval(() => n < 5 && (n++, feed([span({ name: `tick${n}` })], '172.17.0.10')), 10)
    await run.settle({ quietMs: 40, timeoutMs: 5000 })
    clearInterval(timer)
    expect(run.spans).toHaveLength(5)
    // Expectations holding end it before the quiet window would.
    setTimeout(() => feed([span({ name: 'wanted' })], '172.17.0.10'), 20)
    const waited = await run.settle({ quietMs: 60_000, timeoutMs: 60_000, done: spans => spans.some(s => s.name === 'wanted') })
    expect(waited).toBeLessThan(30_000)
    // Capped by the timeout.
    expect(await run.settle({ quietMs: 60_000, timeoutMs: 30 })).toBeLessThan(30_000)
    run.close()
  })
})

describe('the OTel env of a test\'s services', () => {
  const base: TestSpec = {
    file: '/x.clnrm.toml', name: 'x', services: {
      api: { id: 'api', plugin: 'generic_container', image: 'i', env: { OTEL_BSP_SCHEDULE_DELAY: '7' }, ports: [], volumes: [], reuse: true },
    }, steps: [], determinism: {}, watch: { files: [], modules: [] },
  }
  const expectations: SpanExpectations = { spans: [{ name: 'GET *', source: ['expect', 'span', 0] }], windows: [] }

  it('is injected only into tests with [otel] or span expectations, overridable, and stable', () => {
    expect(wantsOtel(base)).toBe(false)
    const spec: TestSpec = { ...base, expect: expectations }
    expect(wantsOtel(spec)).toBe(true)
    const derived = withOtelEnv(spec, 'http://host.docker.internal:4000')
    expect(derived.services.api!.env).toEqual({
      OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://host.docker.internal:4000', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_SERVICE_NAME: 'api', OTEL_TRACES_SAMPLER: 'always_on', OTEL_BSP_SCHEDULE_DELAY: '7', OTEL_PROPAGATORS: 'tracecontext,baggage',
    })
    expect(derived.services.api!.extraHosts).toEqual(['host.docker.internal:host-gateway'])
    expect(derived.services.api!.privateNetwork).toBe(true)
    // The same objects while nothing changed: the pool's per-definition caches keep hitting.
    expect(withOtelEnv(spec, 'http://host.docker.internal:4000')).toBe(derived)
    expect(base.services.api!.env).toEqual({ OTEL_BSP_SCHEDULE_DELAY: '7' })
  })

  it('follows [otel]: a collector of the user\'s, JSON, a sample ratio, resources and headers', () => {
    const env = otelServiceEnv('db', { ...DEFAULT_OTEL, endpoint: 'http://collector:4318', protocol: 'http/json', sampleRatio: 0.25, resources: { 'deployment.environment': 'test env' }, headers: { 'x-key': 'k' } }, 'http://ignored')
    expect(otelServiceEnv('db', { ...DEFAULT_OTEL, exporter: 'stdout' }, 'http://ignored')).not.toHaveProperty('OTEL_EXPORTER_OTLP_ENDPOINT')
    expect(env).toMatchObject({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=test%20env', OTEL_EXPORTER_OTLP_HEADERS: 'x-key=k' })
  })

  it('asks what the engine\'s route to this machine needs: host-gateway on Docker, nothing on Podman (it names the host itself); a network of the pool\'s either way', () => {
    const spec: TestSpec = { ...base, expect: expectations, services: { api: { ...base.services.api!, extraHosts: ['db.local:10.0.0.5'] }, bare: { ...base.services.api!, id: 'bare' } } }
    const docker = withOtelEnv(spec, 'http://host.docker.internal:4000')
    expect(docker.services.api!.extraHosts).toEqual(['db.local:10.0.0.5', 'host.docker.internal:host-gateway'])
    const podman = withOtelEnv(spec, 'http://host.containers.internal:4000', 'network-gateway')
    expect(podman).not.toBe(docker)
    expect(podman.services.api!.extraHosts).toEqual(['db.local:10.0.0.5'])
    expect(podman.services.bare!.extraHosts).toBeUndefined()
    expect(podman.services.api!.env!.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://host.containers.internal:4000')
    expect([podman.services.api!.privateNetwork, podman.services.bare!.privateNetwork]).toEqual([true, true])
    expect(withOtelEnv(spec, 'http://host.containers.internal:4000', 'network-gateway')).toBe(podman)
  })

  it('on the network-gateway route, holds its port on loopback and answers on each network gateway it is given, on the same port', async () => {
    expect(receiverHosts(undefined, {}, 'network-gateway')).toEqual(['127.0.0.1'])
    expect(receiverHosts(undefined, { CLNRM_OTLP_HOST: '127.0.0.2' }, 'network-gateway')).toEqual(['127.0.0.2'])
    const hub = await OtelHub.start({ hosts: ['127.0.0.1'], route: 'network-gateway' })
    const port = hub.receiver.port
    expect(hub.containerEndpoint).toBe(`http://host.containers.internal:${port}`)
    // 127.0.0.2 and .3 stand in for two networks' gateways (loopback's /8 is this machine's).
    const answers = (host: string): Promise<number> => fetch(`http://${host}:${port}/v1/traces`).then(r => r.status, () => 0)
    expect(await answers('127.0.0.2')).toBe(0)
    await hub.listenOn(['127.0.0.2', '127.0.0.2'])
    await hub.listenOn(['127.0.0.2', '127.0.0.3'])
    expect([await answers('127.0.0.1'), await answers('127.0.0.2'), await answers('127.0.0.3')]).toEqual([405, 405, 405])
    // A gateway that is not this machine's (a remote Podman's network): an error with the receiver's code, each time.
    await expect(hub.listenOn(['192.0.2.1'])).rejects.toMatchObject({ code: 'CLNRM_OTLP_RECEIVER', message: expect.stringContaining(`192.0.2.1:${port}`) })
    await expect(hub.listenOn(['192.0.2.1'])).rejects.toMatchObject({ code: 'CLNRM_OTLP_RECEIVER' })
    const run = hub.open({ addresses: [] })
    const body = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: run.traceId, spanId: '1'.repeat(16), name: 'via-gateway', startTimeUnixNano: '1', endTimeUnixNano: '2' }] }] }] })
    expect((await fetch(`http://127.0.0.3:${port}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status).toBe(200)
    expect(run.spans.map(s => s.name)).toEqual(['via-gateway'])
    run.close()
    await hub.close()
    expect([await answers('127.0.0.1'), await answers('127.0.0.2'), await answers('127.0.0.3')]).toEqual([0, 0, 0])
    // On Docker's route the one address host-gateway resolves to is enough: nothing more listens.
    const docker = await OtelHub.start({ hosts: ['127.0.0.1'] })
    await docker.listenOn(['127.0.0.4'])
    expect(await fetch(`http://127.0.0.4:${docker.receiver.port}/v1/traces`).then(r => r.status, () => 0)).toBe(0)
    expect(docker.containerEndpoint).toBe(`http://host.docker.internal:${docker.receiver.port}`)
    await docker.close()
  })

  it('listens on the bridge gateway, then loopback; never on every interface', async () => {
    expect(receiverHosts('172.31.0.1', {})).toEqual(expect.arrayContaining(['172.31.0.1', '127.0.0.1']))
    expect(receiverHosts('172.31.0.1', {})).not.toContain('0.0.0.0')
    expect(receiverHosts('172.31.0.1', { CLNRM_OTLP_HOST: '127.0.0.2' })).toEqual(['127.0.0.2'])
    // An address this machine does not have (a remote engine's bridge) falls back to loopback.
    const hub = await OtelHub.start({ hosts: ['192.0.2.1'] })
    expect(hub.receiver.host).toBe('127.0.0.1')
    await hub.close()
  })
})

describe('the receiver on Bun and Deno', () => {
  const script = join(root, 'test/fixtures/otel/receiver-smoke.ts')
  it.each([
    ['bun', [join(root, 'node_modules/.bin/bun'), script]],
    ['deno', [join(root, 'node_modules/.bin/deno'), 'run', '-A', script]],
  ])('starts, decodes protobuf and JSON, and lets the process exit on %s', async (_name, [command, ...args]) => {
    const started = performance.now()
    const { stdout } = await exec(command!, args, { cwd: root, env: { ...process.env, DENO_NO_UPDATE_CHECK: '1' }, timeout: 60_000 })
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { statuses: number[]; names: string[]; traceId: string }
    expect(out.statuses).toEqual([200, 200, 400])
    expect(out.names).toEqual(['GET /items', 'root', 'job.run'])
    expect(out.traceId).toBe(TRACE)
    // Generous: it exits by itself instead of hanging on the server.
    expect(performance.now() - started).toBeLessThan(50_000)
  }, 70_000)
})

