import { createColors } from 'picocolors'

type Colors = ReturnType<typeof createColors>

/** Where a command writes and what it may look at: the process at the edge, buffers in tests. */
export interface CliContext {
  cwd: string
  env: Readonly<Record<string, string | undefined>>
  stdout: (text: string) => void
  stderr: (text: string) => void
  /** Whether stdout is a terminal (live progress, colors). */
  isTTY: boolean
}

/** A command's context plus its resolved colors. */
export interface CommandContext extends CliContext {
  c: Colors
}

/** Colors follow NO_COLOR (https://no-color.org), FORCE_COLOR, `--no-color` and whether stdout is a TTY. */
export function resolveColors(ctx: CliContext, noColorFlag: boolean): Colors {
  const { NO_COLOR, FORCE_COLOR } = ctx.env
  const enabled = !noColorFlag && !NO_COLOR && (FORCE_COLOR ? FORCE_COLOR !== '0' : ctx.isTTY)
  return createColors(enabled)
}

/** The real process: the only place the CLI touches `process` streams. */
export function processContext(): CliContext {
  return {
    cwd: process.cwd(),
    env: process.env,
    stdout: text => void process.stdout.write(text),
    stderr: text => void process.stderr.write(text),
    isTTY: Boolean(process.stdout.isTTY),
  }
}
