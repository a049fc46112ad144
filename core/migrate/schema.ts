import { parse } from 'smol-toml'
import type { Diagnostic } from '../format/diagnostics.ts'
import type { MigrationTodo } from './tera.ts'

/** Checks a test file's text as `clnrm validate` would (the real validator, injected by the caller). */
export type SchemaChecker = (file: string, text: string) => readonly Diagnostic[]

/** A key upstream declared that the migration rewrote or turned into a `# not checked:` comment. */
export interface SchemaChange {
  /** 1-based, in the migrated text (comments keep every line where it was). */
  line: number
  column: number
  kind: 'renamed' | 'not-checked'
  /** What was written, e.g. `dashboard_renders_correctly = true`, or `environment → env`. */
  text: string
}

/** The migrated text, what changed, and what is left for the user. */
export interface SchemaMigration {
  output: string
  changes: SchemaChange[]
  todos: MigrationTodo[]
}

/** The prefix of every line a claim nothing checks is moved behind. */
export const NOT_CHECKED = '# not checked: '

// Codes whose key upstream dropped without a word: the claim becomes a visible comment.
const SILENT_CODES = new Set(['CLNRM_UNKNOWN_KEY', 'CLNRM_NOT_SUPPORTED'])
const SERVICE_TABLES = new Set(['services', 'service'])
// A validation round comments at least one key, so this bounds files with many nested tables.
const MAX_ROUNDS = 50

/**
 * Applies the schema fixes upstream's files need, driven by the real validator's diagnostics
 * (so it follows the format as tables get implemented): a service's `environment` becomes `env`
 * (merged into an `env` written beside it), a `plugin` label the format refuses becomes
 * `generic_container` when the service has an image, and every key refused as unknown or not
 * supported becomes a `# not checked:` comment, line by line. Line numbers never move.
 */
export function migrateSchema(file: string, text: string, check: SchemaChecker): SchemaMigration {
  const changes: SchemaChange[] = []
  const todos: MigrationTodo[] = []
  let lines = text.split('\n')
  const handled = new Set<string>()
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const diagnostics = check(file, lines.join('\n')).filter(d => d.severity === 'error' && d.path && d.mapped !== false)
    let changed = false
    // Bottom-up, so an edit never moves the place of the next one on the same line.
    const ordered = [...diagnostics].sort((a, b) => b.line - a.line || b.column - a.column)
    for (const d of ordered) {
      const path = d.path!
      const key = `${d.code} ${path.join('\0')} ${d.line}`
      if (handled.has(key)) continue
      handled.add(key)
      const last = path.at(-1)
      const inService = path.length === 3 && SERVICE_TABLES.has(String(path[0]))
      if (d.code === 'CLNRM_UNKNOWN_KEY' && inService && last === 'environment') {
        const next = renameEnvironment(lines, d, path, changes)
        if (next) {
          lines = next
          changed = true
          continue
        }
      }
      if ((d.code === 'CLNRM_INVALID_VALUE' || d.code === 'CLNRM_NOT_SUPPORTED') && inService && last === 'plugin') {
        if (relabelPlugin(lines, d, path, text, changes, todos)) changed = true
        continue
      }
      // Upstream's [assertions] is a free-form map nothing read: one clnrm cannot judge here (a
      // span check in a test that collects none) is a claim like any other.
      const claim = SILENT_CODES.has(d.code) || (path.length === 2 && path[0] === 'assertions')
      if (claim && commentOut(lines, d.line - 1, d.column - 1, changes)) changed = true
    }
    if (!changed) break
  }
  lines = collectStdoutSpans(file, lines, check, changes, todos)
  changes.sort((a, b) => a.line - b.line || a.column - b.column)
  return { output: lines.join('\n'), changes, todos }
}

