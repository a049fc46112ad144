import { execFileSync } from 'node:child_process'
import { request } from 'node:http'
import { hostname } from 'node:os'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { TestContext } from 'vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDocker, LABELS, probeEngine } from '../core/index.ts'
import type { Capability, EngineConnection, EngineContainer, EngineProbe } from '../core/index.ts'
import Dockerode from 'dockerode'
import { dockerodeAdapter } from '../core/engine/docker-adapter.ts'
import { createDemuxer } from '../core/engine/exec/demux.ts'
import { hostRouteFor } from '../core/engine/host-reach.ts'
import { drain } from '../core/engine/exec/engine-exec.ts'
import { spawnCli } from './cli-process.ts'
import { IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'

/**
 * The engine contract: what clnrm needs of any Docker-API engine, asked through the engine
 * adapter, plus one real `clnrm run` of a two-service test. The main suite runs it against the
 * local engine; scripts/engines.sh runs the same file with only DOCKER_HOST set, against a second
 * dockerd over TCP and against Podman's Docker-compatible API. What the capability probe says an
 * engine cannot do is skipped with the probe's reason, never silently.
 */
const where = process.env.DOCKER_HOST ?? 'the local engine'
/** The official OpenTelemetry JS SDK in a small shop service (scripts/build-otel-image.sh). */
const OTEL_IMAGE = 'clnrm-examples/otel-node:1'
const session = `contract-${process.pid}-${Date.now().toString(36)}`
const labels = { [LABELS.managed]: 'true', [LABELS.pid]: String(process.pid), [LABELS.host]: hostname(), [LABELS.session]: session }

/** The engine's containers carrying this run's session label (through the docker CLI, as a user would look). */
function sessionContainers(): string[] {
  return execFileSync('docker', ['ps', '-aq', '--filter', `label=${LABELS.session}=${session}`], { encoding: 'utf8' }).split('\n').filter(Boolean)
}

async function execText(container: EngineContainer, argv: string[], extra: { Env?: string[]; WorkingDir?: string } = {}): Promise<{ out: string; err: string; exitCode: number | undefined }> {
  const exec = await container.exec({ Cmd: argv, ...extra, AttachStdout: true, AttachStderr: true, Tty: false })
  const stream = await exec.start({ stdin: false })
  const out: Buffer[] = []
  const err: Buffer[] = []
  stream.on('data', createDemuxer((which, chunk) => (which === 'stdout' ? out : err).push(chunk)))
  await drain(stream)
  return { out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString(), exitCode: (await exec.inspect()).exitCode }
}

function httpGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', timeout: 3000 }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString()))
      res.on('end', () => resolve(body))
    })
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.end()
  })
}

/**
 * A `[[steps]]` table that posts one OTLP/JSON span as a service would, with busybox's own wget,
 * to the endpoint clnrm injected ($OTEL_EXPORTER_OTLP_ENDPOINT), in the run's trace (TRACEPARENT).
 */
