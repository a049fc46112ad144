import type Dockerode from 'dockerode'
import { createDemuxer } from './exec/demux.ts'
import type { CommandRunner } from './exec/types.ts'
import { compilePattern } from './regex.ts'
import type { ServiceSpec } from './spec.ts'

/** A service did not become ready in time; carries what the last check said. */
export class ServiceNotReadyError extends Error {
  override name = 'ServiceNotReadyError'
  readonly code = 'CLNRM_SERVICE_NOT_READY'
  readonly service: string
  constructor(service: string, message: string) {
    super(`[clnrm] Service "${service}" ${message}`)
    this.service = service
  }
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** Waits for a new container's `wait_for` and `health_check`, polling fast so the loop stays quick. */
export async function waitUntilReady(service: ServiceSpec, container: Dockerode.Container, runner: CommandRunner): Promise<void> {
  if (service.waitFor?.kind === 'log') await waitForLog(service.id, container, service.waitFor.pattern, service.waitFor.timeoutMs)
  if (service.waitFor?.kind === 'port') await waitForPort(service.id, runner, service.waitFor.port, service.waitFor.timeoutMs)
  if (service.healthCheck) await waitForHealth(service, runner)
}

async function waitForLog(id: string, container: Dockerode.Container, pattern: string, timeoutMs: number): Promise<void> {
  const regex = compilePattern(pattern)
  const stream = await container.logs({ follow: true, stdout: true, stderr: true }) as NodeJS.ReadableStream & { destroy: () => void }
  let seen = ''
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ServiceNotReadyError(id, `did not log /${pattern}/ within ${timeoutMs}ms; last output: ${seen.slice(-500) || '(none)'}`)), timeoutMs)
      stream.on('data', createDemuxer((_which, chunk) => {
        seen = (seen + chunk.toString('utf8')).slice(-64 * 1024)
        if (regex.test(seen)) {
          clearTimeout(timer)
          resolve()
        }
      }))
      stream.on('end', () => {
        clearTimeout(timer)
        reject(new ServiceNotReadyError(id, `stopped before logging /${pattern}/; last output: ${seen.slice(-500) || '(none)'}`))
      })
    })
  }
  finally {
    stream.destroy()
  }
}

/** Listening sockets from /proc/net/tcp{,6}: state 0A, local port in hex. Needs no tools in the image. */
export function listeningPorts(procNetTcp: string): Set<number> {
  const ports = new Set<number>()
  for (const line of procNetTcp.split('\n')) {
    const fields = line.trim().split(/\s+/)
    if (fields[3] === '0A' && fields[1]?.includes(':')) ports.add(Number.parseInt(fields[1].split(':')[1]!, 16))
  }
  return ports
}

async function waitForPort(id: string, runner: CommandRunner, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  const argv = runner.kind === 'shell' ? ['sh', '-c', 'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null'] : ['cat', '/proc/net/tcp', '/proc/net/tcp6']
  for (;;) {
    const result = await runner.exec({ argv, timeoutMs: 5000 })
    if (listeningPorts(result.stdout).has(port)) return
    if (Date.now() > deadline) throw new ServiceNotReadyError(id, `did not listen on port ${port} within ${timeoutMs}ms`)
    await sleep(50)
  }
}

async function waitForHealth(service: ServiceSpec, runner: CommandRunner): Promise<void> {
  const check = service.healthCheck!
  const deadline = Date.now() + check.timeoutMs
  let failures = 0
  for (;;) {
    const result = await runner.exec({ argv: check.cmd, timeoutMs: Math.max(1, Math.min(5000, deadline - Date.now())) })
    if (result.exitCode === 0) return
    failures++
    const last = `exit ${result.exitCode}${result.stderr.trim() ? `: ${result.stderr.trim().slice(-300)}` : ''}`
    if (check.retries > 0 && failures > check.retries) throw new ServiceNotReadyError(service.id, `failed its health check ${failures} times (${last})`)
    if (Date.now() + check.intervalMs > deadline) throw new ServiceNotReadyError(service.id, `was not healthy within ${check.timeoutMs}ms (${last})`)
    await sleep(check.intervalMs)
  }
}
