/**
 * Tables a template needs before it renders: upstream reads `[vars]` (and the matrix) from the
 * template's own text, so a file can declare the data its tags use. These helpers find such a
 * table in the template text, with its sub-tables (`[vars.db]`), keeping its line numbers.
 */

/** A table header line: `[name]`, `[a.b]`, `[[a]]`, with an optional comment. */
const HEADER_RE = /^[ \t]*\[(\[)?[ \t]*([A-Za-z0-9_."' -]+?)[ \t]*\]\]?[ \t]*(?:#.*)?$/

/**
 * The text of the top-level table `[name]` and its sub-tables, with every other line blanked, so
 * a render or parse error in it reports the line the user wrote. Undefined when there is none.
 */
export function literalTableText(source: string, name: string): string | undefined {
  // Most texts have no such table (a load asks for three): look for its header before splitting
  // the text into lines (the split, the blanked copy and a match per line were a tenth of what
  // loading a template allocated).
  if (!hasHeader(source, name)) return undefined
  const lines = source.split('\n')
  let inside = false
  let found = false
  const kept = lines.map((line) => {
    const header = HEADER_RE.exec(line)
    if (header) {
      const key = header[2]!.replace(/["' ]/g, '')
      inside = !header[1] && (key === name || key.startsWith(`${name}.`))
      found ||= inside
    }
    return inside ? line : ''
  })
  return found ? kept.join('\n') : undefined
}

/** Where a line may start with a table header (`^` also matches after a lone \r: such a match only looks further). */
const HEADER_START_RE = /^[ \t]*\[/gm

/** Whether a line of `source` (split at \n) is the header `[name]` or `[name.…]`, as `literalTableText` reads headers. */
function hasHeader(source: string, name: string): boolean {
  HEADER_START_RE.lastIndex = 0
  for (let start = HEADER_START_RE.exec(source); start; start = HEADER_START_RE.exec(source)) {
    const end = source.indexOf('\n', start.index)
    const header = HEADER_RE.exec(end === -1 ? source.slice(start.index) : source.slice(start.index, end))
    const key = header && !header[1] ? header[2]!.replace(/["' ]/g, '') : undefined
    if (key !== undefined && (key === name || key.startsWith(`${name}.`))) return true
    if (end === -1) break
    HEADER_START_RE.lastIndex = end
  }
  return false
}

/** A matrix's combinations, in the order written: `{ os: ["a","b"], db: ["x"] }` → `[{os:a,db:x},{os:b,db:x}]`. */
export function matrixCombinations(matrix: Readonly<Record<string, readonly string[]>>): Array<Record<string, string>> {
  let combinations: Array<Record<string, string>> = [{}]
  for (const [key, values] of Object.entries(matrix)) {
    combinations = combinations.flatMap(combination => values.map(value => ({ ...combination, [key]: value })))
  }
  return combinations
}

/** How a combination is named after the test's name: `[os=alpine, db=pg]`. */
export function combinationLabel(combination: Readonly<Record<string, string>>): string {
  return `[${Object.entries(combination).map(([key, value]) => `${key}=${value}`).join(', ')}]`
}

const DETERMINISM_RE = /^\s*\[determinism\]\s*(?:#.*)?$([\s\S]*?)(?=^\s*\[|$(?![\s\S]))/m

/**
 * Reads a literal `[determinism]` table from the template text before rendering, since the
 * template's own helpers need the seed and clock. Values produced by tags are not seen.
 */
export function literalDeterminism(source: string): { seed?: number; freezeClock?: string } {
  const body = DETERMINISM_RE.exec(source)?.[1]
  if (!body) return {}
  const seed = /^\s*seed\s*=\s*(-?\d+)\s*(?:#.*)?$/m.exec(body)?.[1]
  const clock = /^\s*freeze_clock\s*=\s*"?([0-9][0-9T:.+\-Zz ]+?)"?\s*(?:#.*)?$/m.exec(body)?.[1]
  const result: { seed?: number; freezeClock?: string } = {}
  if (seed !== undefined) result.seed = Number(seed)
  if (clock !== undefined && !Number.isNaN(Date.parse(clock))) result.freezeClock = new Date(clock).toISOString()
  return result
}

/** A parsed TOML table, or an empty one for anything else. */
export const asTable = (value: unknown): Record<string, unknown> =>
  value && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date) ? value as Record<string, unknown> : {}

/**
 * Upstream's `[template]` data for a render: `[template.matrix]` (data for loops, `matrix.<key>`)
 * and `[template.env_defaults]` (what `env()` reads when a variable is unset). A `[matrix]`
 * combination is `matrix` instead (both at once is a located conflict of the rendered file).
 */
export function upstreamTemplateData(table: unknown, combination: Readonly<Record<string, string>> | undefined): { data: Record<string, unknown>; envDefaults?: Record<string, string> } {
  const upstream = asTable(table)
  const defaults = Object.entries(asTable(upstream.env_defaults))
  const matrix = combination ?? upstream.matrix
  return {
    data: matrix === undefined ? {} : { matrix },
    ...(defaults.length > 0 && { envDefaults: Object.fromEntries(defaults.map(([key, value]) => [key, String(value)])) }),
  }
}
