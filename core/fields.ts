/**
 * A small type language for TOML documents. One definition drives three things: the validator
 * (`check.ts`), the JSON Schema for editors (`json-schema.ts`) and `fmt`'s key order.
 */
export type TypeDef =
  | { kind: 'string'; enum?: readonly string[]; examples?: readonly string[] }
  | { kind: 'integer'; minimum?: number; maximum?: number }
  | { kind: 'boolean' }
  /** `"250ms"`, `"5s"`, `"2m"` or integer milliseconds; checked into milliseconds. */
  | { kind: 'duration' }
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
  | { kind: 'record'; values: TypeDef; keyPattern?: string }
  | { kind: 'table'; fields: Readonly<Record<string, FieldDef>> }
  /** Any TOML value, kept as parsed (template vars). */
  | { kind: 'any' }
  /** Alternatives told apart by TOML value type (for example a string or a table). */
  | { kind: 'union'; variants: readonly TypeDef[] }

/** A key in a table. */
export interface FieldDef {
  type: TypeDef
  description: string
  required?: boolean
  /** Shown in the schema and the docs; the normalizer applies it. */
  default?: unknown
  /** Other spellings accepted for this key. Both at once is an error. */
  aliases?: readonly string[]
}

export const string = (extra: { enum?: readonly string[]; examples?: readonly string[] } = {}): TypeDef => ({ kind: 'string', ...extra })
export const integer = (extra: { minimum?: number; maximum?: number } = {}): TypeDef => ({ kind: 'integer', ...extra })
export const boolean: TypeDef = { kind: 'boolean' }
export const duration: TypeDef = { kind: 'duration' }
export const regex: TypeDef = { kind: 'regex' }
export const datetime: TypeDef = { kind: 'datetime' }
export const scalar: TypeDef = { kind: 'scalar' }
export const any: TypeDef = { kind: 'any' }
export const array = (items: TypeDef): TypeDef => ({ kind: 'array', items })
export const oneOrMany = (items: TypeDef): TypeDef => ({ kind: 'oneOrMany', items })
export const record = (values: TypeDef, keyPattern?: string): TypeDef => ({ kind: 'record', values, keyPattern })
export const table = (fields: Record<string, FieldDef>): TypeDef & { kind: 'table' } => ({ kind: 'table', fields })
export const union = (...variants: TypeDef[]): TypeDef => ({ kind: 'union', variants })

/** Declares a field; `description` is what editors show on hover. */
export function field(type: TypeDef, description: string, extra: Omit<FieldDef, 'type' | 'description'> = {}): FieldDef {
  return { type, description, ...extra }
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
