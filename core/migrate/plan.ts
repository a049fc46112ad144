import { basename, dirname, join, relative, sep } from 'node:path'
import { parse } from 'smol-toml'
import { findTemplateMarks } from '../format/template-marks.ts'
import type { SchemaChange, SchemaChecker } from './schema.ts'
import { looksLikeTestFile, migrateSchema } from './schema.ts'
import type { MigrationTodo } from './tera.ts'
import { renameTeraFile, translateTera } from './tera.ts'

/** A file offered to the migration. */
export interface MigrationInput {
  /** Absolute path. */
  path: string
  text: string
}

/** What the migration does to one file: the text it writes to `to`, replacing `from`. */
export interface MigrationStep {
  from: string
  to: string
  output: string
  /** What was left behind a `TODO`, located in `from`. */
  todos: MigrationTodo[]
  /** Keys rewritten or turned into `# not checked:` comments, located in `output`. */
  changes: SchemaChange[]
  /** Why the file is migrated: Tera, upstream's project file, or only the schema fixes (in place). */
  reason: 'tera-file' | 'tera-in-toml' | 'project-file' | 'schema'
}

/** Options of `planMigration`. */
export interface MigrationOptions {
  /**
   * The real validator, for the schema fixes of test files (see `migrateSchema`). Without it only
   * Tera is translated.
   */
  check?: SchemaChecker
}

/** Upstream's project file, and ours. */
export const UPSTREAM_PROJECT_FILE = 'cleanroom.toml'

/**
 * Where a file goes, or undefined when it needs no migration: `*.tera` → `*.eta`; a `.toml`
 * holding Tera tags → `.toml.eta`; `cleanroom.toml` → `clnrm.toml`.
 */
export function migrationTarget(path: string, text: string): { to: string; reason: MigrationStep['reason'] } | undefined {
  const name = basename(path)
  if (name.endsWith('.tera')) return { to: join(dirname(path), renameTeraFile(name)), reason: 'tera-file' }
  if (name === UPSTREAM_PROJECT_FILE) return { to: join(dirname(path), 'clnrm.toml'), reason: 'project-file' }
  if (name.endsWith('.toml') && findTemplateMarks(text).some(mark => mark.engine === 'tera')) {
    return { to: `${path}.eta`, reason: 'tera-in-toml' }
  }
  return undefined
}

/**
 * Plans the migration of a set of files (pure: the caller reads and writes). Imports of a macro
 * file are pointed at the partial it becomes, beside the importer when it is there, else the
 * nearest migrated file of that name; an import with no such file is a TODO.
 */
export function planMigration(inputs: readonly MigrationInput[], options: MigrationOptions = {}): MigrationStep[] {
  const steps: MigrationStep[] = []
  for (const input of inputs) {
    const target = migrationTarget(input.path, input.text)
    if (!target) {
      // A plain test file: only the schema fixes, written in place.
      if (!options.check || basename(input.path) === 'clnrm.toml' || !input.path.endsWith('.toml') || !isTestToml(input.text)) continue
      const schema = migrateSchema(input.path, input.text, options.check)
      if (schema.output === input.text && schema.todos.length === 0) continue
      steps.push({ from: input.path, to: input.path, output: schema.output, todos: schema.todos, changes: schema.changes, reason: 'schema' })
      continue
    }
    const missing: string[] = []
    const lacking: Array<{ name: string; macros: string[] }> = []
    const renameImport = (name: string): string => {
      const called = calledMacros(input.text)
      const found = nearest(input.path, name, inputs, called)
      const library = inputs.find(i => i.path === found)
      if (library) {
        const defined = definedMacros(library.text)
        const absent = [...called].filter(m => !defined.has(m))
        if (absent.length) lacking.push({ name, macros: absent })
      }
      if (!found) {
        missing.push(name)
        return `./${renameTeraFile(name)}`
      }
      const rel = relative(dirname(input.path), join(dirname(found), renameTeraFile(basename(found)))).split(sep).join('/')
      return rel.startsWith('.') ? rel : `./${rel}`
    }
    const fileVars = target.reason === 'project-file' ? undefined : extractFileVars(input.text)
    const translated = translateTera(fileVars?.text ?? input.text, { renameImport })
    const todos = translated.todos
    let output = fileVars ? `${fileVarsPreamble(fileVars.vars)}${translated.output}` : translated.output
    let changes: SchemaChange[] = []
    if (options.check && target.reason !== 'project-file' && !basename(target.to).startsWith('_')) {
      const schema = migrateSchema(target.to, output, options.check)
      output = schema.output
      changes = schema.changes
      todos.push(...schema.todos)
    }
    for (const name of missing) {
      const at = input.text.indexOf(name)
      const before = input.text.slice(0, Math.max(at, 0))
      const line = before.split('\n').length
      todos.push({
        line,
        column: at - before.lastIndexOf('\n'),
        message: `imports "${name}", which is not among the migrated files: migrate it too and put ${renameTeraFile(name)} beside this file`,
        source: name,
      })
    }
    for (const { name, macros } of lacking) {
      const at = input.text.indexOf(name)
      const before = input.text.slice(0, Math.max(at, 0))
      todos.push({
        line: before.split('\n').length,
        column: at - before.lastIndexOf('\n'),
        message: `no migrated "${name}" defines ${macros.join(', ')}: those calls fail when rendered`,
        source: name,
      })
    }
    todos.sort((a, b) => a.line - b.line || a.column - b.column)
    if (target.reason === 'project-file' && output !== input.text) {
      // clnrm.toml is read as plain TOML: its tags would stay literal text.
      todos.unshift({ line: 1, column: 1, message: 'clnrm.toml is not a template: replace its tags with literal values or [vars]', source: '' })
    }
    steps.push({ from: input.path, to: target.to, output, todos, changes, reason: target.reason })
  }
  return steps
}

