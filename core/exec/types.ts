/** A command to run inside a container. */
export interface ExecRequest {
  argv: string[]
  env?: Record<string, string>
  workdir?: string
  /** Kill the command after this many milliseconds. */
  timeoutMs?: number
  /** Aborting kills the command (dev-loop pre-emption). */
  signal?: AbortSignal
}

/** What a command did. Output is capped; `truncated` says which stream lost bytes. */
export interface ExecResult {
  exitCode: number
  stdout: string
  stderr: string
  truncated: { stdout: boolean; stderr: boolean }
  durationMs: number
  timedOut: boolean
  aborted: boolean
}

/**
 * Runs commands inside one container. Two implementations: a persistent shell fed over an
 * attached stream (fast, the default), and one `docker exec` per command (images without `sh`).
 */
export interface CommandRunner {
  readonly kind: 'shell' | 'exec'
  /** False once the container or the runner's stream has gone away. */
  readonly alive: boolean
  exec: (request: ExecRequest) => Promise<ExecResult>
  /**
   * Ends a run in one command: kills what its commands left running (daemons started with `&`),
   * removes its workdir and creates the next run's. Returns the exit code.
   */
  endRun: (workdir: string, nextWorkdir: string) => Promise<number>
  close: () => void
}

/** Output kept per stream. */
export const OUTPUT_CAP_BYTES: number = 1024 * 1024

/** Collects up to `OUTPUT_CAP_BYTES` of a stream and notes what it dropped. */
export class CappedBuffer {
  readonly #chunks: Buffer[] = []
  #size = 0
  truncated: boolean = false

  push(chunk: Buffer): void {
    const room = OUTPUT_CAP_BYTES - this.#size
    if (room <= 0) {
      this.truncated ||= chunk.length > 0
      return
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk
    if (kept.length < chunk.length) this.truncated = true
    this.#chunks.push(kept)
    this.#size += kept.length
  }

  text(): string {
    return Buffer.concat(this.#chunks).toString('utf8')
  }
}

/** Assembles a result from the captured streams. */
export function execResult(stdout: CappedBuffer, stderr: CappedBuffer, outcome: { exitCode: number; startedAt: number; timedOut: boolean; aborted: boolean }): ExecResult {
  return {
    exitCode: outcome.exitCode,
    stdout: stdout.text(),
    stderr: stderr.text(),
    truncated: { stdout: stdout.truncated, stderr: stderr.truncated },
    durationMs: performance.now() - outcome.startedAt,
    timedOut: outcome.timedOut,
    aborted: outcome.aborted,
  }
}
