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

/**
 * What a command did. `stdout`/`stderr` are display excerpts of at most `OUTPUT_CAP_BYTES`
 * each (head and tail of a longer stream, `truncated` says so); `whole` holds each stream
 * entire for judging, or `undefined` past `JUDGE_LIMIT_BYTES`.
 */
export interface ExecResult {
  exitCode: number
  stdout: string
  stderr: string
  truncated: { stdout: boolean; stderr: boolean }
  /** Bytes each stream carried in all. */
  bytes: { stdout: number; stderr: number }
  whole: { stdout: string | undefined; stderr: string | undefined }
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
  /**
   * How the shell runner sends a command's output back (for diagnostics and tests): read from
   * the command's own files with the shell's builtins (busybox, bash), with `cat` (dash), or on
   * the shell's own streams (no writable /tmp). Absent for the exec runner.
   */
  readonly sendsOutput?: 'builtins' | 'cat' | 'streams'
  /** False once the container or the runner's stream has gone away. */
  readonly alive: boolean
  exec: (request: ExecRequest) => Promise<ExecResult>
  /**
   * Ends a run in one command: kills what its commands left running (daemons started with `&`),
   * and leaves an empty workdir for the next run (the shell runner empties the run's own and
   * keeps its path; the exec runner makes `nextWorkdir`). Resolves with the exit code (non-zero:
   * the end failed, the container must not serve another run) and the next run's directory.
   * The shell runner resolves once the end is queued, before it ran: its later commands run only
   * after the end succeeded, and when it fails the shell exits (the runner is then not `alive`).
   */
  endRun: (workdir: string, nextWorkdir: string) => Promise<RunEnd>
  /**
   * `endRun` only queues the end: later commands may be given at once (they run after it, and
   * not at all if it fails), without waiting for `endRun` to resolve.
   */
  readonly pipelinesEnd?: boolean
  /**
   * Resolves once everything handed to the runner has run (the end of the last run included);
   * rejects when the runner cannot say so. Runners whose `endRun` waits need none.
   */
  drain?: () => Promise<void>
  /** Creates a run's (empty) working directory; throws with the reason when it cannot. */
  prepareWorkdir: (dir: string) => Promise<void>
  close: () => void
}

/** How a run ended: see `CommandRunner.endRun`. */
export interface RunEnd {
  exitCode: number
  /** The (empty) working directory of the next run. */
  workdir: string
}

/**
 * Set in the environment of every command of a run, with a token per run: the end of the run
 * finds and kills the processes that carry it, whatever session or group they moved to.
 */
export const RUN_ENV = 'CLNRM_RUN_ID'

/** Output shown per stream: the first and last half of a longer stream. */
export const OUTPUT_CAP_BYTES: number = 1024 * 1024
/** Output judged per stream: expectations on a longer stream fail as too large to judge. */
export const JUDGE_LIMIT_BYTES: number = 64 * 1024 * 1024

/**
 * Collects one stream: all of it up to `JUDGE_LIMIT_BYTES` (expectations judge the whole
 * stream, never a cut one), and beyond that only its head and tail for display.
 */
export class OutputCapture {
  #chunks: Buffer[] = []
  #head: Buffer | undefined
  #tail: Buffer[] = []
  #tailSize = 0
  bytes: number = 0

  push(chunk: Buffer): void {
    if (!chunk.length) return
    this.bytes += chunk.length
    if (!this.#head) {
      this.#chunks.push(chunk)
      if (this.bytes <= JUDGE_LIMIT_BYTES) return
      // Past the judging bound: keep only what the excerpt shows.
      // Copies: a view would keep the whole 64 MiB alive.
      const all = this.#joined()
      this.#chunks = []
      this.#head = Buffer.from(all.subarray(0, OUTPUT_CAP_BYTES / 2))
      chunk = Buffer.from(all.subarray(all.length - OUTPUT_CAP_BYTES / 2))
    }
    this.#tail.push(chunk)
    this.#tailSize += chunk.length
    while (this.#tailSize - this.#tail[0]!.length >= OUTPUT_CAP_BYTES / 2) this.#tailSize -= this.#tail.shift()!.length
  }

  /** Whether the excerpt leaves bytes out. */
  get truncated(): boolean {
    return this.bytes > OUTPUT_CAP_BYTES
  }

  /** The chunks as one buffer, joined once. */
  #joined(): Buffer {
    if (this.#chunks.length !== 1) this.#chunks = [Buffer.concat(this.#chunks)]
    return this.#chunks[0]!
  }

  /** The whole stream, or `undefined` past the judging bound. */
  whole(): string | undefined {
    return this.#head ? undefined : this.#joined().toString('utf8')
  }

  /** The stream, or its first and last half-MiB with a note of what is left out between. */
  excerpt(whole: string | undefined = this.whole()): string {
    if (!this.truncated && whole !== undefined) return whole
    const half = OUTPUT_CAP_BYTES / 2
    const all = this.#head ? undefined : this.#joined()
    const head = this.#head ?? all!.subarray(0, half)
    const tailAll = all ?? Buffer.concat(this.#tail)
    const tail = tailAll.subarray(Math.max(0, tailAll.length - half))
    return `${head.toString('utf8')}\n[… ${this.bytes - head.length - tail.length} bytes not shown …]\n${tail.toString('utf8')}`
  }
}

/** Assembles a result from the captured streams. */
export function execResult(stdout: OutputCapture, stderr: OutputCapture, outcome: { exitCode: number; startedAt: number; timedOut: boolean; aborted: boolean }): ExecResult {
  const whole = { stdout: stdout.whole(), stderr: stderr.whole() }
  return {
    exitCode: outcome.exitCode,
    stdout: stdout.excerpt(whole.stdout),
    stderr: stderr.excerpt(whole.stderr),
    truncated: { stdout: stdout.truncated, stderr: stderr.truncated },
    bytes: { stdout: stdout.bytes, stderr: stderr.bytes },
    whole,
    durationMs: performance.now() - outcome.startedAt,
    timedOut: outcome.timedOut,
    aborted: outcome.aborted,
  }
}
