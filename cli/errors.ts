/** A usage error: bad flags or arguments, or paths that match nothing. Exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError'
  readonly hint: string | undefined
  constructor(message: string, hint?: string) {
    super(message)
    this.hint = hint
  }
}

/** Exit codes: 0 ok, 1 a test or validation failure, 2 a usage or config error. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const
