import { closest, distance } from 'fastest-levenshtein'
import type { KeyPath, PendingDiagnostic } from './diagnostics.ts'
import { formatKeyPath } from './diagnostics.ts'
import { parseDuration } from './duration.ts'
import type { FieldDef, TypeDef } from './fields.ts'
import { describeType, tomlTypeOf } from './fields.ts'
import { patternError } from './regex.ts'

/**
 * Checks a parsed TOML value against a type definition. Returns the value in checked form
 * (durations in ms, one-or-many as arrays, aliases under their canonical key) and pushes
 * problems to `out`. Returns `undefined` where the value is unusable.
 */
export function checkValue(value: unknown, type: TypeDef, path: KeyPath, out: PendingDiagnostic[]): unknown {
  // Problems go through module functions, not closures over this call: checkValue runs for every
  // value of every checked file, and closures cost a context and two functions per call.
  switch (type.kind) {
    case 'string':
      if (typeof value !== 'string') return wrongTypeOf(value, type, path, out)
      if (type.enum && !type.enum.includes(value)) {
        return fail(out, path, 'CLNRM_INVALID_VALUE', `${formatKeyPath(path)} is "${value}", expected one of: ${type.enum.join(', ')}`, didYouMean(value, type.enum))
      }
      if (type.nonEmpty && value.trim() === '') {
        return fail(out, path, 'CLNRM_INVALID_VALUE', `${formatKeyPath(path)} is empty`, type.pattern?.hint ?? 'Write a value, or remove the key.')
      }
      if (type.pattern && !compiled(type.pattern.source).test(value)) {
        return fail(out, path, 'CLNRM_INVALID_VALUE', `${formatKeyPath(path)} is ${JSON.stringify(value)}, not ${type.pattern.what}`, type.pattern.hint)
      }
      return value
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) return wrongTypeOf(value, type, path, out)
      if ((type.minimum !== undefined && value < type.minimum) || (type.maximum !== undefined && value > type.maximum)) {
        return fail(out, path, 'CLNRM_INVALID_VALUE', `${formatKeyPath(path)} is ${value}, outside ${type.minimum ?? '-∞'}..${type.maximum ?? '∞'}`, `Use a whole number from ${type.minimum ?? '-∞'} to ${type.maximum ?? '∞'}.`)
      }
      return value
    case 'number':
      if (typeof value !== 'number' || Number.isNaN(value)) return wrongTypeOf(value, type, path, out)
      if ((type.minimum !== undefined && value < type.minimum) || (type.maximum !== undefined && value > type.maximum)) {
        return fail(out, path, 'CLNRM_INVALID_VALUE', `${formatKeyPath(path)} is ${value}, outside ${type.minimum ?? '-∞'}..${type.maximum ?? '∞'}`, `Use a number from ${type.minimum ?? '-∞'} to ${type.maximum ?? '∞'}.`)
      }
      return value
    case 'boolean':
      return typeof value === 'boolean' ? value : wrongTypeOf(value, type, path, out)
    case 'duration': {
      if (typeof value !== 'string' && typeof value !== 'number') return wrongTypeOf(value, type, path, out)
      const ms = parseDuration(value)
      if (ms === undefined) {
        return fail(out, path, 'CLNRM_INVALID_DURATION', `${formatKeyPath(path)} is ${JSON.stringify(value)}, not a duration`, 'Write "250ms", "5s", "2m", "1m30s" or an integer number of milliseconds.')
      }
      if (type.positive && ms <= 0) {
        return fail(out, path, 'CLNRM_INVALID_DURATION', `${formatKeyPath(path)} is ${JSON.stringify(value)}: nothing can finish in no time`, 'Write a duration above zero, such as "5s".')
      }
      return ms
    }
    case 'regex': {
      if (typeof value !== 'string') return wrongTypeOf(value, type, path, out)
      const reason = patternError(value)
      if (reason) return fail(out, path, 'CLNRM_INVALID_REGEX', `${formatKeyPath(path)} is not a valid regular expression: ${reason}`, 'Patterns use RE2 syntax (as upstream clnrm): no backreferences or lookaround; escape literal characters such as ( [ . with a backslash (\\\\ in a TOML basic string, or use a literal \'string\'). See docs/format.md#patterns.')
      return value
    }
    case 'datetime':
      if (value instanceof Date) return value.toISOString()
      if (typeof value === 'string' && !Number.isNaN(Date.parse(value))) return new Date(value).toISOString()
      return fail(out, path, 'CLNRM_INVALID_TYPE', `${formatKeyPath(path)} must be a datetime, got ${JSON.stringify(value)}`, 'Write an RFC 3339 time such as 2025-01-01T00:00:00Z.')
    case 'scalar':
      if (typeof value === 'string') return value
      if (typeof value === 'number' || typeof value === 'boolean') return String(value)
      return wrongTypeOf(value, type, path, out)
    case 'array':
      if (!Array.isArray(value)) return wrongTypeOf(value, type, path, out)
      return checkItems(value, type.items, path, out)
    case 'oneOrMany':
      return Array.isArray(value)
        ? checkItems(value, type.items, path, out)
        : [checkValue(value, type.items, path, out)].filter(v => v !== undefined)
    case 'record': {
      if (!isTable(value)) return wrongTypeOf(value, type, path, out)
      const result: Record<string, unknown> = {}
      // Keys, then each value: the same order as entries, without an array per entry.
      for (const key of Object.keys(value)) {
        const item = value[key]
        if (type.keys && !compiled(type.keys.pattern).test(key)) {
          out.push({ code: 'CLNRM_INVALID_VALUE', severity: 'error', message: `${formatKeyPath([...path, key])}: "${key}" is not ${type.keys.what}`, hint: type.keys.hint, path: [...path, key], target: 'key' })
          continue
        }
        const checked = checkValue(item, type.values, [...path, key], out)
        if (checked !== undefined) result[key] = checked
      }
      return result
    }
    case 'table':
      if (!isTable(value)) return wrongTypeOf(value, type, path, out)
      return checkTable(value, type, path, out)
    case 'any':
      return value
    case 'union': {
      const variant = type.variants.find(v => acceptsTomlType(v, value))
      return variant ? checkValue(value, variant, path, out) : wrongTypeOf(value, type, path, out)
    }
  }
}

