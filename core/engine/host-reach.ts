import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { hostname } from 'node:os'
import type { EngineAdapter, EngineContainer } from './adapter.ts'
import { execOnce } from './exec/exec-once.ts'
import { LABELS } from './pool-types.ts'

/**
 * How a container reaches a server on this machine (clnrm's OTLP receiver):
 * - `host-gateway`: Docker (20.10+) maps `host.docker.internal` to the default bridge's gateway
 *   when asked to (`ExtraHosts: ['host.docker.internal:host-gateway']`). The server listens on
 *   that one address, which every network's containers reach, routed by the host.
 * - `network-gateway`: Podman 4 does not resolve `host-gateway` (it writes the word itself into
 *   /etc/hosts) but names the gateway of each container's own network `host.containers.internal`.
 *   That address exists only while the network's bridge does, so the server listens on the
 *   gateway of each network its containers use, once they run.
 */
export type HostRoute = 'host-gateway' | 'network-gateway'

/** What a route asks of the container definition: the name the host goes by, and `/etc/hosts` entries. */
export const HOST_ROUTES: Readonly<Record<HostRoute, { name: string; extraHosts: readonly string[] }>> = {
  'host-gateway': { name: 'host.docker.internal', extraHosts: ['host.docker.internal:host-gateway'] },
  'network-gateway': { name: 'host.containers.internal', extraHosts: [] },
}

/** What was found: whether (and by which route) a container reached this machine, and what was seen. */
export interface HostReach {
  ok: boolean
  /**
   * The route that worked. From `hostRouteFor` also when `ok` is false: then the route the
   * engine is known for (`assumed`), since a route must be chosen for the services either way.
   */
  route?: HostRoute
  /** Set when `route` was not measured to work but taken from the engine's name. */
  assumed?: boolean
  detail: string
}

/** Busybox images a measurement may run, first found wins (nothing is ever pulled for it). */
export const PROBE_IMAGES: readonly string[] = ['clnrm-examples/busybox:1', 'busybox:1.36', 'busybox']

const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/

/**
 * Measures, from a running busybox container created with `HOST_ROUTES['host-gateway'].extraHosts`,
 * which route reaches this machine: for each name the container's /etc/hosts maps to an address,
 * a one-shot HTTP server listens on exactly that address here (never on every interface) and the
 * container calls it. `host.containers.internal` counts only when it is the gateway of the
 * container's network, since that is where the receiver will listen.
 */
