import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { HttpEndpoint } from './http-adapter.ts'

/**
 * Where the engine is, found the way users configure it, without loading testcontainers or
 * dockerode (which cost 100 to 200 ms of start-up): a few environment variables and small files.
 * The order is testcontainers' own (tc.host, docker.host, the default socket, the rootless and
 * Docker Desktop sockets), with an explicit `DOCKER_HOST` first (clnrm never falls back from it)
 * and the docker CLI's current context before the sockets; sockets testcontainers does not know
 * (Podman, Colima, Rancher Desktop) come last, where testcontainers would have found nothing.
 */

/** How a candidate endpoint was found; `clnrm doctor` prints it. */
export type EngineVia = 'DOCKER_HOST' | 'tc.host' | 'docker.host' | 'docker context' | 'socket' | 'discovery'

/** One place an engine may answer, and how clnrm came to it. */
export interface EngineCandidate {
  via: EngineVia
  /** `unix:///var/run/docker.sock`, `tcp://127.0.0.1:2375`, `ssh://user@host`… */
  endpoint: string
  /** Where it was read: the properties file, the docker config, or which socket this is. */
  from?: string
  /** TCP with TLS, and the directory of the client material (ca.pem, cert.pem, key.pem) when there is one. */
  tls?: { certPath?: string }
}

/** What the resolution reads: the environment, the home directory, the platform and the user id. */
export interface EngineEnvironment {
  env: Readonly<Record<string, string | undefined>>
  home: string
  platform: NodeJS.Platform
  /** The user id, for `/run/user/<uid>` sockets (`undefined` on Windows). */
  uid: number | undefined
}

/** The `~/.testcontainers.properties` keys that point at an engine, when the file exists. */
export interface TestcontainersProperties {
  file: string
  tcHost?: string
  dockerHost?: string
  dockerTlsVerify?: string
  dockerCertPath?: string
}

/** Reads a Java properties file's `key=value` (or `key: value`, `key value`) lines. */
export function parseProperties(text: string): Map<string, string> {
  const map = new Map<string, string>()
  // A trailing backslash continues the line (leading blanks of the next one dropped).
  const lines = text.replace(/\\\r?\n[ \t\f]*/g, '').split(/\r?\n/)
  for (const raw of lines) {
    const line = raw.replace(/^[ \t\f]+/, '')
    if (!line || line.startsWith('#') || line.startsWith('!')) continue
    const match = /^((?:\\.|[^\\=: \t\f])+)[ \t\f]*[=: \t\f]?[ \t\f]*(.*)$/.exec(line)
    if (!match) continue
    const unescape = (s: string): string => s.replace(/\\(.)/g, (_, c: string) => ({ t: '\t', n: '\n', r: '\r', f: '\f' })[c] ?? c)
    map.set(unescape(match[1]!), unescape(match[2]!.trimEnd()))
  }
  return map
}

/** `~/.testcontainers.properties`, when it exists: testcontainers' configuration file. */
export function readTestcontainersProperties(home: string): TestcontainersProperties | undefined {
  const file = join(home, '.testcontainers.properties')
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  }
  catch {
    return undefined
  }
  const props = parseProperties(text)
  return {
    file,
    ...(props.has('tc.host') && { tcHost: props.get('tc.host') }),
    ...(props.has('docker.host') && { dockerHost: props.get('docker.host') }),
    ...(props.has('docker.tls.verify') && { dockerTlsVerify: props.get('docker.tls.verify') }),
    ...(props.has('docker.cert.path') && { dockerCertPath: props.get('docker.cert.path') }),
  }
}

/**
 * The docker CLI's current context, when it is not `default`: `DOCKER_CONTEXT`, else
 * `currentContext` of `config.json` in `DOCKER_CONFIG` (default `~/.docker`), resolved through
 * the context store (`contexts/meta/<sha256 of the name>/meta.json`).
 */