/** Records a problem with the value at `path`; `undefined`, for the caller to return. */
function fail(out: PendingDiagnostic[], path: KeyPath, code: PendingDiagnostic['code'], message: string, hint?: string): undefined {
  out.push({ code, severity: 'error', message, hint, path, target: 'value' })
  return undefined
}

function wrongTypeOf(value: unknown, type: TypeDef, path: KeyPath, out: PendingDiagnostic[]): undefined {
  return fail(out, path, 'CLNRM_INVALID_TYPE', `${formatKeyPath(path)} must be ${describeType(type)}, got ${tomlTypeOf(value)}`, typeHint(type, value))
}

function checkItems(items: unknown[], type: TypeDef, path: KeyPath, out: PendingDiagnostic[]): unknown[] {
  const result: unknown[] = []
  items.forEach((item, index) => {
    const checked = checkValue(item, type, [...path, index], out)
    if (checked !== undefined) result.push(checked)
  })
  return result
}

/**
 * Checks a table's keys: required ones, aliases, keys upstream clnrm knows but clnrm does not
 * check yet (errors), unknown ones (errors with a suggestion; warnings in free-text tables).
 */
export function checkTable(
  value: Record<string, unknown>,
  type: TypeDef & { kind: 'table' },
  path: KeyPath,
  out: PendingDiagnostic[],
): Record<string, unknown> {
  const { fields } = type
  const result: Record<string, unknown> = {}
  const { spellings, required } = keysOf(fields)
  const seen = new Map<string, string>()
  // Keys, then each value: the same order as entries, without an array per entry (every table of every checked file).
  for (const key of Object.keys(value)) {
    const item = value[key]
    const canonical = spellings.get(key)
    if (!canonical && type.unknownKeys === 'notSupported') {
      out.push({
        code: 'CLNRM_NOT_SUPPORTED',
        severity: 'error',
        message: `${formatKeyPath([...path, key])} = ${JSON.stringify(item)} is a claim this clnrm cannot check`,
        hint: `Remove it, or write it as a step that checks it. Checkable here: ${Object.keys(fields).join(', ')}.`,
        path: [...path, key],
        target: 'key',
      })
      continue
    }
    if (!canonical) {
      const warning = type.unknownKeys === 'warning'
      const known = Object.keys(fields).filter(name => !fields[name]!.notSupported)
      out.push({
        code: 'CLNRM_UNKNOWN_KEY',
        severity: warning ? 'warning' : 'error',
        message: warning
          ? `Unknown key ${formatKeyPath([...path, key])}; it is free text and ignored`
          : `Unknown key ${formatKeyPath([...path, key])}: clnrm would not check it`,
        hint: didYouMean(key, [...spellings.keys()]) ?? (known.length ? `Known keys here: ${known.join(', ')}.` : `Remove it: none of ${formatKeyPath(path)}'s keys is supported yet.`),
        path: [...path, key],
        target: 'key',
      })
      continue
    }
    const unsupported = fields[canonical]!.notSupported
    if (unsupported) {
      out.push({
        code: 'CLNRM_NOT_SUPPORTED',
        severity: 'error',
        message: `${formatKeyPath([...path, key])} is not supported by this clnrm yet: ${unsupported} would not be checked`,
        hint: 'Remove it: a file declaring what clnrm cannot check is invalid, so it never shows as passing. Where a step can check the same thing, write it as a step.',
        path: [...path, key],
        target: 'key',
      })
      continue
    }
    const earlier = seen.get(canonical)
    if (earlier !== undefined) {
      out.push({
        code: 'CLNRM_CONFLICTING_KEYS',
        severity: 'error',
        message: `${formatKeyPath([...path, key])} and ${formatKeyPath([...path, earlier])} are two spellings of the same key`,
        hint: `Keep one of them.`,
        path: [...path, key],
        target: 'key',
      })
      continue
    }
    seen.set(canonical, key)
    const checked = checkValue(item, fields[canonical]!.type, [...path, key], out)
    if (checked !== undefined) result[canonical] = checked
  }
  for (const [name, def] of required) {
    if (!seen.has(name)) {
      out.push({
        code: 'CLNRM_MISSING_KEY',
        severity: 'error',
        message: path.length ? `${formatKeyPath(path)} is missing the required key "${name}"` : `The required key "${name}" is missing`,
        hint: `Add ${name} = … (${def.description})`,
        path,
        target: 'table',
      })
    }
  }
  return result
}

