const BARE_KEY_RE = /^[A-Za-z0-9_-]+$/

/**
 * Encodes a JavaScript value as one TOML value, for templates: `name = <%= toml(it.name) %>`.
 * Strings become basic strings with quotes, backslashes, newlines and control characters
 * escaped; objects become inline tables; dates become offset datetimes.
 */
export function toTomlValue(value: unknown): string {
  switch (typeof value) {
    case 'string': return encodeString(value)
    case 'boolean': return String(value)
    case 'bigint': return value.toString()
    case 'number':
      if (Number.isNaN(value)) return 'nan'
      if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf'
      return Number.isInteger(value) && !Object.is(value, -0) ? String(value) : ensureFloat(value)
    case 'object': {
      if (value === null) throw new TypeError('toml(): TOML has no null; leave the key out instead')
      if (value instanceof Date) return value.toISOString()
      if (Array.isArray(value)) return `[${value.map(toTomlValue).join(', ')}]`
      const entries = Object.entries(value).filter(([, v]) => v !== undefined)
      if (entries.length === 0) return '{}'
      return `{ ${entries.map(([k, v]) => `${encodeKey(k)} = ${toTomlValue(v)}`).join(', ')} }`
    }
    case 'undefined':
      throw new TypeError('toml(): the value is undefined; is a var missing from clnrm.toml [vars] or --var?')
    default:
      throw new TypeError(`toml(): cannot encode a ${typeof value}`)
  }
}

/** A TOML key: bare when it can be, quoted otherwise. */
export function encodeKey(key: string): string {
  return BARE_KEY_RE.test(key) ? key : encodeString(key)
}

function ensureFloat(value: number): string {
  const text = String(value)
  return /[.eE]/.test(text) ? text : `${text}.0`
}

function encodeString(value: string): string {
  let out = '"'
  for (const char of value) {
    const code = char.codePointAt(0)!
    if (char === '"') out += '\\"'
    else if (char === '\\') out += '\\\\'
    else if (char === '\n') out += '\\n'
    else if (char === '\r') out += '\\r'
    else if (char === '\t') out += '\\t'
    else if (char === '\b') out += '\\b'
    else if (char === '\f') out += '\\f'
    else if (code < 0x20 || code === 0x7F) out += `\\u${code.toString(16).padStart(4, '0').toUpperCase()}`
    else out += char
  }
  return `${out}"`
}
