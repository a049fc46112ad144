import { parse } from 'smol-toml'
import { describe, expect, it } from 'vitest'
import { formatTestFile } from '../core/index.ts'
import { normalizeTestFile } from '../core/format/normalize.ts'

// What `[otel]`, the expect.* tables and artifacts.collect normalize into (their located type
// errors are checked by the invalid fixtures and test/format-cli.test.ts).

const HEAD = '[meta]\nname = "t"\n[services.api]\nimage = "busybox:1.36"\n[[steps]]\nrun = "true"\n'
const load = (toml: string) => normalizeTestFile(parse(HEAD + toml) as Record<string, unknown>, { file: '/p/t.clnrm.toml', root: '/p' })

describe('[otel] and expect.* normalized', () => {
  it('no table, no otel: a plain test is untouched', () => {
    const { spec } = load('')
    expect(spec!.otel).toBeUndefined()
    expect(spec!.expect).toBeUndefined()
    expect(spec!.steps[0]!.collectSpans).toBe(false)
  })

  it('an expect.* table alone turns OpenTelemetry on, with the defaults', () => {
    const { spec } = load('[[expect.span]]\nname = "a"\n')
    expect(spec!.otel).toEqual({ exporter: 'otlp', protocol: 'http/protobuf', sampleRatio: 1, resources: {}, headers: {}, propagators: ['tracecontext', 'baggage'], settleTimeoutMs: 2000, quietWindowMs: 50 })
    expect(spec!.expect).toEqual({ spans: [{ name: 'a', source: ['expect', 'span', 0] }], windows: [] })
  })

  it('[otel] keys, with upstream\'s spellings: propagators.use, resources with dotted keys', () => {
    const { spec } = load('[otel]\nendpoint = "http://collector:4318"\nprotocol = "http/json"\nsample_ratio = 0.25\nresources = { service.name = "shop", "env" = "ci" }\nsettle_timeout = "5s"\nquiet_window = "100ms"\n[otel.headers]\nAuthorization = "Bearer t"\n[otel.propagators]\nuse = ["b3"]\n')
    expect(spec!.otel).toEqual({ exporter: 'otlp', endpoint: 'http://collector:4318', protocol: 'http/json', sampleRatio: 0.25, resources: { 'service.name': 'shop', env: 'ci' }, headers: { Authorization: 'Bearer t' }, propagators: ['b3'], settleTimeoutMs: 5000, quietWindowMs: 100 })
    expect(spec!.expect).toBeUndefined()
  })

  it('attrs: bare dotted keys, quoted keys and "key=value" lists mean the same; values become strings', () => {
    const bare = load('[[expect.span]]\nname = "a"\nattrs.all = { http.request.method = "GET", http.response.status_code = 200, ok = true }\n')
    const quoted = load('[[expect.span]]\nname = "a"\nattrs.all = { "http.request.method" = "GET", "http.response.status_code" = "200", "ok" = "true" }\n')
    const list = load('[[expect.span]]\nname = "a"\nattrs.all = ["http.request.method=GET", "http.response.status_code=200", "ok=true"]\n')
    const sub = load('[[expect.span]]\nname = "a"\n[expect.span.attrs]\nall = { "http.request.method" = "GET", "http.response.status_code" = 200, "ok" = true }\n')
    const expected = { 'http.request.method': 'GET', 'http.response.status_code': '200', ok: 'true' }
    for (const { spec } of [bare, quoted, list, sub]) expect(spec!.expect!.spans[0]!.attrsAll).toEqual(expected)
  })

  it('kind and statuses in any case, as upstream reads them', () => {
    const { spec } = load('[[expect.span]]\nname = "a"\nkind = "SERVER"\nstatus = "ERROR"\n[expect.status]\nall = "Ok"\n')
    expect(spec!.expect!.spans[0]).toMatchObject({ kind: 'server', status: 'error' })
    expect(spec!.expect!.status!.all).toBe('ok')
  })

  it('fmt orders the keys of [otel] and the expect tables as the format lists them', () => {
    const result = formatTestFile(`${HEAD}[otel]\nsettle_timeout = "3s"\nexporter = "otlp"\n[[expect.span]]\nduration_ms = { max = 2 }\nkind = "server"\nname = "a"\n[[expect.window]]\ncontains = ["b"]\nouter = "a"\n[expect.hermeticity]\nspan_attrs.forbid_keys = ["x"]\nno_external_services = true\n`)
    expect('output' in result && result.output).toBe(`${HEAD}[otel]\nexporter = "otlp"\nsettle_timeout = "3s"\n[[expect.span]]\nname = "a"\nkind = "server"\nduration_ms = { max = 2 }\n[[expect.window]]\nouter = "a"\ncontains = ["b"]\n[expect.hermeticity]\nno_external_services = true\nspan_attrs.forbid_keys = ["x"]\n`)
  })

  it('every table, as upstream\'s red-team files write them', () => {
    const { spec, diagnostics } = load(`[[expect.span]]
name = "clnrm.step:hello_world"
parent = "clnrm.run"
kind = "internal"
attrs.any = ["step.name=hello_world", "status=ok"]
events.any = ["container.start", "container.exec"]
duration_ms = { min = 1, max = 120000 }
[expect.graph]
must_include = [["clnrm.run", "clnrm.step:hello_world"]]
must_not_cross = [["clnrm.step:hello_world", "clnrm.plugin.registry"]]
acyclic = true
[expect.counts]
spans_total = { gte = 2, lte = 200 }
errors_total = { eq = 0 }
by_name = { "clnrm.run" = { eq = 1 } }
[[expect.window]]
outer = "clnrm.run"
contains = ["clnrm.step:hello_world"]
[expect.order]
must_precede = [["clnrm.plugin.registry", "clnrm.step:hello_world"]]
[expect.status]
all = "OK"
by_name = { "clnrm.*" = "ok" }
[expect.hermeticity]
no_external_services = true
resource_attrs.must_match = { "service.name" = "clnrm", "env" = "ci" }
span_attrs.forbid_keys = ["net.peer.name"]
`)
    expect(diagnostics.filter(d => d.severity === 'error')).toEqual([])
    const e = spec!.expect!
    expect(e.spans[0]).toMatchObject({ parent: 'clnrm.run', kind: 'internal', attrsAny: { 'step.name': 'hello_world', status: 'ok' }, eventsAny: ['container.start', 'container.exec'], durationMs: { min: 1, max: 120000 } })
    expect(e.graph).toEqual({ mustInclude: [['clnrm.run', 'clnrm.step:hello_world']], mustNotCross: [['clnrm.step:hello_world', 'clnrm.plugin.registry']], acyclic: true, source: ['expect', 'graph'] })
    expect(e.counts).toEqual({ spansTotal: { gte: 2, lte: 200 }, errorsTotal: { eq: 0 }, byName: { 'clnrm.run': { eq: 1 } }, source: ['expect', 'counts'] })
    expect(e.windows).toEqual([{ outer: 'clnrm.run', contains: ['clnrm.step:hello_world'], source: ['expect', 'window', 0] }])
    expect(e.order).toEqual({ mustPrecede: [['clnrm.plugin.registry', 'clnrm.step:hello_world']], mustFollow: [], source: ['expect', 'order'] })
    expect(e.status).toEqual({ all: 'ok', byName: { 'clnrm.*': 'ok' }, source: ['expect', 'status'] })
    expect(e.hermeticity).toEqual({ noExternalServices: true, resourceAttrsMustMatch: { 'service.name': 'clnrm', env: 'ci' }, spanAttrsForbidKeys: ['net.peer.name'], internalHosts: ['api'], source: ['expect', 'hermeticity'] })
  })

  it('artifacts.collect spans on a step, and on a scenario for each of its nested steps', () => {
    const { spec } = load('[[scenario]]\nname = "sc"\nartifacts.collect = ["spans:default"]\n[[scenario.steps]]\nrun = "a"\n[[scenario.steps]]\nrun = "b"\n[[scenario]]\nname = "own"\nrun = "c"\nartifacts.collect = ["spans"]\n')
    expect(spec!.steps.map(s => [s.name, s.collectSpans])).toEqual([['step 1', false], ['sc › step 1', true], ['sc › step 2', true], ['own', true]])
  })

  it('exporter = "stdout" with a collecting step is valid; without one it is an error', () => {
    expect(load('[otel]\nexporter = "stdout"\n').spec).toBeUndefined()
    const { spec } = load('[otel]\nexporter = "stdout"\n[[scenario]]\nname = "s"\nrun = "true"\nartifacts.collect = ["spans:default"]\n')
    expect(spec!.otel!.exporter).toBe('stdout')
    expect(load('[otel]\nexporter = "stdout"\nendpoint = "http://x:4318"\n').diagnostics.map(d => d.code)).toContain('CLNRM_CONFLICTING_KEYS')
    expect(load('[otel]\nsettle_timeout = "40ms"\n').diagnostics.map(d => d.code)).toContain('CLNRM_INVALID_VALUE')
  })
})
