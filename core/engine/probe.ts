import { randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { hostname } from 'node:os'
import type { EngineAdapter, EngineContainer, EngineVersion } from './adapter.ts'
import type { EngineConnection, EngineSource } from './docker.ts'
import { createDemuxer } from './exec/demux.ts'
import { drain } from './exec/engine-exec.ts'
import { execOnce as run } from './exec/exec-once.ts'
import type { HostRoute } from './host-reach.ts'
import { HOST_ROUTES, measureHostReach, PROBE_IMAGES } from './host-reach.ts'
import type { Capability } from './exec/strategy.ts'
import { CAPABILITIES, forcedCapabilities } from './exec/strategy.ts'
import { LABELS } from './pool-types.ts'

/** One capability as measured: whether it works, and what was seen. */
export interface CapabilityResult {
  ok: boolean
  /** What the probe saw (the engine's words, the output it got) or why it could not tell. */
  detail: string
  /** Set when `CLNRM_ENGINE_CAPS` forced the value instead of the measurement. */
  forced?: boolean
  /** `host-reachable` only: the route that reached this machine (see host-reach.ts). */
  route?: HostRoute
}

/** What the capability probe found on one engine. */
export interface EngineProbe {
  engine: EngineVersion
  source: EngineSource
  /** The image the probe container ran. */
  image: string | undefined
  capabilities: Record<Capability, CapabilityResult>
  ms: number
}

/** What each capability means for the user, and what clnrm does without it (for `clnrm doctor` and docs/engines.md). */
export const CAPABILITY_MEANING: Readonly<Record<Capability, { what: string; without: string }>> = {
  'attach-stdin': { what: 'a long-lived shell per container: a step costs a write and a read (about 2 ms)', without: 'one exec per step (tens of ms each); a timeout stops the whole container' },
  'exec-env': { what: 'step env is passed through the exec API', without: 'clnrm exports the env inside the command (sh -c \'export …; exec "$@"\')' },
  'exec-workdir': { what: 'step workdir is set through the exec API', without: 'clnrm changes directory inside the command (sh -c \'cd …\')' },
  'network-aliases': { what: 'services of one test reach each other by name on their own network', without: 'multi-service tests cannot address each other by service name' },
  'published-ports': { what: 'service ports are published on 127.0.0.1 and reachable from this machine', without: 'steps on this machine cannot reach services ({{ port }} variables do not answer)' },
  'host-reachable': { what: 'containers reach this machine (Docker: host.docker.internal via host-gateway; Podman: host.containers.internal, its network\'s gateway): the OTLP receiver gets spans', without: 'span expectations need [otel] endpoint pointing at a collector the containers can reach' },
}

const PROBE_PORT = 7070
const ALIAS = 'clnrm-probe'

const probes = new WeakMap<EngineAdapter, Promise<EngineProbe>>()

/**
 * Measures what the engine can do, once per engine per process: one throwaway container (a
 * busybox image that is already local; nothing is pulled) on a network of its own, published on
 * 127.0.0.1, with `host.docker.internal` mapped to host-gateway (and, on Podman, its own
 * `host.containers.internal`). About a second on a local engine.
 * `CLNRM_ENGINE_CAPS` overrides the measurement (marked `forced`). Everything it creates is removed
 * (and labelled like the pool's, so an interrupted probe is cleaned up as an orphan).
 */
export function probeEngine(connection: EngineConnection): Promise<EngineProbe> {
  let probe = probes.get(connection.engine)
  if (!probe) {
    probe = runProbe(connection)
    probes.set(connection.engine, probe)
    probe.catch(() => probes.delete(connection.engine))
  }
  return probe
}

async function runProbe({ engine, source }: EngineConnection): Promise<EngineProbe> {
  const start = performance.now()
  const version = await engine.version()
  let image: string | undefined
  for (const candidate of PROBE_IMAGES) {
    if (await engine.imageId(candidate)) {
      image = candidate
      break
    }
  }
  const unknown = (detail: string): CapabilityResult => ({ ok: false, detail })
  let capabilities: Record<Capability, CapabilityResult>
  if (!image) {
    const none = unknown(`not measured: no busybox image on the engine (${PROBE_IMAGES.join(', ')}); load one, e.g. docker load`)
    capabilities = Object.fromEntries(CAPABILITIES.map(c => [c, none])) as Record<Capability, CapabilityResult>
  }
  else {
    capabilities = await measure(engine, image)
  }
  for (const [name, on] of Object.entries(forcedCapabilities())) {
    const was = capabilities[name as Capability]
    capabilities[name as Capability] = { ok: on, detail: `forced by CLNRM_ENGINE_CAPS (measured: ${was.ok ? 'yes' : 'no'}, ${was.detail})`, forced: true }
  }
  return { engine: version, source, image, capabilities, ms: performance.now() - start }
}

// Names are resolved by busybox's own tools (nslookup, /etc/hosts), then reached by address: a
// glibc-static busybox's wget crashes (Debian's, even on an address), so nc speaks the HTTP.
async function measure(engine: EngineAdapter, image: string): Promise<Record<Capability, CapabilityResult>> {
  const id = randomBytes(4).toString('hex')
  const labels = { [LABELS.managed]: 'true', [LABELS.pid]: String(process.pid), [LABELS.host]: hostname(), [LABELS.service]: 'probe' }
  const network = `clnrm-probe-${id}`
  let container: EngineContainer | undefined
  let peer: EngineContainer | undefined
  let networkMade = false
  try {
    await engine.createNetwork({ Name: network, Labels: labels })
    networkMade = true
    container = await engine.createContainer({
      Image: image,
      Entrypoint: ['sh', '-c'],
      Cmd: [`echo clnrm-port > /tmp/index.html && exec httpd -f -p ${PROBE_PORT} -h /tmp`],
      Labels: labels,
      ExposedPorts: { [`${PROBE_PORT}/tcp`]: {} },
      HostConfig: {
        PortBindings: { [`${PROBE_PORT}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: '' }] },
        NetworkMode: network,
        ExtraHosts: [...HOST_ROUTES['host-gateway'].extraHosts],
        // As the pool's containers: an engine without an init binary (Podman without catatonit) says so here.
        Init: true,
      },
      NetworkingConfig: { EndpointsConfig: { [network]: { Aliases: [ALIAS] } } },
    })
    await container.start()
    // A second container on the network: an alias must answer across the bridge, not only locally.
    peer = await engine.createContainer({
      Image: image, Entrypoint: ['sh', '-c'], Cmd: ['exec sleep 300'], Labels: labels, HostConfig: { NetworkMode: network, Init: true },
      NetworkingConfig: { EndpointsConfig: { [network]: { Aliases: [`${ALIAS}-peer`] } } },
    })
    await peer.start()
    const c = container
    const p = peer
    const [attach, env, workdir, aliases, ports, host] = await Promise.all([
      attachStdin(c),
      run(c, ['sh', '-c', 'printf %s "${CLNRM_PROBE-}"'], { Env: ['CLNRM_PROBE=passed'] })
        .then(r => (r.out === 'passed' ? { ok: true, detail: 'the exec saw its env' } : { ok: false, detail: `the exec did not get its env (saw ${JSON.stringify(r.out)})` })),
      run(c, ['pwd'], { WorkingDir: '/tmp' })
        .then(r => (r.out.trim() === '/tmp' ? { ok: true, detail: 'the exec ran in its working directory' } : { ok: false, detail: `the exec ignored its working directory (ran in ${JSON.stringify(r.out.trim())})` })),
      retry(() => run(p, ['sh', '-c', `ip=$(nslookup ${ALIAS} 2>/dev/null | awk '/^Address/ { a = $NF } END { print a }'); [ -n "$ip" ] || { echo 'no DNS answer for ${ALIAS}' >&2; exit 1; }; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 "$ip" ${PROBE_PORT}`]), r => r.out.includes('clnrm-port'))
        .then(r => (r.out.includes('clnrm-port') ? { ok: true, detail: `a second container reached "${ALIAS}" by name on a network of the probe's own` } : { ok: false, detail: `the alias did not answer: ${(r.err || r.out).trim() || `exit ${r.exitCode}`}` })),
      publishedPort(c),
      measureHostReach(c),
    ])
    return { 'attach-stdin': attach, 'exec-env': env, 'exec-workdir': workdir, 'network-aliases': aliases, 'published-ports': ports, 'host-reachable': { ok: host.ok, detail: host.detail, ...(host.route && { route: host.route }) } }
  }
  catch (error) {
    const said = (error as { json?: { message?: string } }).json?.message ?? (error as Error).message
    const failed = { ok: false, detail: `the probe container could not run: ${said}` }
    return Object.fromEntries(CAPABILITIES.map(c => [c, failed])) as Record<Capability, CapabilityResult>
  }
  finally {
    await Promise.all([container?.remove().catch(() => {}), peer?.remove().catch(() => {})])
    if (networkMade) await engine.removeNetwork(network).catch(() => {})
  }
}

async function retry<T>(attempt: () => Promise<T>, good: (value: T) => boolean, times = 10): Promise<T> {
  let value = await attempt()
  for (let i = 1; i < times && !good(value); i++) {
    await new Promise(resolve => setTimeout(resolve, 200))
    value = await attempt()
  }
  return value
}

/** A shell over an exec attached with stdin: what the long-lived shell runner needs. */
async function attachStdin(container: EngineContainer): Promise<CapabilityResult> {
  try {
    const exec = await container.exec({ Cmd: ['sh'], AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false })
    const stream = await exec.start({ stdin: true })
    const seen = await new Promise<string>((resolve) => {
      let text = ''
      const timer = setTimeout(() => resolve(text), 5000)
      stream.on('data', createDemuxer((_which, chunk) => {
        text += chunk.toString('utf8')
        if (text.includes('clnrm-attached')) {
          clearTimeout(timer)
          resolve(text)
        }
      }))
      stream.on('error', () => resolve(text))
      stream.write('echo clnrm-attached; exit 0\n')
    })
    stream.destroy()
    return seen.includes('clnrm-attached')
      ? { ok: true, detail: 'a shell read commands from stdin and answered' }
      : { ok: false, detail: 'a shell attached with stdin did not answer within 5 s' }
  }
  catch (error) {
    return { ok: false, detail: `the engine refused an exec attached with stdin: ${(error as Error).message}` }
  }
}

/** The container's port, published on 127.0.0.1 only, answers from this machine. */
async function publishedPort(container: EngineContainer): Promise<CapabilityResult> {
  const bindings = (await container.inspect()).NetworkSettings.Ports?.[`${PROBE_PORT}/tcp`] ?? []
  const binding = bindings.find(b => b.HostIp === '127.0.0.1')
  if (!binding) return { ok: false, detail: `no binding on 127.0.0.1 (the engine reported ${JSON.stringify(bindings)})` }
  const get = (): Promise<string> => new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port: Number(binding.HostPort), path: '/', timeout: 2000 }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')))
      res.on('end', () => resolve(body))
      res.on('error', () => resolve(''))
    })
    req.on('error', () => resolve(''))
    req.on('timeout', () => req.destroy())
    req.end()
  })
  const body = await retry(get, b => b.includes('clnrm-port'))
  const others = bindings.filter(b => b.HostIp !== '127.0.0.1')
  if (!body.includes('clnrm-port')) return { ok: false, detail: `127.0.0.1:${binding.HostPort} did not answer from this machine (a remote engine publishes on its own host)` }
  return { ok: true, detail: `127.0.0.1:${binding.HostPort} answered${others.length ? `; also bound on ${others.map(b => b.HostIp).join(', ')}` : ', bound on loopback only'}` }
}
