/** A usage error: bad flags or arguments, or paths that match nothing. Exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError'
  readonly hint: string | undefined
  constructor(message: string, hint?: string) {
    super(message)
    this.hint = hint
  }
}

/**
 * Exit codes, the same in every command (README's CLI section and each `--help` show this table):
 * 0 everything passed; 1 a test failed or a test file is invalid; 2 usage, `clnrm.toml` or engine
 * errors; 70 an internal error (a bug: EX_SOFTWARE of sysexits.h); 128 + n after signal n.
 */
export const EXIT = { ok: 0, failure: 1, usage: 2, internal: 70 } as const

/** Why a command was asked to stop from outside: a signal, or a reader that closed stdout. */
export type Interrupt = 'SIGINT' | 'SIGTERM' | 'SIGHUP' | 'EPIPE'

/** The exit code after an interrupt, as a shell reports a process killed by that signal (EPIPE: SIGPIPE). */
export const INTERRUPT_EXIT: Readonly<Record<Interrupt, number>> = { SIGHUP: 129, SIGINT: 130, EPIPE: 141, SIGTERM: 143 }

/** The exit-code table printed by `--help`. */
export const EXIT_CODES_HELP: string = [
  'Exit codes:',
  '  0    every test passed (or, for other commands, nothing was wrong)',
  '  1    a test failed, or a test file is invalid',
  '  2    usage error, invalid clnrm.toml, or no Docker engine',
  '  70   internal error (a bug; DEBUG=clnrm prints the stack)',
  '  129  SIGHUP, 130 Ctrl-C (SIGINT), 141 stdout closed, 143 SIGTERM; containers are removed first',
].join('\n')
