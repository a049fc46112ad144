import { request as httpRequest } from 'node:http'
import type { IncomingMessage, RequestOptions } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { Duplex } from 'node:stream'
import type { Readable } from 'node:stream'
import type { ContainerCreateBody, ContainerInfo, EngineAdapter, EngineContainer, EngineExec, PullEvent } from './adapter.ts'
import type { RawNetwork } from './docker-adapter.ts'
import { addressingOf, versionOf } from './docker-adapter.ts'

/**
 * The engine adapter over `node:http`: the Docker Engine API spoken directly, on a unix socket or
 * TCP (with TLS). It exists for start-up time: dockerode loads ssh2, gRPC and protobuf support
 * (about 85 ms, a sixth of a warm `clnrm run --reuse`) for features clnrm never uses. It keeps
 * dockerode's observable behaviour: the same requests, and failed calls rejecting with an Error
 * whose message reads `(HTTP code 404) no such container - <the engine's message>` and that carries
 * `statusCode` and `json`. `ssh://` endpoints and testcontainers' discovery still go through
 * dockerode (`docker-adapter.ts`).
 */

/** Where the engine listens and how to talk to it. */
export interface HttpEndpoint {
  /** A unix socket (or Windows named pipe) path; otherwise `host` and `port`. */
  socketPath?: string
  host?: string
  port?: string
  protocol: 'http' | 'https'
  /** TLS client material (https). */
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
  /** `DOCKER_PATH_PREFIX`: a path the API is served under (default `/`). */
  pathPrefix?: string
  /** `DOCKER_CLIENT_TIMEOUT`: a request idle longer than this many ms fails. */
  timeoutMs?: number
}

/** A failed engine call, shaped as dockerode's errors (callers read `statusCode` and `json.message`). */
export class EngineHttpError extends Error {
  override name = 'Error'
  readonly statusCode: number
  readonly json: { message?: string } | null
  readonly reason: string
  constructor(statusCode: number, reason: string, json: { message?: string } | null, body: string) {
    super(`(HTTP code ${statusCode}) ${reason} - ${json?.message ?? body} `)
    this.statusCode = statusCode
    this.reason = reason
    this.json = json
  }
}

interface Call {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  path: string
  query?: Record<string, string | number | boolean | undefined>
  /** JSON-encoded (an object) or sent as is (a Buffer, with `contentType`). */
  body?: unknown
  contentType?: string
  headers?: Record<string, string>
  /** What a non-2xx status means, for the error message (dockerode's words). */
  errors?: Record<number, string>
  /** Ends the request (it then rejects). */
  signal?: AbortSignal
}

/** A Docker Engine API client over `node:http`: JSON calls, streams and hijacked (upgraded) connections. */
function createClient(endpoint: HttpEndpoint): {
  json: <T>(call: Call) => Promise<T>
  buffer: (call: Call) => Promise<Buffer>
  stream: (call: Call) => Promise<IncomingMessage>
  hijack: (call: Call) => Promise<Duplex>
} {
  const prefix = (endpoint.pathPrefix ?? '/').replace(/\/$/, '')
  const send = (call: Call, upgrade: boolean): { req: ReturnType<typeof httpRequest> } => {
    const query = Object.entries(call.query ?? {}).filter(([, v]) => v !== undefined).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&')
    const body = call.body === undefined ? undefined : Buffer.isBuffer(call.body) ? call.body : Buffer.from(JSON.stringify(call.body))
    const headers: Record<string, string | number> = { ...call.headers }
    if (body) {
      headers['Content-Type'] = call.contentType ?? 'application/json'
      headers['Content-Length'] = body.length
    }
    if (upgrade) {
      headers.Connection = 'Upgrade'
      headers.Upgrade = 'tcp'
    }
    const options: RequestOptions = {
      method: call.method,
      path: `${prefix}${call.path}${query ? `?${query}` : ''}`,
      headers,
      // `servername` (TLS only) given on a socket: else Node derives it from the Host header
      // `localhost`, testing it against its IPv6 pattern, whose first compile costs a few ms.
      ...(endpoint.socketPath ? { socketPath: endpoint.socketPath, servername: '' } : { host: endpoint.host, port: endpoint.port }),
      ...(endpoint.protocol === 'https' && { ca: endpoint.ca, cert: endpoint.cert, key: endpoint.key }),
      ...(call.signal && { signal: call.signal }),
    }
    const req = (endpoint.protocol === 'https' ? httpsRequest : httpRequest)(options)
    if (endpoint.timeoutMs) req.setTimeout(endpoint.timeoutMs, () => req.destroy(new Error(`the engine did not answer within ${endpoint.timeoutMs} ms (DOCKER_CLIENT_TIMEOUT)`)))
    req.end(body)
    return { req }
  }
  /** Reads a whole response; a status outside 2xx rejects with the engine's message. */
  const read = (res: IncomingMessage, call: Call): Promise<Buffer> => new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    res.on('data', (c: Buffer) => chunks.push(c))
    res.on('error', reject)
    res.on('end', () => {
      const buffer = Buffer.concat(chunks)
      const status = res.statusCode ?? 0
      if (status >= 200 && status < 300) return resolve(buffer)
      reject(httpError(status, call, buffer))
    })
  })
  /** Reads a refusal's body and rejects with it, whatever the status. */
  const refused = async (res: IncomingMessage, call: Call): Promise<never> => {
    const body = await read(res, call)
    throw httpError(res.statusCode ?? 0, call, body)
  }
  const respond = (call: Call): Promise<IncomingMessage> => new Promise((resolve, reject) => {
    const { req } = send(call, false)
    req.on('error', reject)
    req.on('response', resolve)
  })
  return {
    json: async <T>(call: Call): Promise<T> => {
      const text = (await read(await respond(call), call)).toString()
      return (text ? JSON.parse(text) : undefined) as T
    },
    buffer: async call => await read(await respond(call), call),
    stream: async (call) => {
      const res = await respond(call)
      const status = res.statusCode ?? 0
      return status >= 200 && status < 300 ? res : await refused(res, call)
    },
    hijack: call => new Promise((resolve, reject) => {
      const { req } = send(call, true)
      req.on('error', reject)
      req.on('upgrade', (_res, socket, head) => {
        // DOCKER_CLIENT_TIMEOUT is for calls: a long-lived shell is quiet between steps.
        socket.setTimeout(0)
        if (head.length) socket.unshift(head)
        resolve(socket)
      })
      req.on('response', (res) => {
        // An engine that streams the exec's output without upgrading (dockerode takes that too):
        // readable only, stdin is not attached there (the capability probe then measures no
        // attach-stdin, and steps run per exec). Any other answer refused the call (404, 409…).
        const status = res.statusCode ?? 0
        if (status >= 200 && status < 300) resolve(Duplex.from({ readable: res, writable: req }))
        else void refused(res, call).catch(reject)
      })
    }),
  }
}

