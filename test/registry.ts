import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer, request } from 'node:http'
import type { IncomingMessage, Server } from 'node:http'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { IMAGE } from './engine.ts'

/** docker with the classic builder (no buildx needed), output captured. */
export const docker = (...args: string[]): string => execFileSync('docker', args, { encoding: 'utf8', env: { ...process.env, DOCKER_BUILDKIT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })

/** A free TCP port on 127.0.0.1. */
export const freePort = (): Promise<number> => new Promise((done, fail) => {
  const server = createServer()
  server.once('error', fail)
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as { port: number }
    server.close(() => done(port))
  })
})

/** A real registry on 127.0.0.1 (Debian's docker-registry, installed by scripts/setup-registry.sh). */
export interface LocalRegistry {
  /** `127.0.0.1:<port>`: Docker pulls plain HTTP from loopback registries by default. */
  host: string
  child: ChildProcess
  stop: () => void
}

/**
 * Starts docker-registry on a free loopback port, storing under `dir` (`storage`: another folder,
 * so two registries can serve one store; `extra`: more of its YAML config, such as `auth:`);
 * resolves once `/v2/` answers with `status` (401 for a registry that wants a login).
 */
export async function startRegistry(dir: string, options: { name?: string; storage?: string; extra?: string; status?: number } = {}): Promise<LocalRegistry> {
  let bin: string
  try {
    bin = execFileSync('sh', ['-c', 'command -v docker-registry'], { encoding: 'utf8' }).trim()
  }
  catch {
    throw new Error('docker-registry is not installed: run `bash scripts/setup-registry.sh` (npm test\'s pretest does)')
  }
  const host = `127.0.0.1:${await freePort()}`
  const config = join(dir, `${options.name ?? 'registry'}.yml`)
  mkdirSync(dir, { recursive: true })
  writeFileSync(config, `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${options.storage ?? join(dir, 'data')}\nhttp:\n  addr: ${host}\n${options.extra ?? ''}`)
  let log = ''
  const child = spawn(bin, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout!.on('data', (d: Buffer) => void (log += d))
  child.stderr!.on('data', (d: Buffer) => void (log += d))
  const deadline = Date.now() + 15_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}):\n${log}`)
    if (await fetch(`http://${host}/v2/`).then(r => r.status === (options.status ?? 200), () => false)) break
    if (Date.now() > deadline) {
      child.kill('SIGTERM')
      throw new Error(`docker-registry did not answer at ${host} within 15 s:\n${log}`)
    }
    await new Promise(r => setTimeout(r, 100))
  }
  return { host, child, stop: () => void child.kill('SIGTERM') }
}

/**
 * Builds an image on the test image with a layer of `bytes` random bytes of its own, pushes it as
 * `ref` and removes every local tag, so the layer is gone from the engine and a pull downloads it.
 */
export async function pushImage(ref: string, context: string, bytes: number): Promise<void> {
  mkdirSync(context, { recursive: true })
  writeFileSync(join(context, 'blob'), randomBytes(bytes))
  writeFileSync(join(context, 'Dockerfile'), `FROM ${IMAGE}\nCOPY blob /blob\n`)
  docker('build', '-q', '-t', ref, context)
  docker('push', ref)
  docker('rmi', ref)
}

/**
 * A gate in front of a registry: forwards every request, but holds the body of a large blob (a
 * layer) after the bytes allowed so far, so a test can watch a pull in progress at a point it
 * chooses. Small blobs and manifests pass at once.
 */
export interface RegistryGate {
  host: string
  /** Lets `bytes` more of each held layer through (Infinity: the rest). */
  allow: (bytes: number) => void
  close: () => void
}

/** Layers above this size are held by the gate. */
const HELD_ABOVE = 1_000_000

export async function startGate(upstream: string, firstBytes: number): Promise<RegistryGate> {
  let allowed = firstBytes
  const pumps = new Set<() => void>()
  const server: Server = createHttpServer((req, res) => {
    const forward = request({ host: upstream.split(':')[0], port: Number(upstream.split(':')[1]), method: req.method, path: req.url, headers: { ...req.headers, host: upstream } }, (up: IncomingMessage) => {
      const size = Number(up.headers['content-length'] ?? 0)
      res.writeHead(up.statusCode ?? 502, up.headers)
      if (req.method !== 'GET' || !/\/blobs\//.test(req.url ?? '') || size <= HELD_ABOVE) {
        up.pipe(res)
        return
      }
      const chunks: Buffer[] = []
      up.on('data', (d: Buffer) => chunks.push(d))
      up.on('end', () => {
        const body = Buffer.concat(chunks)
        let sent = 0
        const pump = (): void => {
          const until = Math.min(body.length, allowed)
          if (until > sent) {
            res.write(body.subarray(sent, until))
            sent = until
          }
          if (sent >= body.length) {
            pumps.delete(pump)
            res.end()
          }
        }
        pumps.add(pump)
        pump()
      })
    })
    forward.on('error', () => res.destroy())
    req.pipe(forward)
  })
  await new Promise<void>(done => server.listen(0, '127.0.0.1', done))
  return {
    host: `127.0.0.1:${(server.address() as { port: number }).port}`,
    allow(bytes) {
      allowed += bytes
      for (const pump of [...pumps]) pump()
    },
    close() {
      server.closeAllConnections()
      server.close()
    },
  }
}
