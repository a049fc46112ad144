// clnrm's earlier (Rust) users write inline flag groups such as `(?i)`; JavaScript has no
// leading inline flags, so we translate a leading group into RegExp flags.
const LEADING_FLAGS_RE = /^\(\?([imsu]+)\)/

/**
 * Compiles a user pattern. Patterns match against command output, so `^` and `$` match at
 * line boundaries (the `m` flag) and `hello$` matches `"hello\n"`. A leading `(?i)`, `(?s)`
 * flag group is accepted. Throws SyntaxError.
 */
export function compilePattern(pattern: string): RegExp {
  const match = LEADING_FLAGS_RE.exec(pattern)
  if (!match) return new RegExp(pattern, 'm')
  const flags = [...new Set(`m${match[1]!}`)].join('')
  return new RegExp(pattern.slice(match[0].length), flags)
}

/** Returns the engine's reason when a pattern does not compile, else `undefined`. */
export function patternError(pattern: string): string | undefined {
  try {
    compilePattern(pattern)
    return undefined
  }
  catch (error) {
    return (error as Error).message
  }
}