/** A table definition's keys: every spelling (aliases included) → the canonical key, and the required ones. */
interface TableKeys {
  spellings: ReadonlyMap<string, string>
  required: ReadonlyArray<readonly [string, FieldDef]>
}

const keysByFields = new WeakMap<TableFields, TableKeys>()

/**
 * The keys of a table definition, worked out once per definition: the definitions are module
 * constants, and rebuilding the spellings for every table of every checked file was about a fifth
 * of the check (a shared partial's save checks each of its tests again).
 */
function keysOf(fields: TableFields): TableKeys {
  let keys = keysByFields.get(fields)
  if (!keys) {
    const spellings = new Map<string, string>()
    for (const [name, def] of Object.entries(fields)) {
      spellings.set(name, name)
      for (const alias of def.aliases ?? []) spellings.set(alias, name)
    }
    keys = { spellings, required: Object.entries(fields).filter(([, def]) => def.required) }
    keysByFields.set(fields, keys)
  }
  return keys
}

type TableFields = (TypeDef & { kind: 'table' })['fields']

/** "Did you mean …?" for a near miss, or `undefined` when nothing is close. */
export function didYouMean(input: string, candidates: readonly string[]): string | undefined {
  if (candidates.length === 0) return undefined
  const best = closest(input, [...candidates])
  const limit = Math.max(2, Math.floor(best.length / 3))
  return distance(input, best) <= limit ? `Did you mean "${best}"?` : undefined
}

const patterns = new Map<string, RegExp>()
/** Compiles each schema pattern once: the checker runs on every config cache miss. */
function compiled(source: string): RegExp {
  let re = patterns.get(source)
  if (!re) patterns.set(source, re = new RegExp(source))
  return re
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
}

function acceptsTomlType(type: TypeDef, value: unknown): boolean {
  switch (type.kind) {
    case 'string': case 'regex': return typeof value === 'string'
    case 'integer': return typeof value === 'number' && Number.isInteger(value)
    case 'number': return typeof value === 'number'
    case 'boolean': return typeof value === 'boolean'
    case 'duration': return typeof value === 'string' || typeof value === 'number'
    case 'datetime': return value instanceof Date || typeof value === 'string'
    case 'scalar': return ['string', 'number', 'boolean'].includes(typeof value)
    case 'array': case 'oneOrMany': return Array.isArray(value)
    case 'record': case 'table': return isTable(value)
    case 'union': return type.variants.some(v => acceptsTomlType(v, value))
    case 'any': return true
  }
}

function typeHint(type: TypeDef, value: unknown): string {
  if (type.kind === 'array' && typeof value === 'string') return `Wrap it in brackets: [${JSON.stringify(value)}]${type.items.kind === 'string' ? ', or use `run` for a shell string' : ''}.`
  if (type.kind === 'string' && typeof value === 'number') return `Quote it: "${value}".`
  if ((type.kind === 'integer' || type.kind === 'number') && typeof value === 'string' && /^\d+(?:\.\d+)?$/.test(value)) return `Remove the quotes: ${value}.`
  if (type.kind === 'boolean' && (value === 'true' || value === 'false')) return `Remove the quotes: ${value}.`
  switch (type.kind) {
    case 'string': case 'regex': return 'Write a quoted string: "…".'
    case 'integer': return 'Write a whole number without quotes.'
    case 'number': return 'Write a number without quotes.'
    case 'boolean': return 'Write true or false, without quotes.'
    case 'array': return 'Write a list in brackets: [ … ].'
    case 'oneOrMany': return 'Write a string, or a list of strings in brackets.'
    case 'record': case 'table': return 'Write a table: key = { … }, or a [section] of its own.'
    case 'scalar': return 'Write a string, a number or true/false.'
    default: return `Write ${describeType(type)}.`
  }
}
