import type { Readable } from 'node:stream'
import type { EngineContainer } from './adapter.ts'
import { AbortedError, throwIfAborted } from './docker.ts'
import { ClnrmError } from '../errors.ts'
import { createDemuxer } from './exec/demux.ts'
import type { CommandRunner } from './exec/types.ts'
import { spansFromStdout } from '../otel/stdout.ts'
import { compilePattern } from '../format/regex.ts'
import type { ServiceSpec } from '../format/spec.ts'

/** A service did not become ready in time; carries what the last check said. */
export class ServiceNotReadyError extends ClnrmError {
  override name = 'ServiceNotReadyError'
  readonly service: string
  constructor(service: string, message: string) {
    super('CLNRM_SERVICE_NOT_READY', `Service "${service}" ${message}`, { hint: `Check the health check or wait_for_log of [services.${service}], or give it more time.` })
    this.service = service
  }
}

/** Sleeps, or rejects with `AbortedError` as soon as the signal fires. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError())
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(new AbortedError())
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * Waits for a new container's `wait_for` and `health_check`, polling fast so the loop stays
 * quick. Aborting the signal ends the wait at once (with `AbortedError`): a Ctrl-C never waits
 * out a readiness timeout.
 */
export async function waitUntilReady(service: ServiceSpec, container: EngineContainer, runner: CommandRunner, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal)
  if (service.waitFor?.kind === 'log') await waitForLog(service.id, container, service.waitFor.pattern, service.waitFor.timeoutMs, signal)
  if (service.waitFor?.kind === 'port') await waitForPort(service.id, runner, service.waitFor.port, service.waitFor.timeoutMs, signal)
  if (service.healthCheck) await waitForHealth(service, runner, signal)
  if (service.waitForSpan) await waitForSpan(service.id, container, service.waitForSpan.name, service.waitForSpan.timeoutMs, signal)
}

function waitForLog(id: string, container: EngineContainer, pattern: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
  const regex = compilePattern(pattern)
  return waitForOutput(id, container, seen => regex.test(seen), `/${pattern}/`, timeoutMs, signal)
}

/**
 * Upstream's `wait_for_span`: a span of that name in the service's output (NDJSON spans or
 * OTLP-JSON lines, as the stdout exporters write them), as upstream polls its service's stdout.
 */
function waitForSpan(id: string, container: EngineContainer, name: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
  // Only whole lines are spans; a line is parsed once, when its newline arrives.
  let parsed = 0
  return waitForOutput(id, container, (seen, total) => {
    const start = Math.max(0, seen.length - (total - parsed))
    const end = seen.lastIndexOf('\n') + 1
    if (end <= start) return false
    parsed = total - (seen.length - end)
    return spansFromStdout(seen.slice(start, end)).some(span => span.name === name)
  }, `the span "${name}"`, timeoutMs, signal)
}

/** Follows a container's output until `ready(seen, total)` holds; `seen` is its last 64 KiB, `total` every character so far. */
async function waitForOutput(id: string, container: EngineContainer, ready: (seen: string, total: number) => boolean, what: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
  let total = 0
  const stream = await container.followLogs()
  let seen = ''
  let cleanup = (): void => {}
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ServiceNotReadyError(id, `did not log ${what} within ${timeoutMs}ms; last output: ${seen.slice(-500) || '(none)'}`)), timeoutMs)
      const onAbort = (): void => reject(new AbortedError())
      cleanup = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
      if (signal?.aborted) return reject(new AbortedError())
      signal?.addEventListener('abort', onAbort, { once: true })
      stream.on('data', createDemuxer((_which, chunk) => {
        const text = chunk.toString('utf8')
        total += text.length
        seen = (seen + text).slice(-64 * 1024)
        if (ready(seen, total)) resolve()
      }))
      stream.on('end', () => reject(new ServiceNotReadyError(id, `stopped before logging ${what}; last output: ${seen.slice(-500) || '(none)'}`)))
      // A broken connection (the engine restarting, the container removed) ends the wait too.
      stream.on('error', error => reject(new ServiceNotReadyError(id, `log stream failed before ${what} appeared: ${error.message}`)))
    })
  }
  finally {
    cleanup()
    // Destroyed on every path; the listener stays so a late error cannot go unhandled.
    stream.on('error', () => {})
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

async function waitForPort(id: string, runner: CommandRunner, port: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs
  const argv = runner.kind === 'shell' ? ['sh', '-c', 'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null'] : ['cat', '/proc/net/tcp', '/proc/net/tcp6']
  for (;;) {
    const result = await runner.exec({ argv, timeoutMs: 5000, signal })
    throwIfAborted(signal)
    if (listeningPorts(result.stdout).has(port)) return
    if (Date.now() > deadline) throw new ServiceNotReadyError(id, `did not listen on port ${port} within ${timeoutMs}ms`)
    await sleep(50, signal)
  }
}

async function waitForHealth(service: ServiceSpec, runner: CommandRunner, signal: AbortSignal | undefined): Promise<void> {
  const check = service.healthCheck!
  const deadline = Date.now() + check.timeoutMs
  let failures = 0
  for (;;) {
    // The check's own timeout is the runner's: a check slower than its slot is killed, not awaited.
    const result = await runner.exec({ argv: check.cmd, timeoutMs: Math.max(1, Math.min(5000, deadline - Date.now())), signal })
    throwIfAborted(signal)
    if (result.exitCode === 0 && !result.timedOut) return
    failures++
    const last = result.timedOut ? 'the check timed out' : `exit ${result.exitCode}${result.stderr.trim() ? `: ${result.stderr.trim().slice(-300)}` : ''}`
    if (check.retries > 0 && failures > check.retries) throw new ServiceNotReadyError(service.id, `failed its health check ${failures} times (${last})`)
    if (Date.now() + check.intervalMs > deadline) throw new ServiceNotReadyError(service.id, `was not healthy within ${check.timeoutMs}ms (${last})`)
    await sleep(check.intervalMs, signal)
  }
}
