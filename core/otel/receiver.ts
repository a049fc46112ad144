import { ClnrmError } from '../errors.ts'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createServer } from 'node:http'
import type { Socket } from 'node:net'
import { gunzipSync } from 'node:zlib'
import { decodeOtlpJson, decodeOtlpProtobuf, encodeRpcStatus, OtlpDecodeError } from './decode.ts'
import type { Span } from './types.ts'

/** Options of `startOtlpReceiver`. */
export interface OtlpReceiverOptions {
  /** The address to listen on. @default '127.0.0.1' */
  host?: string
  /** 0 lets the system choose. @default 0 */
  port?: number
  /** Largest accepted body, compressed and decompressed alike; larger ones get 413. @default 16 MiB */
  maxBodyBytes?: number
  /** Receives each export's spans with the sender's address (`172.17.0.3`; IPv4-mapped prefixes removed). */
  onSpans: (spans: Span[], peer: string) => void
  /** Failures that are not the sender's fault (a listener that threw, a socket error). */
  onError?: (error: Error) => void
}

/** A running OTLP/HTTP receiver. */
export interface OtlpReceiver {
  host: string
  port: number
  /** `http://host:port`: the base the SDKs append `/v1/traces` to. */
  url: string
  /**
   * Listens on one more address, on the same port (idempotent per address): for engines whose
   * containers reach this machine only through their own network's gateway (see host-reach.ts).
   */
  listenAlso: (host: string) => Promise<void>
  /** Exports received, and how many were refused (400/413/415). */
  stats: () => { requests: number; refused: number; spans: number }
  /** Stops listening and drops open connections. Idempotent. */
  close: () => Promise<void>
}

/** The spec's default for collectors is 4 MiB on gRPC; HTTP has none, and test services send small batches. */
export const DEFAULT_MAX_BODY_BYTES: number = 16 * 1024 * 1024

/**
 * Starts an OTLP/HTTP receiver (`POST /v1/traces`, binary protobuf or JSON, gzip or not) on
 * node:http, which Node, Bun and Deno all provide. Replies as the OTLP spec says: 200 with an
 * empty `ExportTraceServiceResponse` in the request's content type, 400 for undecodable data,
 * 413 above the body limit, 415 for other content types. `/v1/metrics` and `/v1/logs` are
 * accepted and dropped, so SDKs that export everything to one endpoint do not log errors.
 *
 * The server and its sockets are unref'd: a receiver never keeps a process alive, whatever
 * keep-alive connections the services hold open.
 */
