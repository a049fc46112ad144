import { createColors } from 'picocolors'
import type { Interrupt } from './errors.ts'
import { INTERRUPT_EXIT } from './errors.ts'

type Colors = ReturnType<typeof createColors>

/** Interruptions from outside the command: signals, and a reader that closed stdout. */
export interface Interrupts {
  /** Calls `handler` once, on the first interrupt. Returns an unsubscribe. */
  on: (handler: (reason: Interrupt) => void) => () => void
  /** Reports an interrupt the command saw itself (Ctrl-C read as a key in raw mode). */
  raise: (reason: Interrupt) => void
  /** Best-effort cleanup for a forced exit (a second Ctrl-C): restoring the terminal. Returns an unsubscribe. */
  onForce: (hook: () => void) => () => void
}

/** Where a command writes and what it may look at: the process at the edge, buffers in tests. */
export interface CliContext {
  cwd: string
  env: Readonly<Record<string, string | undefined>>
  stdout: (text: string) => void
  stderr: (text: string) => void
  /** Whether stdout is a terminal (colors of what goes there). */
  isTTY: boolean
  /** Whether stderr is a terminal: live progress lines are drawn there. Absent: as stdout. */
  stderrIsTTY?: boolean
  /** The terminal's width now (it changes on resize); absent or 0 when unknown (then `COLUMNS`, else 80). */
  columns?: () => number | undefined
  /** Signals and a closed stdout; absent in-process, where nothing interrupts. */
  interrupts?: Interrupts
}

/** A command's context plus its resolved colors. */
export interface CommandContext extends CliContext {
  c: Colors
  /** Colors of progress written to stderr, by stderr's own terminal (same flags and env). Absent: `c`. */
  stderrColors?: Colors
}

/** Colors follow NO_COLOR (https://no-color.org), FORCE_COLOR, `--no-color` and whether stdout is a TTY. */
export function resolveColors(ctx: CliContext, noColorFlag: boolean): Colors {
  const { NO_COLOR, FORCE_COLOR } = ctx.env
  const enabled = !noColorFlag && !NO_COLOR && (FORCE_COLOR ? FORCE_COLOR !== '0' : ctx.isTTY)
  return createColors(enabled)
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const

/**
 * The real process: the only place the CLI touches `process` streams and signals. A closed stdout
 * or stderr (`clnrm run | head -1`, a closed terminal) drops later writes instead of crashing the
 * cleanup; the first signal goes to the running command, which cleans up and exits 128+n; a second
 * one forces the exit at once, as Vite does.
 */
export function processContext(): CliContext {
  const closed = { stdout: false, stderr: false }
  const handlers = new Set<(reason: Interrupt) => void>()
  const forceHooks = new Set<() => void>()
  let first: Interrupt | undefined

  const raise = (reason: Interrupt): void => {
    if (first === undefined) {
      first = reason
      for (const handler of [...handlers]) handler(reason)
      return
    }
    // A closed stdout after a signal, or the reverse, is not the user insisting.
    if (reason === 'EPIPE' || first === 'EPIPE') return
    for (const hook of forceHooks) {
      try {
        hook()
      }
      catch {}
    }
    write('stderr', '\nclnrm: forced exit; containers not yet removed are removed by the next clnrm start\n')
    process.exit(INTERRUPT_EXIT[first])
  }
  const onSignal = (signal: NodeJS.Signals): void => raise(signal as Interrupt)
  const write = (stream: 'stdout' | 'stderr', text: string): void => {
    if (closed[stream]) return
    try {
      process[stream].write(text)
    }
    catch {
      closed[stream] = true
    }
  }
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    closed.stdout = true
    if (error.code === 'EPIPE') raise('EPIPE')
  })
  process.stderr.on('error', () => void (closed.stderr = true))

  return {
    cwd: process.cwd(),
    env: process.env,
    stdout: text => write('stdout', text),
    stderr: text => write('stderr', text),
    isTTY: Boolean(process.stdout.isTTY),
    // `clnrm run > report.txt` in a terminal still gets live progress; `2> log` gets plain lines.
    stderrIsTTY: Boolean(process.stderr.isTTY),
    // Progress lines go to stderr: its width first.
    columns: () => process.stderr.columns || process.stdout.columns,
    interrupts: {
      on(handler) {
        // Persistent listeners, not once(), and only while a command listens: testcontainers loads
        // signal-exit, which kills the process on a signal when it is the last listener left.
        if (handlers.size === 0) for (const signal of SIGNALS) process.on(signal, onSignal)
        handlers.add(handler)
        // Interrupted before the command listened (stdout closed while it printed its first lines).
        if (first !== undefined) {
          const reason = first
          queueMicrotask(() => handlers.has(handler) && handler(reason))
        }
        return () => {
          handlers.delete(handler)
          if (handlers.size === 0) for (const signal of SIGNALS) process.off(signal, onSignal)
        }
      },
      raise,
      onForce(hook) {
        forceHooks.add(hook)
        return () => void forceHooks.delete(hook)
      },
    },
  }
}
