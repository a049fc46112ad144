import { createRequire } from 'node:module'
import type { RE2JS } from 're2js'

let re2js: typeof RE2JS | undefined

/**
 * RE2JS, loaded with the first pattern: its module and Unicode tables cost several ms at start-up,
 * which a run whose tests judge no output (a `clnrm run --reuse` of plain steps) need not pay.
 * `createRequire` (its CommonJS build) keeps `compilePattern` synchronous; Node, Bun and Deno all
 * resolve it from node_modules.
 */
function re2(): typeof RE2JS {
  re2js ??= (createRequire(import.meta.url)('re2js') as { RE2JS: typeof RE2JS }).RE2JS
  return re2js
}

/**
 * A compiled user pattern. Patterns use RE2 syntax, as upstream clnrm's Rust `regex` does, and
 * match in time linear in the text: a pattern such as `^(a+)+$` cannot stall the event loop.
 */
export interface CompiledPattern {
  readonly source: string
  /** Whether the pattern matches anywhere in the text. */
  test: (text: string) => boolean
  /** The text of the first match, or `undefined`. */
  firstMatch: (text: string) => string | undefined
}

/**
 * Compiled patterns by source, least recently used first: the dev loop judges the same patterns
 * on every save, and checking a file compiles its patterns once more to report bad ones. Sized
 * for thousands of test files (a pattern compiles to a few kilobytes); with the former limit of
 * 1000, dropping the oldest, a project with more patterns than that compiled each one again on
 * every pass over its tests.
 */
const cache = new Map<string, CompiledPattern>()
const CACHE_LIMIT = 10_000

/**
 * Compiles a user pattern (RE2 syntax). As in upstream clnrm, `^` and `$` anchor the whole
 * text unless the pattern turns on `(?m)`; inline flags `(?i)`, `(?m)`, `(?s)` (also scoped,
 * `(?i:…)`) work anywhere. Compiled once per source. Throws SyntaxError with a hint for
 * constructs RE2 leaves out (backreferences, lookaround).
 */
export function compilePattern(pattern: string): CompiledPattern {
  let compiled = cache.get(pattern)
  if (compiled) {
    // Most recently used last, so the limit drops patterns no test uses any more.
    cache.delete(pattern)
    cache.set(pattern, compiled)
    return compiled
  }
  let re: RE2JS
  try {
    re = re2().compile(pattern)
  }
  catch (error) {
    throw new SyntaxError(describeSyntaxError(pattern, error as Error))
  }
  compiled = {
    source: pattern,
    test: text => re.test(text),
    firstMatch: (text) => {
      const matcher = re.matcher(text)
      return matcher.find() ? matcher.group() ?? '' : undefined
    },
  }
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!)
  cache.set(pattern, compiled)
  return compiled
}

/** Returns why a pattern does not compile (with a hint for unsupported constructs), else `undefined`. */
export function patternError(pattern: string): string | undefined {
  try {
    compilePattern(pattern)
    return undefined
  }
  catch (error) {
    return (error as Error).message
  }
}

/**
 * When a pattern without `(?m)` fails only because `^`/`$` anchor the whole text, says so:
 * earlier clnrm releases matched them at every line.
 */
export function lineAnchorHint(pattern: string, text: string): string | undefined {
  if (!/[$^]/.test(pattern) || /^\(\?[a-z]*m/.test(pattern)) return undefined
  let lines: CompiledPattern
  try {
    lines = compilePattern(`(?m)${pattern}`)
  }
  catch {
    return undefined
  }
  return lines.test(text) ? `would match with (?m) (^ and $ at each line): write ${JSON.stringify(`(?m)${pattern}`)}` : undefined
}

function describeSyntaxError(pattern: string, error: Error): string {
  const reason = error.message.replace(/^error parsing regexp: /, '')
  if (/\\[1-9]/.test(pattern)) return `${reason} (backreferences such as \\1 are not supported: patterns use RE2 syntax, which matches in linear time)`
  if (/\(\?<?[=!]/.test(pattern)) return `${reason} (lookahead and lookbehind are not supported: patterns use RE2 syntax, which matches in linear time)`
  return reason
}