// Upstream's `[otel] exporter = "stdout"` says the spans its expectations judge come on the
// test's stdout. With a single step or scenario that stdout is certain: it gets
// `artifacts.collect = ["spans:default"]` (one line inserted; the places after it move by one),
// so the span checks judge it instead of passing unseen. With several, it is a located TODO.
function collectStdoutSpans(file: string, lines: string[], check: SchemaChecker, changes: SchemaChange[], todos: MigrationTodo[]): string[] {
  const d = check(file, lines.join('\n')).find(x => x.code === 'CLNRM_MISSING_KEY' && x.path?.[0] === 'otel' && x.path[1] === 'exporter' && x.mapped !== false)
  if (!d) return lines
  const headers = lines.flatMap((line, i) => {
    const header = isHeader(line) ? headerPath(line) : undefined
    return header?.array && header.path.length === 1 && (header.path[0] === 'steps' || header.path[0] === 'scenario') ? [i] : []
  })
  const nested = lines.some(line => /^\s*\[\[\s*scenario\s*\.\s*steps\s*\]\]/.test(line))
  if (headers.length !== 1 || nested || lines.slice(headers[0]! + 1, sectionEnd(lines, headers[0]!) + 1).some(l => /^\s*artifacts\b/.test(l))) {
    todos.push({ line: d.line, column: d.column, message: '[otel] exporter = "stdout": add artifacts.collect = ["spans:default"] to the step whose stdout carries the spans', source: lines[d.line - 1] ?? '' })
    return lines
  }
  const at = headers[0]! + 1
  const out = [...lines.slice(0, at), 'artifacts.collect = ["spans:default"]', ...lines.slice(at)]
  for (const change of changes) if (change.line > at) change.line++
  for (const todo of todos) if (todo.line > at) todo.line++
  changes.push({ line: at + 1, column: 1, kind: 'renamed', text: `artifacts.collect = ["spans:default"] added: [otel] exporter = "stdout" reads the only ${lines[at - 1]!.trim()}'s stdout as spans` })
  return out
}

/** Whether a parsed TOML document is a test file (upstream's shapes), not some other .toml. */
export function looksLikeTestFile(doc: Record<string, unknown>): boolean {
  const test = doc.test as Record<string, unknown> | undefined
  return Boolean(doc.meta || test?.metadata || doc.steps || doc.scenario)
}

