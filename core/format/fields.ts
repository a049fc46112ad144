/**
 * A small type language for TOML documents. One definition drives three things: the validator
 * (`check.ts`), the JSON Schema for editors (`json-schema.ts`) and `fmt`'s key order.
 */
export type TypeDef =
  | { kind: 'string' } & StringRules
  | { kind: 'integer'; minimum?: number; maximum?: number }
  /** An integer or a float (`sample_ratio = 0.5`, `duration_ms = { max = 1.5 }`). */
  | { kind: 'number'; minimum?: number; maximum?: number }
  | { kind: 'boolean' }
  /** `"250ms"`, `"5s"`, `"2m"` or integer milliseconds; checked into milliseconds. */
  | { kind: 'duration'; positive?: boolean }
  /** A string that must compile as a regular expression. */
  | { kind: 'regex' }
  /** A TOML datetime or an RFC 3339 string. Checked into an ISO string. */
  | { kind: 'datetime' }
  /** A string, integer or boolean, checked into a string (env values). */
  | { kind: 'scalar' }
  | { kind: 'array'; items: TypeDef }
  /** A single value or an array of them; checked into an array. */
  | { kind: 'oneOrMany'; items: TypeDef }
  /** A table with arbitrary keys, all of one type (`env`, `services`). */
  | { kind: 'record'; values: TypeDef; keys?: KeyRule }
  /**
   * A table of known keys. An unknown key is an error, except in free-text tables (`[meta]`)
   * where `unknownKeys: 'warning'` lets extras such as tags or authors through with a warning.
   * `'notSupported'` (free-form claims, `[assertions]`): each unknown key is `CLNRM_NOT_SUPPORTED`.
   */
  | { kind: 'table'; fields: Readonly<Record<string, FieldDef>>; unknownKeys?: 'error' | 'warning' | 'notSupported' }
  /** Any TOML value, kept as parsed (template vars). */
  | { kind: 'any' }
  /** Alternatives told apart by TOML value type (for example a string or a table). */
  | { kind: 'union'; variants: readonly TypeDef[] }

/** Extra rules of a string: not empty, a pattern, a list of allowed values. */
export interface StringRules {
  enum?: readonly string[]
  examples?: readonly string[]
  /** `minLength: 1` in the schema: an empty string is never meant. */
  nonEmpty?: boolean
  /** A regular expression the whole value must match, with what to write instead. */
  pattern?: { source: string; hint: string; what: string }
}

/** What the keys of a record must look like (service ids, env names), and why. */
export interface KeyRule {
  pattern: string
  /** What a key is, in messages: "a service id", "an environment variable name". */
  what: string
  hint: string
}

/** A key in a table. */
export interface FieldDef {
  type: TypeDef
  description: string
  required?: boolean
  /** Shown in the schema and the docs; the normalizer applies it. */
  default?: unknown
  /** Other spellings accepted for this key. Both at once is an error. */
  aliases?: readonly string[]
  /**
   * A key upstream clnrm defines that this implementation does not check yet. Using it is the
   * error `CLNRM_NOT_SUPPORTED` (never silently ignored, so such a file never shows green); the
   * text says what the key would have checked.
   */
  notSupported?: string
}

export const string = (extra: StringRules = {}): TypeDef => ({ kind: 'string', ...extra })
export const integer = (extra: { minimum?: number; maximum?: number } = {}): TypeDef => ({ kind: 'integer', ...extra })
/** An integer or a float, optionally bounded (inclusive). */
export const number = (extra: { minimum?: number; maximum?: number } = {}): TypeDef => ({ kind: 'number', ...extra })
export const boolean: TypeDef = { kind: 'boolean' }
export const duration: TypeDef = { kind: 'duration' }
/** A duration that must be more than zero (timeouts, intervals). */
export const positiveDuration: TypeDef = { kind: 'duration', positive: true }
export const regex: TypeDef = { kind: 'regex' }
export const datetime: TypeDef = { kind: 'datetime' }
export const scalar: TypeDef = { kind: 'scalar' }
export const any: TypeDef = { kind: 'any' }
export const array = (items: TypeDef): TypeDef => ({ kind: 'array', items })
export const oneOrMany = (items: TypeDef): TypeDef => ({ kind: 'oneOrMany', items })
export const record = (values: TypeDef, keys?: KeyRule): TypeDef => ({ kind: 'record', values, keys })
export const table = (fields: Record<string, FieldDef>, extra: { unknownKeys?: 'error' | 'warning' | 'notSupported' } = {}): TypeDef & { kind: 'table' } => ({ kind: 'table', fields, ...extra })
export const union = (...variants: TypeDef[]): TypeDef => ({ kind: 'union', variants })

/** Declares a field; `description` is what editors show on hover. */
export function field(type: TypeDef, description: string, extra: Omit<FieldDef, 'type' | 'description'> = {}): FieldDef {
  return { type, description, ...extra }
}

/** A key of upstream clnrm that is not implemented yet: any value is the error `CLNRM_NOT_SUPPORTED`. */
export function notSupported(what: string): FieldDef {
  return { type: { kind: 'any' }, description: `Not supported yet: ${what}.`, notSupported: what }
}

/** The TOML type name of a parsed value, as error messages say it. */
export function tomlTypeOf(value: unknown): string {
  if (typeof value === 'string') return 'string'
  if (typeof value === 'boolean') return 'boolean'
  if (typeof value === 'number' || typeof value === 'bigint') return Number.isInteger(Number(value)) ? 'integer' : 'float'
  if (value instanceof Date) return 'datetime'
  if (Array.isArray(value)) return 'array'
  if (value && typeof value === 'object') return 'table'
  return typeof value
}

/** How a type is named in messages: `string`, `array of string`, `string or table`. */
export function describeType(type: TypeDef): string {
  switch (type.kind) {
    case 'duration': return 'duration ("250ms", "5s", "2m" or integer milliseconds)'
    case 'regex': return 'string (a regular expression)'
    case 'scalar': return 'string, integer or boolean'
    case 'array': return `array of ${describeType(type.items)}`
    case 'oneOrMany': return `${describeType(type.items)} or array of ${describeType(type.items)}`
    case 'record': return 'table'
    case 'any': return 'any value'
    case 'union': return type.variants.map(describeType).join(' or ')
    default: return type.kind
  }
}