function postSpanStep(service: string, name: string, spanId: string, parentId?: string): string[] {
  const json = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"$OTEL_SERVICE_NAME"}}]},"scopeSpans":[{"spans":[{"traceId":"$t","spanId":"${spanId}","parentSpanId":"$p","name":"${name}","kind":2,"startTimeUnixNano":"\${s}000000000","endTimeUnixNano":"\${s}001000000"}]}]}]}`
  return [
    '[[steps]]', `name = "${service} posts ${name}"`, `service = "${service}"`,
    'run = \'\'\'',
    's=$(date +%s)',
    't=$(echo "$TRACEPARENT" | cut -d- -f2)',
    parentId ? `p=${parentId}` : 'p=$(echo "$TRACEPARENT" | cut -d- -f3)',
    `wget -qO- --header 'Content-Type: application/json' --post-data "${json.replaceAll('"', '\\"')}" "$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces"`,
    '\'\'\'',
    'timeout = "15s"',
  ]
}

describe(`the engine contract (${where})`, () => {
  let connection: EngineConnection
  let probe: EngineProbe
  const created: EngineContainer[] = []
  const networks: string[] = []

  beforeAll(async () => {
    connection = await connectDocker()
    probe = await probeEngine(connection)
  }, 60_000)
  afterAll(async () => {
    await Promise.allSettled(created.map(c => c.remove()))
    await Promise.allSettled(networks.map(n => connection.engine.removeNetwork(n)))
  })

  /** Skips, saying why, when the probe found the engine without a capability. */
  const requires = (ctx: TestContext, ...caps: Capability[]): void => {
    const missing = caps.filter(c => !probe.capabilities[c].ok)
    if (!missing.length) return
    const reason = `${probe.engine.name} ${probe.engine.version} lacks ${missing.map(c => `${c} (${probe.capabilities[c].detail})`).join(', ')}`
    // Vitest's reporters drop a skip's note: say it where every run shows it.
    console.warn(`[contract] skipped "${ctx.task.name}" on ${where}: ${reason}`)
    ctx.skip(reason)
  }

  const start = async (body: Parameters<EngineConnection['engine']['createContainer']>[0]): Promise<EngineContainer> => {
    const container = await connection.engine.createContainer({ ...body, Labels: { ...labels, ...body.Labels } })
    created.push(container)
    await container.start()
    return container
  }

  it('names the engine and its version, and the probe measured every capability', () => {
    expect(probe.engine.name).toMatch(/^(Docker|Podman)$/)
    expect(probe.engine.version).toMatch(/^\d+\.\d+/)
    expect(probe.image).toBe(IMAGE)
    // Printed so every engine's run shows what it found.
    console.log(`[contract] ${where}: ${probe.engine.name} ${probe.engine.version} (API ${probe.engine.apiVersion}); ${Object.entries(probe.capabilities).map(([c, r]) => `${r.ok ? '✓' : '✗'} ${c}${r.route ? ` (${r.route})` : ''}`).join(', ')}`)
    for (const [cap, result] of Object.entries(probe.capabilities)) expect(result.detail, cap).not.toMatch(/could not run|not measured/)
    // A reachable host names the route clnrm's services will take to it (host-reach.ts).
    const host = probe.capabilities['host-reachable']
    if (host.ok) expect(host.route).toBe(probe.engine.name === 'Podman' ? 'network-gateway' : 'host-gateway')
  })

  it('the pool takes the route to this machine the probe measured (what the OTLP endpoint and the receiver follow)', async (ctx) => {
    requires(ctx, 'host-reachable')
    // Docker is taken at its word on the hot path; any other engine is measured with a container of its own.
    const found = await hostRouteFor(connection.engine)
    expect(found, found.detail).toMatchObject({ ok: true, route: probe.capabilities['host-reachable'].route })
    // A measuring container is removed once measured.
    const services = execFileSync('docker', ['ps', '-a', '--filter', `label=${LABELS.pid}=${process.pid}`, '--format', `{{.Label "${LABELS.service}"}}`], { encoding: 'utf8' })
    expect(services.split('\n').filter(s => s.startsWith('probe'))).toEqual([])
  })

  it('creates, starts, inspects, reads logs, execs with env and workdir, and removes a container', async (ctx) => {
    const container = await start({ Image: IMAGE, Cmd: ['sh', '-c', 'echo started-$MARK; exec sleep 300'], Env: ['MARK=contract'] })
    expect((await container.inspect()).State.Running).toBe(true)
    await expect.poll(async () => {
      const logs: Buffer[] = []
      createDemuxer((_w, chunk) => logs.push(chunk))(await container.logs(10))
      return Buffer.concat(logs).toString()
    }).toContain('started-contract')
    const plain = await execText(container, ['sh', '-c', 'echo out; echo err >&2; exit 3'])
    expect(plain).toEqual({ out: 'out\n', err: 'err\n', exitCode: 3 })
    requires(ctx, 'exec-env', 'exec-workdir')
    expect((await execText(container, ['sh', '-c', 'echo "$STEP $(pwd)"'], { Env: ['STEP=two'], WorkingDir: '/etc' })).out).toBe('two /etc\n')
  })

  it('tells a main process\'s exit when the engine sees it (a held wait): its exit code, at once for one already ended; an ended wait rejects; and counts its processes (this connection\'s adapter and dockerode\'s)', async () => {
    for (const engine of [connection.engine, dockerodeAdapter(new Dockerode())]) {
      const [exiting, running] = await Promise.all([start({ Image: IMAGE, Cmd: ['sh', '-c', 'sleep 0.5; exit 3'] }), start({ Image: IMAGE, Cmd: ['sleep', '300'] })])
      const watching = new AbortController()
      const never = engine.container(running.id).waitNotRunning(watching.signal)
      expect(await engine.container(exiting.id).waitNotRunning(new AbortController().signal)).toBe(3)
      expect((await exiting.inspect()).State).toMatchObject({ Running: false, ExitCode: 3 })
      // Already ended: answered at once, not at the next exit.
      expect(await engine.container(exiting.id).waitNotRunning(new AbortController().signal)).toBe(3)
      watching.abort()
      await expect(never).rejects.toThrow()
      expect((await running.inspect()).State.Running).toBe(true)
      // The kernel's count of its processes: none once ended.
      expect(await engine.container(running.id).processes()).toBeGreaterThanOrEqual(1)
      expect(await engine.container(exiting.id).processes()).toBe(0)
    }
  })

  it('attaches to an exec with stdin: a shell reads commands and answers', async (ctx) => {
    requires(ctx, 'attach-stdin')
    const container = await start({ Image: IMAGE, Cmd: ['sleep', '300'] })
    const exec = await container.exec({ Cmd: ['sh'], AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false })
    const stream = await exec.start({ stdin: true })
    let text = ''
    stream.on('data', createDemuxer((_w, chunk) => (text += chunk.toString())))
    stream.write('echo one\n')
    await expect.poll(() => text).toBe('one\n')
    stream.write('echo two; exit 0\n')
    await expect.poll(() => text).toBe('one\ntwo\n')
    stream.destroy()
  })

  it('creates a labelled network where containers reach each other by alias, lists and removes it', async (ctx) => {
    requires(ctx, 'network-aliases')
    const name = `clnrm-contract-${process.pid}`
    await connection.engine.createNetwork({ Name: name, Labels: labels })
    networks.push(name)
    expect((await connection.engine.listNetworks([`${LABELS.session}=${session}`])).map(n => n.Name)).toEqual([name])
    const server = await start({
      Image: IMAGE, Cmd: ['sh', '-c', 'echo by-alias > /tmp/index.html && exec httpd -f -p 8080 -h /tmp'],
      HostConfig: { NetworkMode: name }, NetworkingConfig: { EndpointsConfig: { [name]: { Aliases: ['web'] } } },
    })
    const client = await start({ Image: IMAGE, Cmd: ['sleep', '300'], HostConfig: { NetworkMode: name }, NetworkingConfig: { EndpointsConfig: { [name]: { Aliases: ['client'] } } } })
    await expect.poll(async () => (await execText(client, ['sh', '-c', 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 2 web 8080'])).out, { timeout: 10_000 }).toContain('by-alias')
    await server.remove()
    await client.remove()
    await connection.engine.removeNetwork(name)
    networks.splice(networks.indexOf(name), 1)
    expect(await connection.engine.listNetworks([`${LABELS.session}=${session}`])).toEqual([])
  })

  it('publishes a port on 127.0.0.1 only, reachable from this machine', async (ctx) => {
    requires(ctx, 'published-ports')
    const container = await start({
      Image: IMAGE, Cmd: ['sh', '-c', 'echo published > /tmp/index.html && exec httpd -f -p 8080 -h /tmp'],
      ExposedPorts: { '8080/tcp': {} }, HostConfig: { PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } },
    })
    const bindings = (await container.inspect()).NetworkSettings.Ports?.['8080/tcp'] ?? []
    expect(bindings.map(b => b.HostIp)).toEqual(['127.0.0.1'])
    await expect.poll(() => httpGet(Number(bindings[0]!.HostPort)).catch(() => ''), { timeout: 10_000 }).toContain('published')
  })

  it('lists the containers it manages by label, and none once removed', async () => {
    const one = await start({ Image: IMAGE, Cmd: ['sleep', '300'], Labels: { [LABELS.service]: 'listed' } })
    const listed = await connection.engine.listContainers([`${LABELS.session}=${session}`, `${LABELS.service}=listed`])
    expect(listed.map(c => c.Id)).toEqual([one.id])
    expect(listed[0]!.Labels[LABELS.pid]).toBe(String(process.pid))
    await one.remove()
    expect(await connection.engine.listContainers([`${LABELS.session}=${session}`, `${LABELS.service}=listed`])).toEqual([])
  })

  it('clnrm run: a two-service test (a server with a published port, a client reaching it by name, step env and workdir) passes and leaves nothing behind', async (ctx) => {
    requires(ctx, 'network-aliases', 'published-ports')
    const { dir, cleanup } = await tempDir()
    try {
      await writeFile(join(dir, 'pair.clnrm.toml'), [
        '[meta]', 'name = "pair"',
        '[services.web]', `image = "${IMAGE}"`, 'command = ["sh", "-c", "echo from-web > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]', 'ports = [8080]', 'wait_for = { port = 8080, timeout = "20s" }',
        '[services.client]', `image = "${IMAGE}"`,
        '[[steps]]', 'name = "client reaches web by name"', 'service = "client"', 'run = "printf \'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n\' | nc -w 3 web 8080"', 'expected_output_regex = "from-web"',
        '[[steps]]', 'name = "env and workdir"', 'service = "client"', 'run = "echo \\"$X $(pwd)\\""', 'env = { X = "y" }', 'workdir = "/etc"', 'expected_output_regex = "^y /etc\\n$"',
        '',
      ].join('\n'))
      const run = spawnCli(['run', 'pair.clnrm.toml'], dir)
      const exit = await run.exited
      expect(exit.code, run.output()).toBe(0)
      expect(run.output()).toMatch(/1 passed/)
      expect(execFileSync('docker', ['ps', '-aq', '--filter', `label=clnrm.pid=${run.pid}`], { encoding: 'utf8' }).trim()).toBe('')
      expect(execFileSync('docker', ['network', 'ls', '-q', '--filter', `label=clnrm.pid=${run.pid}`], { encoding: 'utf8' }).trim()).toBe('')
    }
    finally {
      await cleanup()
    }
  }, 120_000)

  it('clnrm run: span expectations pass on spans the services post to the endpoint clnrm injected (a lone service and a two-service test, each on a network of its own)', async (ctx) => {
    requires(ctx, 'host-reachable', 'network-aliases')
    const { dir, cleanup } = await tempDir()
    try {
      // Two files, so the receiver must be reachable from two pool networks (a lone service's and
      // a two-service test's): on Podman each has a gateway of its own.
      await writeFile(join(dir, 'lone.clnrm.toml'), [
        '[meta]', 'name = "lone"',
        '[services.solo]', `image = "${IMAGE}"`,
        ...postSpanStep('solo', 'upload', '7a11000000000001'),
        '[[expect.span]]', 'name = "upload"', 'kind = "server"',
        '[expect.counts]', 'spans_total = { eq = 1 }',
        '',
      ].join('\n'))
      await writeFile(join(dir, 'traced.clnrm.toml'), [
        '[meta]', 'name = "traced pair"',
        '[services.api]', `image = "${IMAGE}"`,
        '[services.worker]', `image = "${IMAGE}"`,
        ...postSpanStep('api', 'checkout', '7a11000000000002'),
        ...postSpanStep('worker', 'charge', '7a11000000000003', '7a11000000000002'),
        '[[expect.span]]', 'name = "checkout"',
        '[[expect.span]]', 'name = "charge"', 'parent = "checkout"',
        '[expect.graph]', 'must_include = [["checkout", "charge"]]',
        '',
      ].join('\n'))
      const run = spawnCli(['run', '.', '--reporter', 'json'], dir)
      const exit = await run.exited
      expect(exit.code, run.output()).toBe(0)
      const report = JSON.parse(run.stdout()) as { tests: Array<{ name: string; status: string; spans?: { failures: unknown[]; spans: Array<{ name: string; service: string }> } }> }
      const seen = Object.fromEntries(report.tests.map(t => [t.name, [t.status, t.spans?.failures, t.spans?.spans.map(s => `${s.service}:${s.name}`).sort()]]))
      expect(seen).toEqual({ 'lone': ['pass', [], ['solo:upload']], 'traced pair': ['pass', [], ['api:checkout', 'worker:charge']] })
      expect(execFileSync('docker', ['ps', '-aq', '--filter', `label=clnrm.pid=${run.pid}`], { encoding: 'utf8' }).trim()).toBe('')
      expect(execFileSync('docker', ['network', 'ls', '-q', '--filter', `label=clnrm.pid=${run.pid}`], { encoding: 'utf8' }).trim()).toBe('')
    }
    finally {
      await cleanup()
    }
  }, 120_000)

  it('clnrm run: the official OpenTelemetry JS SDK exports its spans (OTLP/protobuf) to the endpoint clnrm injected, and they are judged', async (ctx) => {
    requires(ctx, 'host-reachable', 'published-ports')
    if (!await connection.engine.imageId(OTEL_IMAGE)) {
      const reason = `${OTEL_IMAGE} is not on the engine (scripts/build-otel-image.sh builds it; scripts/engines.sh loads it)`
      console.warn(`[contract] skipped "${ctx.task.name}" on ${where}: ${reason}`)
      ctx.skip(reason)
    }
    const { dir, cleanup } = await tempDir()
    try {
      await writeFile(join(dir, 'shop.clnrm.toml'), [
        '[meta]', 'name = "shop"',
        '[services.shop]', `image = "${OTEL_IMAGE}"`, 'wait_for = "listening on"',
        '[[steps]]', 'name = "checkout"', 'run = "wget -qO- \'http://127.0.0.1:8080/checkout?amount=42\'"', 'expected_output_regex = "paid"',
        // The SDK exports in batches every 20 ms: wait a little longer than the default for the last.
        '[otel]', 'quiet_window = "300ms"',
        '[[expect.span]]', 'name = "checkout.charge"', 'parent = "checkout"', 'events.all = ["charge.requested", "charge.succeeded"]',
        '[expect.counts]', 'spans_total = { eq = 4 }',
        '',
      ].join('\n'))
      const run = spawnCli(['run', '.'], dir)
      const exit = await run.exited
      expect(exit.code, run.output()).toBe(0)
      expect(run.output()).toMatch(/2 span rules held over 4 spans/)
      expect(execFileSync('docker', ['ps', '-aq', '--filter', `label=clnrm.pid=${run.pid}`], { encoding: 'utf8' }).trim()).toBe('')
    }
    finally {
      await cleanup()
    }
  }, 120_000)

  afterAll(async () => {
    await Promise.allSettled(created.map(c => c.remove()))
    expect(sessionContainers()).toEqual([])
  })
})