function isHeader(line: string): boolean {
  return /^\s*\[/.test(line)
}

// The last line of the entry (key = value) that starts on `start`: the first prefix of lines that
// parses as TOML. Multi-line arrays and strings end where the parser says.
function entryEnd(lines: readonly string[], start: number): number {
  for (let end = start; end < lines.length && end < start + 400; end++) {
    if (end > start && isHeader(lines[end]!) && !/^\s*\[\s*["'\d[{]/.test(lines[end]!)) break
    try {
      parse(lines.slice(start, end + 1).join('\n'))
      return end
    }
    catch {
      // not complete yet
    }
  }
  return start
}

// The last line of the table a header opens: up to the next header that is not inside a value.
function sectionEnd(lines: readonly string[], header: number): number {
  let end = header
  for (let i = header + 1; i < lines.length; i++) {
    const line = lines[i]!
    if (isHeader(line)) break
    if (/^\s*(#|$)/.test(line)) continue
    i = entryEnd(lines, i)
    end = i
  }
  return end
}

/** A table header's key path and whether it opens an array element: `[[a."b.c"]]` → a, b.c. */
export function headerPath(line: string): { path: string[]; array: boolean } | undefined {
  const m = /^\s*(\[\[?)(.*?)(\]\]?)\s*(?:#.*)?$/.exec(line)
  if (!m) return undefined
  const path: string[] = []
  const body = m[2]!
  let part = ''
  let quote: string | undefined
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!
    if (quote) {
      if (ch === '\\' && quote === '"') part += body[++i] ?? ''
      else if (ch === quote) quote = undefined
      else part += ch
    }
    else if (ch === '"' || ch === '\'') quote = ch
    else if (ch === '.') {
      path.push(part.trim())
      part = ''
    }
    else part += ch
  }
  path.push(part.trim())
  return { path, array: m[1] === '[[' }
}

const extendsPath = (path: readonly string[], prefix: readonly string[]): boolean =>
  path.length > prefix.length && prefix.every((p, i) => path[i] === p)

// A table and what belongs to it: an array element `[[p]]` owns the sub-tables that follow it up
// to the next header outside p; a table `[p]` owns every `[p.…]` in the file. Commenting the
// header alone would leave those sub-tables to redefine it.
function commentTable(lines: string[], row: number): void {
  const own = headerPath(lines[row]!)
  commentLines(lines, row, sectionEnd(lines, row))
  if (!own) return
  let contiguous = true
  for (let i = row + 1; i < lines.length; i++) {
    if (!isHeader(lines[i]!)) continue
    const header = headerPath(lines[i]!)
    const under = header !== undefined && extendsPath(header.path, own.path)
    if (!under) contiguous = false
    if (under && (contiguous || !own.array)) commentLines(lines, i, sectionEnd(lines, i))
  }
}

function commentLines(lines: string[], from: number, to: number, prefix = NOT_CHECKED): void {
  for (let i = from; i <= to; i++) if (lines[i]!.trim() !== '' && !lines[i]!.startsWith(prefix)) lines[i] = `${prefix}${lines[i]}`
}

// Comments out the key the diagnostic points at: a whole table (header), a whole entry, or one
// `key = value` inside an inline table, moved to a comment at the end of its line.
function commentOut(lines: string[], row: number, col: number, changes: SchemaChange[]): boolean {
  const line = lines[row]
  if (line === undefined || line.startsWith(NOT_CHECKED)) return false
  const indent = line.length - line.trimStart().length
  if (isHeader(line)) {
    changes.push({ line: row + 1, column: 1, kind: 'not-checked', text: line.trim() })
    commentTable(lines, row)
    return true
  }
  if (col <= indent) {
    const end = entryEnd(lines, row)
    changes.push({ line: row + 1, column: 1, kind: 'not-checked', text: end > row ? `${line.trim()} …` : line.trim() })
    commentLines(lines, row, end)
    return true
  }
  const inline = inlineEntry(line, col)
  if (!inline) return false
  const before = line.slice(0, inline.start).replace(/,\s*$/, '')
  const after = line.slice(inline.end).replace(/^\s*,\s*/, before.trimEnd().endsWith('{') ? '' : ', ')
  const joined = `${before}${before.trimEnd().endsWith('{') || after.startsWith(' ') || after.startsWith(',') || after.startsWith('}') ? '' : ' '}${after}`
  lines[row] = `${joined.replace(/,\s*}/, ' }').replace(/\{\s*,\s*/, '{ ')} ${NOT_CHECKED}${inline.text}`
  changes.push({ line: row + 1, column: col, kind: 'not-checked', text: inline.text })
  return true
}

// `key = value` starting at col (0-based) inside an inline table: its extent, found by scanning
// the value to the comma or brace that closes it at depth 0.
function inlineEntry(line: string, col: number): { start: number; end: number; text: string } | undefined {
  const eq = line.indexOf('=', col)
  if (eq < 0) return undefined
  let depth = 0
  let quote: string | undefined
  let i = eq + 1
  for (; i < line.length; i++) {
    const ch = line[i]!
    if (quote) {
      if (ch === '\\' && quote === '"') i++
      else if (ch === quote) quote = undefined
      continue
    }
    if (ch === '"' || ch === '\'') quote = ch
    else if (ch === '[' || ch === '{') depth++
    else if (ch === ']' || ch === '}') {
      if (depth === 0) break
      depth--
    }
    else if (ch === ',' && depth === 0) break
  }
  return { start: col, end: i, text: line.slice(col, i).trim() }
}

// `environment` → `env` when the service has no env; merged into a written `env` otherwise.
function renameEnvironment(lines: string[], d: Diagnostic, path: Diagnostic['path'] & {}, changes: SchemaChange[]): string[] | undefined {
  const row = d.line - 1
  const col = d.column - 1
  const line = lines[row]
  if (line === undefined || line.slice(col, col + 'environment'.length) !== 'environment') return undefined
  let doc: Record<string, Record<string, Record<string, unknown>>>
  try {
    doc = parse(lines.join('\n')) as typeof doc
  }
  catch {
    return undefined
  }
  const service = doc[String(path[0])]?.[String(path[1])]
  if (!service) return undefined
  if (service.env === undefined) {
    lines[row] = `${line.slice(0, col)}env${line.slice(col + 'environment'.length)}`
    changes.push({ line: d.line, column: d.column, kind: 'renamed', text: `${path.slice(0, 2).join('.')}.environment → env` })
    return lines
  }
  // Both written: upstream used `env` and dropped `environment`; env wins where both set a name.
  const extra = Object.entries(service.environment as Record<string, unknown>).filter(([k]) => !(k in (service.env as object)))
  const out = [...lines]
  const merged = '# merged into env: '
  if (isHeader(line)) commentLines(out, row, sectionEnd(out, row), merged)
  else commentLines(out, row, col <= line.length - line.trimStart().length ? entryEnd(out, row) : row, merged)
  const envAt = out.findIndex(l => new RegExp(`^\\s*\\[\\s*${path[0]}\\.${path[1]}\\.env\\s*\\]`).test(l))
  const entries = extra.map(([k, v]) => `${/^[\w-]+$/.test(k) ? k : JSON.stringify(k)} = ${JSON.stringify(String(v))}`)
  if (envAt >= 0) out.splice(envAt + 1, 0, ...entries)
  else {
    const inlineAt = out.findIndex((l, i) => i !== row && /^\s*env\s*=\s*\{.*\}\s*(#.*)?$/.test(l))
    if (inlineAt < 0) return undefined
    const merged = { ...Object.fromEntries(extra), ...(service.env as object) }
    out[inlineAt] = `env = { ${Object.entries(merged).map(([k, v]) => `${/^[\w-]+$/.test(k) ? k : JSON.stringify(k)} = ${JSON.stringify(String(v))}`).join(', ')} }`
  }
  changes.push({ line: d.line, column: d.column, kind: 'renamed', text: `${path.slice(0, 2).join('.')}.environment merged into env` })
  return out
}

// A plugin label clnrm refuses (otel_collector, surrealdb…): upstream's generic plugins all start
// the image, so with an image the service is a generic container; without one it is not certain.
function relabelPlugin(lines: string[], d: Diagnostic, path: Diagnostic['path'] & {}, original: string, changes: SchemaChange[], todos: MigrationTodo[]): boolean {
  const row = d.line - 1
  const line = lines[row]
  if (line === undefined) return false
  let doc: Record<string, Record<string, Record<string, unknown>>>
  try {
    doc = parse(lines.join('\n')) as typeof doc
  }
  catch {
    return false
  }
  const service = doc[String(path[0])]?.[String(path[1])]
  // The diagnostic points at the value.
  const valueAt = d.column - 1
  const quoted = /^("[^"]*"|'[^']*')/.exec(line.slice(valueAt))?.[1]
  if (!service || !quoted) return false
  if (typeof service.image !== 'string') {
    if (!todos.some(t => t.line === d.line)) todos.push({ line: d.line, column: d.column, message: `plugin ${quoted} has no image here: choose the image that runs it`, source: original.split('\n')[row] ?? '' })
    return false
  }
  const start = valueAt
  lines[row] = `${line.slice(0, start)}"generic_container"${line.slice(start + quoted.length)}${line.includes('#') ? '' : `  # upstream plugin ${quoted}`}`
  changes.push({ line: d.line, column: d.column, kind: 'renamed', text: `${path.slice(0, 2).join('.')}.plugin ${quoted} → "generic_container"` })
  return true
}
