/**
 * The base of every error clnrm throws on purpose: a stable `code` (`CLNRM_…`) that reports, the
 * dev page and the Vite overlay key on, a `hint` that says what to do next, and a message in plain
 * words. The message carries no `[clnrm]` prefix: each view (terminal, Vite's logger, JSON) adds
 * its own framing, so nothing has to strip it again.
 */
export class ClnrmError extends Error {
  override name = 'ClnrmError'
  readonly code: string
  readonly hint: string | undefined
  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, 'cause' in options ? { cause: options.cause } : undefined)
    this.code = code
    this.hint = options.hint
  }
}

/** Whether a value is a `ClnrmError` (also one from another copy of this module: by its code). */
export function isClnrmError(error: unknown): error is ClnrmError {
  if (error instanceof ClnrmError) return true
  const code = (error as { code?: unknown } | null)?.code
  return error instanceof Error && typeof code === 'string' && code.startsWith('CLNRM_')
}
