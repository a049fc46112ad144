/**
 * Span-name globs: `*` matches any run of characters (dots included), `?` one character,
 * everything else itself. Compiled once per pattern: the dev loop evaluates on every settle tick.
 */
const compiled = new Map<string, RegExp>()
/** Patterns come from test files; a bound keeps a long dev session's edits from growing the cache forever. */
const MAX_CACHED = 2_000

/** The regular expression a glob compiles to (cached). */
export function compileGlob(glob: string): RegExp {
  let re = compiled.get(glob)
  if (!re) {
    if (compiled.size >= MAX_CACHED) compiled.clear()
    const source = glob.replace(/[.+^${}()|[\]\\*?]/g, c => (c === '*' ? '.*' : c === '?' ? '.' : `\\${c}`))
    compiled.set(glob, re = new RegExp(`^${source}$`, 's'))
  }
  return re
}

/** True when `name` matches `glob` as a whole. */
export function matchesGlob(glob: string, name: string): boolean {
  return compileGlob(glob).test(name)
}

/** True when the pattern has glob characters (a plain name can be looked up directly). */
export function isGlob(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?')
}