export function readDockerContext(env: EngineEnvironment['env'], home: string): EngineCandidate | undefined {
  const configDir = env.DOCKER_CONFIG || join(home, '.docker')
  let name = env.DOCKER_CONTEXT
  if (!name) {
    try {
      name = (JSON.parse(readFileSync(join(configDir, 'config.json'), 'utf8')) as { currentContext?: unknown }).currentContext as string | undefined
    }
    catch {
      return undefined
    }
  }
  if (typeof name !== 'string' || !name || name === 'default') return undefined
  const hash = createHash('sha256').update(name).digest('hex')
  const metaFile = join(configDir, 'contexts', 'meta', hash, 'meta.json')
  let host: unknown
  try {
    const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as { Endpoints?: { docker?: { Host?: unknown } } }
    host = meta.Endpoints?.docker?.Host
  }
  catch {
    return undefined
  }
  if (typeof host !== 'string' || !host) return undefined
  const tlsDir = join(configDir, 'contexts', 'tls', hash, 'docker')
  const tls = /^tcp:/.test(host) && existsSync(join(tlsDir, 'ca.pem')) ? { tls: { certPath: tlsDir } } : {}
  return { via: 'docker context', endpoint: host, from: `context "${name}" (${metaFile})`, ...tls }
}

/** Unix sockets testcontainers tries, in its order: the default one, then rootless and Docker Desktop's. */
function testcontainersSockets(e: EngineEnvironment): Array<{ path: string; what: string }> {
  return [
    { path: '/var/run/docker.sock', what: 'the default socket' },
    ...(e.env.XDG_RUNTIME_DIR ? [{ path: join(e.env.XDG_RUNTIME_DIR, 'docker.sock'), what: 'rootless Docker ($XDG_RUNTIME_DIR)' }] : []),
    { path: join(e.home, '.docker', 'run', 'docker.sock'), what: 'Docker Desktop' },
    { path: join(e.home, '.docker', 'desktop', 'docker.sock'), what: 'Docker Desktop' },
    ...(e.uid === undefined ? [] : [{ path: `/run/user/${e.uid}/docker.sock`, what: 'rootless Docker' }]),
  ]
}

/** Sockets of engines testcontainers does not look for: tried only after every one it knows. */
function otherSockets(e: EngineEnvironment): Array<{ path: string; what: string }> {
  return [
    ...(e.env.XDG_RUNTIME_DIR ? [{ path: join(e.env.XDG_RUNTIME_DIR, 'podman', 'podman.sock'), what: 'rootless Podman' }] : []),
    ...(e.uid === undefined ? [] : [{ path: `/run/user/${e.uid}/podman/podman.sock`, what: 'rootless Podman' }]),
    { path: '/run/podman/podman.sock', what: 'Podman' },
    { path: join(e.home, '.colima', 'default', 'docker.sock'), what: 'Colima' },
    { path: join(e.home, '.colima', 'docker.sock'), what: 'Colima' },
    { path: join(e.home, '.rd', 'docker.sock'), what: 'Rancher Desktop' },
  ]
}

/**
 * Every place the engine may be, in the order clnrm tries them. `DOCKER_HOST` alone when set
 * (an explicit choice is never second-guessed). Sockets are listed only when their file exists.
 */