export function startOtlpReceiver(options: OtlpReceiverOptions): Promise<OtlpReceiver> {
  const host = options.host ?? '127.0.0.1'
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const sockets = new Set<Socket>()
  const counts = { requests: 0, refused: 0, spans: 0 }
  const onError = (error: Error): void => {
    try {
      options.onError?.(error)
    }
    catch {}
  }
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((error: Error) => {
      onError(error)
      if (!res.headersSent) reply(res, 500, 'json', 'internal error')
    })
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    counts.requests++
    const path = (req.url ?? '/').split('?')[0]!
    const kind = path.endsWith('/v1/traces') ? 'traces' : path.endsWith('/v1/metrics') || path.endsWith('/v1/logs') ? 'other' : undefined
    const type = contentType(req.headers['content-type'])
    const format = type === 'application/x-protobuf' || type === 'application/protobuf' ? 'protobuf' : type === 'application/json' ? 'json' : undefined
    if (!kind) return refuse(req, res, 404, format ?? 'json', `no OTLP signal at ${path}: traces go to /v1/traces`)
    if (req.method !== 'POST') return refuse(req, res, 405, format ?? 'json', 'OTLP/HTTP takes POST')
    if (!format) return refuse(req, res, 415, 'json', `unsupported content type "${type}": send application/x-protobuf or application/json`)
    const body = await readBody(req, maxBody)
    if (body === 'too-large') return refuse(req, res, 413, format, `the body is larger than ${maxBody} bytes`)
    let raw = body
    const encoding = String(req.headers['content-encoding'] ?? '').toLowerCase()
    if (encoding === 'gzip') {
      try {
        raw = gunzipSync(body, { maxOutputLength: maxBody })
      }
      catch (error) {
        const tooLarge = (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE'
        return refuse(req, res, tooLarge ? 413 : 400, format, tooLarge ? `the body inflates past ${maxBody} bytes` : `bad gzip data: ${(error as Error).message}`)
      }
    }
    else if (encoding && encoding !== 'identity') return refuse(req, res, 415, format, `unsupported content encoding "${encoding}": send gzip or none`)
    if (kind === 'other') return reply(res, 200, format)
    let spans: Span[]
    try {
      const receivedAt = performance.now()
      spans = format === 'protobuf' ? decodeOtlpProtobuf(raw, receivedAt) : decodeOtlpJson(raw.toString('utf8'), receivedAt)
    }
    catch (error) {
      if (!(error instanceof OtlpDecodeError)) throw error
      return refuse(req, res, 400, format, error.message)
    }
    counts.spans += spans.length
    try {
      if (spans.length) options.onSpans(spans, peerAddress(req.socket))
    }
    catch (error) {
      onError(error as Error)
    }
    reply(res, 200, format)
  }

  function refuse(req: IncomingMessage, res: ServerResponse, status: number, format: 'protobuf' | 'json', message: string): void {
    counts.refused++
    // The rest of a refused body is not read: closing the connection beats draining 100 MB.
    if (!req.complete) res.setHeader('connection', 'close')
    reply(res, status, format, message)
  }

  /** One server on one address, unref'd, its sockets tracked so `close` can drop them. */
  const serve = (address: string, port: number): Promise<Server> => {
    const server: Server = createServer(onRequest)
    server.on('connection', (socket: Socket) => {
      socket.unref()
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => socket.destroy())
    })
    server.on('clientError', (_error, socket) => socket.destroy())
    return new Promise((resolve, reject) => {
      const failed = (error: Error): void => reject(new ClnrmError('CLNRM_OTLP_RECEIVER', `the OTLP receiver could not listen on ${address}:${port}: ${error.message}`, { cause: error }))
      server.once('error', failed)
      server.listen(port, address, () => {
        server.off('error', failed)
        server.on('error', error => onError(error))
        server.unref()
        resolve(server)
      })
    })
  }

  return serve(host, options.port ?? 0).then((first) => {
    const address = first.address()
    const port = typeof address === 'object' && address ? address.port : 0
    const servers = new Map<string, Promise<Server>>([[host, Promise.resolve(first)]])
    let closing: Promise<void> | undefined
    return {
      host,
      port,
      url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
      listenAlso: async (other) => {
        if (closing) throw new ClnrmError('CLNRM_OTLP_RECEIVER', 'the OTLP receiver is closed')
        let server = servers.get(other)
        if (!server) {
          server = serve(other, port)
          servers.set(other, server)
          // A failed listen is not remembered: the next run tries again.
          server.catch(() => servers.delete(other))
        }
        await server
      },
      stats: () => ({ ...counts }),
      close: () => {
        closing ??= Promise.allSettled([...servers.values()].map(async (pending) => {
          const server = await pending
          await new Promise<void>(done => server.close(() => done()))
        })).then(() => {})
        for (const socket of sockets) socket.destroy()
        return closing
      },
    }
  })
}

/** `application/json; charset=utf-8` → `application/json`. */
function contentType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase()
}

function peerAddress(socket: Socket): string {
  return (socket.remoteAddress ?? '').replace(/^::ffff:/, '')
}

/** The body, or 'too-large' as soon as it passes the limit (the rest is not buffered). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | 'too-large'> {
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > max) {
    req.resume()
    return Promise.resolve('too-large')
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let done = false
    req.on('data', (chunk: Buffer) => {
      if (done) return
      size += chunk.length
      if (size > max) {
        done = true
        resolve('too-large')
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks))
      done = true
    })
    req.on('error', (error) => {
      if (!done) reject(error)
      done = true
    })
  })
}

/**
 * The spec's answers, in the request's content type: success is an empty
 * `ExportTraceServiceResponse` (zero bytes in protobuf, `{}` in JSON); failures carry a
 * `google.rpc.Status` with the reason.
 */
function reply(res: ServerResponse, status: number, format: 'protobuf' | 'json', message?: string): void {
  // gRPC codes: INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNKNOWN.
  const code = status === 400 ? 3 : status === 413 ? 8 : 2
  const body: string | Uint8Array = status === 200
    ? (format === 'json' ? '{}' : new Uint8Array(0))
    : (format === 'json' ? JSON.stringify({ code, message }) : encodeRpcStatus(code, message ?? ''))
  res.writeHead(status, { 'content-type': format === 'json' ? 'application/json' : 'application/x-protobuf', 'content-length': typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength })
  res.end(body)
}