function httpError(status: number, call: Call, body: Buffer): EngineHttpError {
  const text = body.toString()
  let json: { message?: string } | null = null
  try {
    json = JSON.parse(text) as { message?: string }
  }
  catch {}
  return new EngineHttpError(status, call.errors?.[status] ?? (status >= 500 ? 'server error' : 'unexpected'), json, text)
}

/** The adapter over the Docker Engine API at `endpoint`. */
export function httpAdapter(endpoint: HttpEndpoint): EngineAdapter {
  const client = createClient(endpoint)
  const labelFilter = (labels: string[]): string => JSON.stringify({ label: labels })
  return {
    ping: async () => {
      await client.buffer({ method: 'GET', path: '/_ping' })
    },
    version: async () => versionOf(await client.json({ method: 'GET', path: '/version' })),
    createContainer: async ({ name, ...body }: ContainerCreateBody) => {
      const created = await client.json<{ Id: string }>({ method: 'POST', path: '/containers/create', query: { name }, body, errors: { 404: 'no such image', 409: 'conflict' } })
      return container(client, created.Id)
    },
    container: id => container(client, id),
    listContainers: async (labels) => {
      const list = await client.json<Array<{ Id: string; Labels?: Record<string, string> | null; State: string; Names?: string[] }>>({ method: 'GET', path: '/containers/json', query: { all: true, filters: labelFilter(labels) } })
      return list.map(c => ({ Id: c.Id, Labels: c.Labels ?? {}, State: c.State, Names: c.Names }))
    },
    createNetwork: async (body) => {
      await client.json({ method: 'POST', path: '/networks/create', body: { Name: body.Name, Labels: body.Labels, CheckDuplicate: true } })
      return body.Name
    },
    removeNetwork: async (idOrName) => {
      await client.buffer({ method: 'DELETE', path: `/networks/${idOrName}`, errors: { 404: 'no such network' } })
    },
    listNetworks: async (labels) => {
      const list = await client.json<Array<{ Id: string; Name: string; Labels?: Record<string, string> | null }>>({ method: 'GET', path: '/networks', query: { filters: labelFilter(labels) } })
      return list.map(n => ({ Id: n.Id, Name: n.Name, Labels: n.Labels ?? {} }))
    },
    inspectNetwork: async (idOrName) => {
      return addressingOf(await client.json<RawNetwork>({ method: 'GET', path: `/networks/${idOrName}`, errors: { 404: 'no such network' } }))
    },
    imageId: async (image) => {
      try {
        // Unencoded, as dockerode sends it: the engine routes `/images/{name:.*}/json`.
        return (await client.json<{ Id: string }>({ method: 'GET', path: `/images/${image}/json` })).Id
      }
      catch {
        return undefined
      }
    },
    pull: async (image, { auth, onEvent }) => {
      const { repository, tag } = repositoryTag(image)
      const headers = auth ? { 'X-Registry-Auth': Buffer.from(JSON.stringify(auth)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_') } : undefined
      const stream = await client.stream({ method: 'POST', path: '/images/create', query: { fromImage: repository, tag: tag ?? 'latest' }, ...(headers && { headers }), errors: { 404: 'no such image' } })
      await followEvents(stream, onEvent)
    },
  }
}

/** Splits `repo[:tag]` or `repo@digest` as dockerode does (a colon followed by a slash is a registry port). */
export function repositoryTag(image: string): { repository: string; tag?: string } {
  const at = image.indexOf('@')
  const separator = at >= 0 ? at : image.lastIndexOf(':')
  if (separator < 0) return { repository: image }
  const tag = image.slice(separator + 1)
  return tag.includes('/') ? { repository: image } : { repository: image.slice(0, separator), tag }
}

/** Reads newline-delimited JSON events to the end of the stream. */
function followEvents(stream: Readable, onEvent: (event: PullEvent) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let rest = ''
    const line = (text: string): void => {
      if (!text.trim()) return
      try {
        onEvent(JSON.parse(text) as PullEvent)
      }
      catch {}
    }
    stream.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split(/\r?\n/)
      rest = lines.pop() ?? ''
      lines.forEach(line)
    })
    stream.on('error', reject)
    stream.on('end', () => {
      line(rest)
      resolve()
    })
  })
}