export function engineCandidates(e: EngineEnvironment, exists: (path: string) => boolean = existsSync): EngineCandidate[] {
  if (e.env.DOCKER_HOST) {
    // TLS as docker-modem decides it for DOCKER_HOST: DOCKER_TLS_VERIFY=1, or the TLS port.
    const host = e.env.DOCKER_HOST
    const tcp = !/^(unix|npipe|ssh):/.test(host)
    const tls = tcp && (e.env.DOCKER_TLS_VERIFY === '1' || /:2376(\/|$)/.test(host)) ? { tls: e.env.DOCKER_CERT_PATH ? { certPath: e.env.DOCKER_CERT_PATH } : {} } : {}
    return [{ via: 'DOCKER_HOST', endpoint: host, ...tls }]
  }
  const candidates: EngineCandidate[] = []
  const props = readTestcontainersProperties(e.home)
  // testcontainers: tc.host (Testcontainers Cloud / Desktop) first, then docker.host; the
  // DOCKER_TLS_VERIFY and DOCKER_CERT_PATH variables override the file's TLS keys.
  if (props?.tcHost) candidates.push({ via: 'tc.host', endpoint: props.tcHost, from: props.file })
  if (props?.dockerHost) {
    const verify = e.env.DOCKER_TLS_VERIFY ?? props.dockerTlsVerify
    const certPath = e.env.DOCKER_CERT_PATH ?? props.dockerCertPath
    candidates.push({ via: 'docker.host', endpoint: props.dockerHost, from: props.file, ...(verify === '1' && certPath !== undefined && { tls: { certPath: resolve(certPath) } }) })
  }
  const context = readDockerContext(e.env, e.home)
  if (context) candidates.push(context)
  if (e.platform === 'linux' || e.platform === 'darwin') {
    for (const socket of [...testcontainersSockets(e), ...otherSockets(e)]) {
      if (exists(socket.path) && !candidates.some(c => c.endpoint === `unix://${socket.path}`)) candidates.push({ via: 'socket', endpoint: `unix://${socket.path}`, from: socket.what })
    }
  }
  else if (e.platform === 'win32') {
    candidates.push({ via: 'socket', endpoint: 'npipe:////./pipe/docker_engine', from: 'Docker Desktop (named pipe)' })
  }
  return candidates
}

/** How clnrm talks to a candidate: the Docker API over `node:http`, or over ssh (through dockerode). */
export type ClientOptions =
  | { kind: 'http'; endpoint: HttpEndpoint }
  | { kind: 'ssh'; host: string; port?: string; username?: string }

/**
 * The connection options for a candidate (TLS material read here). For `DOCKER_HOST` they follow
 * what docker-modem (dockerode) reads from the environment, so an explicit engine is reached as
 * before: https when `DOCKER_TLS_VERIFY=1` or the port is 2376, client certificates from
 * `DOCKER_CERT_PATH`, `DOCKER_PATH_PREFIX` and `DOCKER_CLIENT_TIMEOUT`.
 */
export function clientOptions(candidate: EngineCandidate, env: EngineEnvironment['env'] = process.env, exists: (path: string) => boolean = existsSync): ClientOptions {
  const { endpoint } = candidate
  if (endpoint.startsWith('unix://')) {
    // An empty `unix://` means the default socket, as docker-modem has it.
    const path = endpoint.slice('unix://'.length) || (env.HOME && exists(join(env.HOME, '.docker', 'run', 'docker.sock')) ? join(env.HOME, '.docker', 'run', 'docker.sock') : '/var/run/docker.sock')
    return { kind: 'http', endpoint: { socketPath: path, protocol: 'http' } }
  }
  if (endpoint.startsWith('npipe://')) return { kind: 'http', endpoint: { socketPath: endpoint.slice('npipe://'.length) || '//./pipe/docker_engine', protocol: 'http' } }
  const url = new URL(endpoint.includes('//') ? endpoint : `tcp://${endpoint}`)
  if (url.protocol === 'ssh:') return { kind: 'ssh', host: url.hostname, ...(url.port && { port: url.port }), ...(url.username && { username: decodeURIComponent(url.username) }) }
  const explicit = candidate.via === 'DOCKER_HOST'
  const port = url.port || (candidate.tls ? '2376' : '2375')
  const http: HttpEndpoint = { host: url.hostname, port, protocol: candidate.tls || url.protocol === 'https:' ? 'https' : 'http' }
  const certPath = candidate.tls?.certPath
  if (certPath) {
    const read = (name: string): Buffer => readFileSync(join(certPath, name))
    Object.assign(http, { ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') })
  }
  if (explicit && env.DOCKER_PATH_PREFIX) http.pathPrefix = env.DOCKER_PATH_PREFIX
  if (explicit && env.DOCKER_CLIENT_TIMEOUT) http.timeoutMs = Number.parseInt(env.DOCKER_CLIENT_TIMEOUT, 10) || undefined
  return { kind: 'http', endpoint: http }
}