/** Whether a `.toml` without Tera is one of upstream's test files (not Cargo.toml or a config). */
function isTestToml(text: string): boolean {
  try {
    return looksLikeTestFile(parse(text) as Record<string, unknown>)
  }
  catch {
    return false
  }
}

// Upstream ships its macro library inside the binary, so importers rarely sit beside a copy;
// several copies may differ, so the nearest one that defines every macro called wins.
function nearest(importer: string, name: string, inputs: readonly MigrationInput[], called: ReadonlySet<string>): string | undefined {
  const candidates = inputs.filter(i => basename(i.path) === name)
  const distance = (p: string): number => relative(dirname(importer), dirname(p)).split(sep).filter(Boolean).length
  const missing = (text: string): number => {
    const defined = definedMacros(text)
    return [...called].filter(m => !defined.has(m)).length
  }
  return candidates
    .map(c => ({ path: c.path, missing: missing(c.text), distance: distance(c.path) }))
    .sort((a, b) => a.missing - b.missing || a.distance - b.distance || a.path.localeCompare(b.path))[0]?.path
}

function definedMacros(text: string): Set<string> {
  return new Set([...text.matchAll(/\{%-?\s*macro\s+(\w+)/g)].map(m => m[1]!))
}

function calledMacros(text: string): Set<string> {
  return new Set([...text.matchAll(/\b\w+::(\w+)\s*\(/g)].map(m => m[1]!))
}

const VARS_TABLE_RE = /^\[(?:template\.)?vars\][ \t]*(?:#.*)?$/m

/**
 * Upstream renders a template with the literal `[vars]` (or `[template.vars]`) table of the file
 * itself. clnrm keeps template data out of test files, so the table becomes a comment (same
 * lines, so TODO places hold) and its values defaults the template sets before anything else,
 * under clnrm.toml's [vars] and --var. A table holding tags or invalid TOML is left alone.
 */
export function extractFileVars(text: string): { text: string; vars: Record<string, unknown> } | undefined {
  const header = VARS_TABLE_RE.exec(text)
  if (!header) return undefined
  const start = header.index
  const rest = text.slice(start + header[0].length)
  // Sub-tables ([vars.database]) belong to the same data.
  const next = /^[ \t]*\[(?!(?:template\.)?vars\.)/m.exec(rest)
  const end = start + header[0].length + (next ? next.index : rest.length)
  const section = text.slice(start, end)
  if (/\{\{|\{%|\{#|#\}/.test(section)) return undefined
  let vars: Record<string, unknown>
  try {
    const parsed = parse(section) as { vars?: Record<string, unknown>; template?: { vars?: Record<string, unknown> } }
    vars = parsed.vars ?? parsed.template?.vars ?? {}
  }
  catch {
    return undefined
  }
  const body = section.replace(/\s+$/, '')
  return { text: `${text.slice(0, start)}{# moved into the template's first tag: ${body} #}${section.slice(body.length)}${text.slice(end)}`, vars }
}

function fileVarsPreamble(vars: Record<string, unknown>): string {
  return `<% /* the file's own [vars], under clnrm.toml [vars] and --var */ it.vars = { ...${JSON.stringify(vars)}, ...it.vars }; for (const [k, v] of Object.entries(it.vars)) it[k] ??= v %>`
}