type Client = ReturnType<typeof createClient>

function container(client: Client, id: string): EngineContainer {
  const path = `/containers/${id}`
  const noSuch = { 404: 'no such container' }
  return {
    id,
    start: async () => {
      await client.buffer({ method: 'POST', path: `${path}/start`, errors: { ...noSuch, 304: 'container already started' } })
    },
    inspect: async () => await client.json<ContainerInfo>({ method: 'GET', path: `${path}/json`, errors: noSuch }),
    logs: async tail => await client.buffer({ method: 'GET', path: `${path}/logs`, query: { stdout: true, stderr: true, follow: false, tail }, errors: noSuch }),
    followLogs: async () => await client.stream({ method: 'GET', path: `${path}/logs`, query: { follow: true, stdout: true, stderr: true }, errors: noSuch }),
    remove: async () => {
      await client.buffer({ method: 'DELETE', path, query: { force: true, v: true }, errors: { ...noSuch, 409: 'conflict' } })
    },
    rename: async (name) => {
      await client.buffer({ method: 'POST', path: `${path}/rename`, query: { name }, errors: { ...noSuch, 409: 'name already taken' } })
    },
    waitNotRunning: async signal => (await client.json<{ StatusCode: number }>({ method: 'POST', path: `${path}/wait`, query: { condition: 'not-running' }, signal, errors: { ...noSuch, 400: 'bad parameter' } })).StatusCode,
    processes: async () => {
      try {
        // Podman answers an ended container's list with an empty body: no process.
        return (await client.json<{ Processes?: unknown[] | null } | undefined>({ method: 'GET', path: `${path}/top`, errors: { ...noSuch, 409: 'container is not running' } }))?.Processes?.length ?? 0
      }
      catch (error) {
        if ((error as EngineHttpError).statusCode === 409) return 0
        throw error
      }
    },
    kill: async () => {
      await client.buffer({ method: 'POST', path: `${path}/kill`, errors: { ...noSuch, 409: 'container is not running' } })
    },
    exec: async (body): Promise<EngineExec> => {
      const { Id } = await client.json<{ Id: string }>({ method: 'POST', path: `${path}/exec`, body, errors: { ...noSuch, 409: 'container stopped/paused' } })
      return {
        // The connection itself, upgraded: stdout and stderr multiplexed in, stdin out (when attached).
        start: async (): Promise<Duplex> => await client.hijack({ method: 'POST', path: `/exec/${Id}/start`, body: { Detach: false, Tty: false }, errors: { 404: 'no such exec', 409: 'container stopped/paused' } }),
        inspect: async () => {
          const info = await client.json<{ ExitCode?: number | null; Running: boolean }>({ method: 'GET', path: `/exec/${Id}/json`, errors: { 404: 'no such exec' } })
          return { exitCode: info.ExitCode ?? undefined, running: info.Running }
        },
      }
    },
    putArchive: async (tar, target) => {
      await client.buffer({ method: 'PUT', path: `${path}/archive`, query: { path: target }, body: tar, contentType: 'application/x-tar', errors: { ...noSuch, 400: 'bad parameter', 403: 'permission denied' } })
    },
  }
}