export async function measureHostReach(container: EngineContainer): Promise<HostReach> {
  const [hosts, info] = await Promise.all([execOnce(container, ['cat', '/etc/hosts']), container.inspect().catch(() => undefined)])
  const lookup = (name: string): string | undefined => {
    for (const line of hosts.out.split('\n')) {
      const [address, ...names] = line.replace(/#.*/, '').trim().split(/\s+/)
      if (names.includes(name)) return address
    }
    return undefined
  }
  const gateways = Object.values(info?.NetworkSettings.Networks ?? {}).map(n => n.Gateway).filter((g): g is string => !!g)
  const seen: string[] = []
  const docker = lookup(HOST_ROUTES['host-gateway'].name)
  if (docker && IPV4.test(docker)) {
    const said = await answers(container, docker)
    if (said === true) return { ok: true, route: 'host-gateway', detail: `host.docker.internal (host-gateway, ${docker}) reached this machine` }
    seen.push(`host.docker.internal (${docker}) ${said}`)
  }
  else {
    seen.push(docker ? `the engine does not resolve host-gateway (its /etc/hosts maps host.docker.internal to "${docker}")` : 'host-gateway gave no host.docker.internal entry')
  }
  const podman = lookup(HOST_ROUTES['network-gateway'].name)
  if (podman && IPV4.test(podman)) {
    if (!gateways.includes(podman)) {
      seen.push(`host.containers.internal (${podman}) is not the gateway of the container's network (${gateways.join(', ') || 'none reported'})`)
    }
    else {
      const said = await answers(container, podman)
      if (said === true) return { ok: true, route: 'network-gateway', detail: `host.containers.internal (the network's gateway, ${podman}) reached this machine; ${seen.join('; ')}` }
      seen.push(`host.containers.internal (${podman}) ${said}`)
    }
  }
  return { ok: false, detail: seen.join('; ') }
}

/** `true` when the container reached a server listening on `ip` here, else why not. */
async function answers(container: EngineContainer, ip: string): Promise<true | string> {
  const server = createServer((_req, res) => res.end('clnrm-host'))
  try {
    const port = await new Promise<number | undefined>((resolve) => {
      server.once('error', () => resolve(undefined))
      server.listen(0, ip, () => resolve((server.address() as AddressInfo).port))
    })
    if (port === undefined) return 'is not an address of this machine (a remote engine\'s host, or a bridge that is down)'
    const r = await execOnce(container, ['sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} ${port}`])
    return r.out.includes('clnrm-host') ? true : `did not answer from the container: ${(r.err || r.out).trim() || `exit ${r.exitCode}`}`
  }
  finally {
    server.close()
  }
}

const routes = new WeakMap<EngineAdapter, Promise<HostReach>>()

/**
 * The route the pool's containers take to this machine, found once per engine per process.
 *
 * Docker is taken at its word: `host-gateway` has worked since 20.10, the main test suite proves
 * it on every run, and measuring would cost every process with span tests a container start
 * (about half a second). Every other engine (Podman, anything unknown) is measured with one
 * throwaway busybox container on its default network, the same measurement `clnrm doctor` makes.
 * When nothing can be measured (no busybox image on the engine) or nothing is measured to work,
 * the route the engine is known for is assumed (`network-gateway` on Podman, `host-gateway`
 * otherwise): a Podman user without busybox still gets spans, and where the route really fails
 * the run's verdict and `clnrm doctor` say why.
 */
export function hostRouteFor(engine: EngineAdapter): Promise<HostReach> {
  let route = routes.get(engine)
  if (!route) {
    route = findRoute(engine)
    routes.set(engine, route)
  }
  return route
}

async function findRoute(engine: EngineAdapter): Promise<HostReach> {
  const version = await engine.version().catch(() => undefined)
  if (version?.name === 'Docker') return { ok: true, route: 'host-gateway', detail: `Docker ${version.version} resolves host-gateway (not measured here; clnrm doctor measures it)` }
  const known: HostRoute = version?.name === 'Podman' ? 'network-gateway' : 'host-gateway'
  const assume = (why: string): HostReach => ({ ok: false, route: known, assumed: true, detail: `${why}; assuming ${known}, the route ${version?.name ?? 'an unknown engine'} is known for` })
  const found = await measureOn(engine)
  return found.ok ? found : assume(found.detail)
}

/** The measurement on a throwaway container of the engine's (on its default network). */
async function measureOn(engine: EngineAdapter): Promise<HostReach> {
  let image: string | undefined
  for (const candidate of PROBE_IMAGES) {
    if (await engine.imageId(candidate)) {
      image = candidate
      break
    }
  }
  if (!image) return { ok: false, detail: `not measured: no busybox image on the engine (${PROBE_IMAGES.join(', ')})` }
  let container: EngineContainer | undefined
  try {
    container = await engine.createContainer({
      Image: image,
      Entrypoint: ['sh', '-c'],
      Cmd: ['exec sleep 60'],
      Labels: { [LABELS.managed]: 'true', [LABELS.pid]: String(process.pid), [LABELS.host]: hostname(), [LABELS.service]: `probe-${randomBytes(3).toString('hex')}` },
      HostConfig: { ExtraHosts: [...HOST_ROUTES['host-gateway'].extraHosts] },
    })
    await container.start()
    return await measureHostReach(container)
  }
  catch (error) {
    return { ok: false, detail: `the measuring container could not run: ${(error as { json?: { message?: string } }).json?.message ?? (error as Error).message}` }
  }
  finally {
    await container?.remove().catch(() => {})
  }
}
