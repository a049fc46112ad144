import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { resolve } from 'node:path'
import { afterAll } from 'vitest'

/** The built CLI: spawned tests run what ships. */
export const bin: string = resolve(import.meta.dirname, '../dist/cli/bin.mjs')

/** How a spawned CLI ended: its code (or signal) and how long it took to exit. */
export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  /** Milliseconds from spawn to exit. */
  ms: number
}

/** A spawned CLI process, driven as a user drives it: output read as it comes, keys on stdin, signals. */
export interface CliProcess {
  child: ChildProcessWithoutNullStreams
  pid: number
  stdout: () => string
  stderr: () => string
  /** Everything printed, stdout and stderr interleaved as they arrived. */
  output: () => string
  /** Resolves once the output matches; fails with the output so far after `timeoutMs`. */
  until: (pattern: RegExp, timeoutMs?: number) => Promise<string>
  exited: Promise<Exit>
  /** Milliseconds from now until the process exits. */
  timeToExit: () => Promise<number>
}

const children = new Set<ChildProcessWithoutNullStreams>()
afterAll(() => {
  // A failed assertion must not leave a CLI running (and its containers with it).
  for (const child of children) child.kill('SIGKILL')
})

/** Spawns `node dist/cli/bin.mjs <args>` (or `node <script>` with `script`) with plain output. */
export function spawnCli(args: string[], cwd: string, options: { env?: Record<string, string>; script?: string[] } = {}): CliProcess {
  const started = performance.now()
  const argv = options.script ?? [bin, ...args]
  const child = spawn(process.execPath, argv, { cwd, env: { ...process.env, NO_COLOR: '1', ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let all = ''
  child.stdout.on('data', (d: Buffer) => void (stdout += d.toString(), all += d.toString()))
  child.stderr.on('data', (d: Buffer) => void (stderr += d.toString(), all += d.toString()))
  children.add(child)
  const exited = new Promise<Exit>(done => child.once('exit', (code, signal) => {
    children.delete(child)
    done({ code, signal, ms: performance.now() - started })
  }))
  return {
    child,
    pid: child.pid!,
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => all,
    async until(pattern, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs
      while (!pattern.test(all)) {
        if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs}ms in:\n${all}`)
        await new Promise(r => setTimeout(r, 25))
      }
      return all
    },
    exited,
    async timeToExit() {
      const from = performance.now()
      await exited
      return performance.now() - from
    },
  }
}

/** Polls `check` until it returns true, or fails after `timeoutMs`. */
export async function waitUntil(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, 50))
  }
}
