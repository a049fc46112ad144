import { spawn } from 'node:child_process'

/**
 * The Bun binary to run clnrm with when this Node process was started by `bunx clnrm`, else
 * `undefined`. bunx honours the bin's `#!/usr/bin/env node` shebang and starts Node unless given
 * `--bun` (https://bun.sh/docs/pm/bunx). It always sets `npm_lifecycle_event=bunx` and the bin
 * name in `npm_lifecycle_script`; its own path in `npm_execpath` only when no npm set it before
 * (bunx run from an npm script keeps npm's), so the binary falls back to `bun` on the PATH. Only
 * a bunx started for clnrm itself counts: a Node tool that bunx started and that spawns clnrm keeps
 * Node. `CLNRM_RUNTIME=node` keeps Node too.
 */
export function bunxRuntime(env: Readonly<Record<string, string | undefined>>, versions: Readonly<Record<string, string | undefined>>): string | undefined {
  if (versions.bun !== undefined || versions.deno !== undefined) return undefined
  if (env.CLNRM_RUNTIME === 'node') return undefined
  if (env.npm_lifecycle_event !== 'bunx' || !/^clnrm(?:@\S*)?(?:\s|$)/.test(env.npm_lifecycle_script ?? '')) return undefined
  const execPath = env.npm_execpath ?? ''
  return /(?:^|[\\/])bun(?:\.exe)?$/.test(execPath) ? execPath : 'bun'
}

/**
 * Runs `script args` under Bun and resolves with the code to exit with, or `undefined` when Bun
 * could not be started (clnrm then goes on under Node). Ctrl-C and a hang-up reach every process
 * of the terminal's foreground group, Bun included, so they are not passed on: the child would
 * see a second Ctrl-C, which forces its exit before cleanup. SIGTERM is sent to one process, so
 * it is passed on.
 */
export function runUnderBun(bun: string, script: string, args: readonly string[]): Promise<number | undefined> {
  return new Promise((resolve) => {
    const child = spawn(bun, [script, ...args], { stdio: 'inherit' })
    const ignore = (): void => {}
    const forward = (signal: NodeJS.Signals): void => void child.kill(signal)
    process.on('SIGINT', ignore)
    process.on('SIGHUP', ignore)
    process.on('SIGTERM', forward)
    const done = (code: number | undefined): void => {
      process.off('SIGINT', ignore)
      process.off('SIGHUP', ignore)
      process.off('SIGTERM', forward)
      resolve(code)
    }
    child.once('error', () => done(undefined))
    child.once('exit', (code, signal) => {
      const signals: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGPIPE: 13, SIGTERM: 15 }
      done(code ?? 128 + (signal ? signals[signal] ?? 1 : 1))
    })
  })
}

/** `bun 1.4.5`, `deno 2.9.6` or `node 20.20.2`: the runtime this process runs on. */
export function runtimeName(versions: Readonly<Record<string, string | undefined>> = process.versions): string {
  if (versions.bun) return `bun ${versions.bun}`
  if (versions.deno) return `deno ${versions.deno}`
  return `node ${versions.node ?? 'unknown'}`
}
