import { setTimeout as timeout } from 'node:timers'
import type { CliContext } from './context.ts'

/** `DEBUG=clnrm` (or `DEBUG=*`, or a list naming clnrm): stacks and handle lists on stderr. */
export function isDebug(env: Readonly<Record<string, string | undefined>>): boolean {
  return /\bclnrm\b|^\*$/.test(env.DEBUG ?? '')
}

/** How long the process may stay alive once the command returned and its cleanup was awaited. */
export const EXIT_GUARD_MS = 2000

/**
 * The last-resort guard at the CLI edge (as Vitest's and Vite's CLIs have): the command is done
 * and its cleanup was awaited, so anything still holding the event loop is a leak (a socket never
 * destroyed, a timer never cleared). An unref'd timer never keeps the process up by itself; if it
 * fires, something else does: say what, and exit with the command's code.
 */
export function exitWhenDone(code: number, ctx: Pick<CliContext, 'stderr' | 'env'>, ms: number = EXIT_GUARD_MS): void {
  const guard = timeout(() => {
    const resources = activeResources()
    const debug = isDebug(ctx.env)
    const summary = resources.length ? `kept alive by ${summarizeResources(resources)}` : 'kept alive by an unknown handle'
    ctx.stderr(`clnrm: still running ${ms / 1000}s after finishing (${summary}); exiting with code ${code}.${debug ? '' : ' DEBUG=clnrm shows more.'}\n`)
    if (debug) ctx.stderr(`clnrm: active resources: ${resources.join(', ') || 'none reported by this runtime'}\n`)
    // Let what is already written reach the reader before the exit.
    process.stdout.write('', () => process.exit(code))
    timeout(() => process.exit(code), 200).unref()
  }, ms)
  guard.unref()
}

/** Node's `process.getActiveResourcesInfo()` (Bun and Deno may not have it): names like `TCPSocketWrap`, `Timeout`. */
function activeResources(): string[] {
  const info = (process as { getActiveResourcesInfo?: () => string[] }).getActiveResourcesInfo
  try {
    // Unref'd timers (this guard) are not listed.
    return typeof info === 'function' ? info.call(process) : []
  }
  catch {
    return []
  }
}

/** `2 × TCPSocketWrap, Timeout`. */
export function summarizeResources(resources: readonly string[]): string {
  const counts = new Map<string, number>()
  for (const name of resources) counts.set(name, (counts.get(name) ?? 0) + 1)
  return [...counts].map(([name, n]) => (n > 1 ? `${n} × ${name}` : name)).join(', ')
}
