import { execFileSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { ContainerPool } from '../core/index.ts'
import { leasedSpec } from '../core/otel/collect.ts'
import { useSharedHub } from '../core/otel/hub.ts'
import { startOtlpReceiver } from '../core/otel/receiver.ts'
import type { Span } from '../core/otel/types.ts'
import { spawnCli } from './cli-process.ts'
import { clnrmContainers, IMAGE, run, specFrom } from './engine.ts'
import { openPool, usePool } from './pool-fixture.ts'
import { bun, deno, runCli } from './runtimes/contract.ts'
import { tempDir } from './helpers.ts'

/**
 * A step that posts one OTLP/JSON span, as a service would, to the endpoint clnrm injected:
 * busybox wget, no SDK and no registry image. The span's trace is the runner's (TRACEPARENT)
 * unless TRACE is set, so tests can make attribution rest on the sending container alone.
 */
const postSpan = (name: string, options: { trace?: 'own' | 'runner'; sleep?: number } = {}): string => `
[[steps]]
name = "post ${name}"
service = "box"
run = '''
set -e
${options.sleep ? `sleep ${options.sleep}` : ''}
S=$(date +%s); E=$((S + 1))
${options.trace === 'own' ? 'T=$(head -c16 /dev/urandom | od -An -tx1 | tr -d " \\n"); P=""' : 'T=$(echo "$TRACEPARENT" | cut -d- -f2); P=$(echo "$TRACEPARENT" | cut -d- -f3)'}
ID=$(head -c8 /dev/urandom | od -An -tx1 | tr -d " \\n")
wget -q -O - --header "Content-Type: application/json" --post-data "{\\"resourceSpans\\":[{\\"resource\\":{\\"attributes\\":[{\\"key\\":\\"service.name\\",\\"value\\":{\\"stringValue\\":\\"$OTEL_SERVICE_NAME\\"}}]},\\"scopeSpans\\":[{\\"spans\\":[{\\"traceId\\":\\"$T\\",\\"spanId\\":\\"$ID\\",\\"parentSpanId\\":\\"$P\\",\\"name\\":\\"${name}\\",\\"kind\\":2,\\"startTimeUnixNano\\":\\"\${S}000000000\\",\\"endTimeUnixNano\\":\\"\${E}000000000\\"}]}]}]}" "$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces"
'''
expected_output_regex = "^\\\\{\\\\}$"
timeout = "10s"
`

const inspect = (id: string): { Config: { Env: string[] }; HostConfig: { ExtraHosts: string[] | null }; NetworkSettings: { Networks: Record<string, { Aliases: string[] | null }> } } =>
  JSON.parse(execFileSync('docker', ['inspect', id], { encoding: 'utf8' }))[0]
const containersOf = (service: string): string[] =>
  execFileSync('docker', ['ps', '-q', '--no-trunc', '--filter', `label=clnrm.pid=${process.pid}`, '--filter', `label=clnrm.service=${service}`], { encoding: 'utf8' }).split('\n').filter(Boolean)

describe('spans from real containers', () => {
  let pool: ContainerPool
  let dir: string
  usePool(made => ({ pool, dir } = made))

  it('receives a span a container posts to the injected endpoint, attributed to its run, with the OTel env in the container definition', async () => {
    const spec = specFrom(dir, 'one', `[meta]\nname = "one"\n[services.box]\nimage = "${IMAGE}"\n[[expect.span]]\nname = "upload"\n${postSpan('upload')}`)
    const first = await run(pool, spec)
    expect(first.steps.map(s => [s.status, s.stderr])).toEqual([['pass', '']])
    expect(first.status).toBe('pass')
    expect(first.spans!.failures).toEqual([])
    expect(first.spans!.spans.map(s => [s.name, s.service, s.source])).toEqual([['upload', 'box', 'otlp']])
    expect(first.spans!.spans[0]!.traceId).toMatch(/^[0-9a-f]{32}$/)
    expect(first.timings.settleMs).toBeGreaterThanOrEqual(0)

    const env = inspect(containersOf('box').find(id => inspect(id).Config.Env.some(e => e.startsWith('OTEL_SERVICE_NAME=box')))!)
    expect(env.Config.Env).toEqual(expect.arrayContaining([
      'OTEL_TRACES_EXPORTER=otlp', 'OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf', 'OTEL_SERVICE_NAME=box', 'OTEL_TRACES_SAMPLER=always_on', 'OTEL_BSP_SCHEDULE_DELAY=20',
      expect.stringMatching(/^OTEL_EXPORTER_OTLP_ENDPOINT=http:\/\/host\.docker\.internal:\d+$/),
    ]))
    expect(env.HostConfig.ExtraHosts).toEqual(['host.docker.internal:host-gateway'])
    // Not the default bridge, whose MAC address may change under a container that cached it;
    // and no alias on the shared network, so tests cannot find each other's containers by name.
    const networks = Object.entries(env.NetworkSettings.Networks)
    expect(networks.map(([name]) => name)).toEqual([expect.stringMatching(/^clnrm-/)])
    expect((networks[0]![1].Aliases ?? []).filter(a => a === 'box')).toEqual([])

    // The injected env is stable: the next run reuses the container and sees only its own span.
    const second = await run(pool, spec)
    expect(second.timings.reused).toEqual({ box: true })
    expect(second.spans!.spans).toHaveLength(1)
    expect(second.spans!.spans[0]!.traceId).not.toBe(first.spans!.spans[0]!.traceId)
  })

  it('prewarms the container an OTel test then leases, injected env included (as the dev loop does)', async () => {
    const spec = specFrom(dir, 'warm', `[meta]\nname = "warm"\n[services.box]\nimage = "${IMAGE}"\nenv = { WARM = "1" }\n[[expect.span]]\nname = "upload"\n${postSpan('upload')}`)
    await pool.prewarm([await leasedSpec(spec, pool)])
    const result = await run(pool, spec)
    expect(result.timings.reused).toEqual({ box: true })
    expect(result.status).toBe('pass')
  })

  it('exports clnrm\'s own spans (clnrm.test, clnrm.step:<name>) to a collector the user names, never into the verdict', async () => {
    const collected: Span[] = []
    const collector = await startOtlpReceiver({ onSpans: spans => collected.push(...spans) })
    process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = `${collector.url}/v1/traces`
    try {
      const spec = specFrom(dir, 'own', `[meta]\nname = "own"\n[services.box]\nimage = "${IMAGE}"\n[[expect.span]]\nname = "upload"\n[expect.counts]\nspans_total = { eq = 1 }\n${postSpan('upload')}`)
      const result = await run(pool, spec)
      expect(result.status).toBe('pass')
      expect(result.spans!.spans.map(s => s.name)).toEqual(['upload'])
      await expect.poll(() => collected.map(s => s.name).sort(), { timeout: 5000 }).toEqual(['clnrm.step:post upload', 'clnrm.test'])
      const root = collected.find(s => s.name === 'clnrm.test')!
      // One trace: the service's span hangs under the runner's root (TRACEPARENT), and so do the steps.
      expect(root.traceId).toBe(result.spans!.spans[0]!.traceId)
      expect(result.spans!.spans[0]!.parentSpanId).toBe(root.spanId)
      expect(collected.find(s => s.name.startsWith('clnrm.step:'))!.parentSpanId).toBe(root.spanId)
      expect(root.service).toBe('clnrm')
    }
    finally {
      delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
      await collector.close()
    }
  })

  it('fails the test when a span expectation does not hold', async () => {
    const spec = specFrom(dir, 'missing', `[meta]\nname = "missing"\n[services.box]\nimage = "${IMAGE}"\n[otel]\nsettle_timeout = "500ms"\n[[expect.span]]\nname = "never-sent"\n${postSpan('something-else')}`)
    const result = await run(pool, spec)
    expect(result.steps[0]!.status).toBe('pass')
    expect(result.status).toBe('fail')
    expect(result.spans!.failures.map(f => f.rule)).toEqual([expect.stringContaining('never-sent')])
    expect(result.spans!.spans.map(s => s.name)).toEqual(['something-else'])
  })

  it('two tests at once, in containers of the same definition, never see each other\'s spans', async () => {
    // Own trace ids: attribution rests on which container sent each span, while both run.
    const spec = (name: string): ReturnType<typeof specFrom> => specFrom(dir, name, `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\nenv = { SHARED = "1" }\n[otel]\nquiet_window = "300ms"\n[[expect.span]]\nname = "${name}-*"\n${postSpan(`${name}-1`, { trace: 'own', sleep: 0.2 })}${postSpan(`${name}-2`, { trace: 'own', sleep: 0.3 })}`)
    const [a, b] = await Promise.all([run(pool, spec('left')), run(pool, spec('right'))])
    expect([a.status, b.status]).toEqual(['pass', 'pass'])
    expect(a.spans!.spans.map(s => s.name).sort()).toEqual(['left-1', 'left-2'])
    expect(b.spans!.spans.map(s => s.name).sort()).toEqual(['right-1', 'right-2'])
  })

  it('reaches the receiver from a multi-service test\'s own network', async () => {
    const spec = specFrom(dir, 'multi', `[meta]\nname = "multi"\n[services.box]\nimage = "${IMAGE}"\n[services.peer]\nimage = "${IMAGE}"\n[[expect.span]]\nname = "from-network"\n${postSpan('from-network', { trace: 'own' })}`)
    const result = await run(pool, spec)
    expect(result.status).toBe('pass')
    expect(result.spans!.spans.map(s => [s.name, s.service])).toEqual([['from-network', 'box']])
  })

  it('takes the spans a step prints (exporter = "stdout") into the same verdict, without the receiver\'s env', async () => {
    const spec = specFrom(dir, 'printed', `[meta]\nname = "printed"\n[services.box]\nimage = "${IMAGE}"\n[otel]\nexporter = "stdout"\n[[expect.span]]\nname = "printed.op"\n[[steps]]\nname = "print"\nservice = "box"\nrun = '''echo '{"name":"printed.op","trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","start_time_unix_nano":"1","end_time_unix_nano":"2"}'; env | grep ^OTEL_ | sort'''\nartifacts.collect = ["spans:default"]\n`)
    const result = await run(pool, spec)
    expect(result.status).toBe('pass')
    expect(result.spans!.spans.map(s => [s.name, s.source])).toEqual([['printed.op', 'stdout']])
    expect(result.steps[0]!.stdout).toMatch(/^OTEL_TRACES_EXPORTER=console$/m)
    expect(result.steps[0]!.stdout).not.toMatch(/OTEL_EXPORTER_OTLP_ENDPOINT/)
  })

  it('leaves plain tests untouched, and listens on the docker0 bridge, not every interface', async () => {
    const spec = specFrom(dir, 'plain', `[meta]\nname = "plain"\n[services.plainbox]\nimage = "${IMAGE}"\n[[steps]]\nname = "env"\nrun = "env"\n`)
    const result = await run(pool, spec)
    expect(result.status).toBe('pass')
    expect(result.spans).toBeUndefined()
    expect(result.steps[0]!.stdout).not.toMatch(/OTEL_|TRACEPARENT/)
    const info = inspect(containersOf('plainbox')[0]!)
    expect(info.Config.Env.filter(e => e.startsWith('OTEL_'))).toEqual([])
    expect(info.HostConfig.ExtraHosts).toBeNull()
    expect(Object.keys(info.NetworkSettings.Networks)).toEqual(['bridge'])
    const shared = useSharedHub()
    try {
      const hub = await shared.hub
      const bridge = execFileSync('docker', ['network', 'inspect', 'bridge', '--format', '{{(index .IPAM.Config 0).Gateway}}'], { encoding: 'utf8' }).trim()
      expect(hub.receiver.host).not.toBe('0.0.0.0')
      if (bridge) expect(hub.receiver.host).toBe(bridge)
    }
    finally {
      await shared.release()
    }
  })
})

describe('clnrm run with span expectations (built CLI, real engine)', () => {
  it('receives the spans, reports them in JSON, exits promptly and leaves no container', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      await writeFile(join(dir, 'traced.clnrm.toml'), `[meta]\nname = "traced"\n[services.box]\nimage = "${IMAGE}"\n[[expect.span]]\nname = "upload"\n${postSpan('upload')}`)
      const cli = spawnCli(['run', '.', '--reporter', 'json'], dir)
      const exit = await cli.exited
      expect(exit.code, cli.output()).toBe(0)
      // Generous: it exits instead of hanging on the receiver or a service's connection to it.
      expect(exit.ms).toBeLessThan(30_000)
      const report = JSON.parse(cli.stdout()) as { tests?: Array<{ spans?: { spans: Array<{ name: string }>; failures: unknown[] } }>; files?: unknown }
      expect(JSON.stringify(report)).toMatch(/"name":"upload"/)
      expect(clnrmContainers(cli.pid)).toEqual([])
    }
    finally {
      await cleanup()
    }
  }, 60_000)
})

describe('span expectations under Bun and Deno (built CLI, real engine)', () => {
  it.each([bun, deno])('$name receives the spans a container posts and judges them', async (runtime) => {
    const { dir, cleanup } = await tempDir()
    try {
      await writeFile(join(dir, 'traced.clnrm.toml'), `[meta]\nname = "traced"\n[services.box]\nimage = "${IMAGE}"\n[[expect.span]]\nname = "upload"\n[expect.counts]\nspans_total = { eq = 1 }\n${postSpan('upload')}`)
      const result = await runCli(runtime, ['run', '.', '--reporter', 'json'], dir)
      expect(result.code, result.stderr).toBe(0)
      const test = (JSON.parse(result.stdout) as { tests: Array<{ status: string; spans: { failures: unknown[]; spans: Array<{ name: string; source: string }> } }> }).tests[0]!
      expect(test.status).toBe('pass')
      expect(test.spans.spans.map(s => [s.name, s.source])).toEqual([['upload', 'otlp']])
    }
    finally {
      await cleanup()
    }
  }, 120_000)
})

describe('the receiver\'s lifetime', () => {
  it('starts with the first OTel test and closes with the pool', async () => {
    const { pool, dir, close } = await openPool()
    try {
      const result = await run(pool, specFrom(dir, 'life', `[meta]\nname = "life"\n[services.lifebox]\nimage = "${IMAGE}"\n[[expect.span]]\nname = "upload"\n${postSpan('upload').replace('service = "box"', 'service = "lifebox"')}`))
      expect(result.status).toBe('pass')
      const endpoint = inspect(containersOf('lifebox')[0]!).Config.Env.find(e => e.startsWith('OTEL_EXPORTER_OTLP_ENDPOINT='))!
      const port = Number(endpoint.split(':').at(-1))
      const host = (await import('../core/otel/hub.ts')).receiverHosts(await pool.bridgeGateway())[0]!
      const answers = (): Promise<number> => fetch(`http://${host}:${port}/v1/traces`).then(r => r.status, () => 0)
      expect(await answers()).toBe(405)
      await pool.close()
      expect(await answers()).toBe(0)
    }
    finally {
      await close()
    }
  })
})
