import { parse, TomlError } from 'smol-toml'
import type { Position } from './locate.ts'

/** A TOML syntax error with its 1-based position, said plainly, with what to do about it. */
export interface TomlSyntaxError extends Position {
  message: string
  /** The next step for this kind of mistake. */
  hint?: string
}

/** Parses TOML, returning the table or the syntax error (never throws for bad TOML). */
export function parseToml(text: string): { value: Record<string, unknown> } | { error: TomlSyntaxError } {
  try {
    return { value: parse(text) as Record<string, unknown> }
  }
  catch (error) {
    if (!(error instanceof TomlError)) throw error
    const reason = error.message.split('\n')[0]!.replace(/^Invalid TOML document:\s*/, '')
    const line = text.split(/\r?\n/)[error.line - 1] ?? ''
    const { message, hint } = plainly(reason, line, error.column)
    return { error: { line: error.line, column: error.column, message: `TOML syntax error: ${message}`, ...(hint && { hint }) } }
  }
}

/**
 * smol-toml's reasons in the words of the mistake a person made, with the fix. An unclosed string,
 * for one, reaches the parser as a line break inside a string: "control characters are not
 * allowed in strings" would send the reader looking for an invisible character.
 */
export function plainly(reason: string, line: string, column: number): { message: string; hint?: string } {
  const at = line[column - 1]
  switch (reason) {
    case 'control characters are not allowed in strings':
      if (at === undefined || at === '\r' || at === '\n') {
        return { message: 'unterminated string: it needs its closing quote on the same line', hint: 'Close it with " (or \') on the same line, or use """…""" for text over several lines.' }
      }
      return { message: 'a control character (such as a tab) inside a string', hint: 'Write it as an escape: \\t for a tab, \\u0001 for others.' }
    case 'unfinished string':
      return { message: 'unterminated string: the file ends before its closing quote', hint: 'Close the string with the quote it opened with ("""…""" for text over several lines).' }
    case 'unrecognised escape sequence':
      return { message: 'unknown escape sequence in a "string" (a backslash starts an escape there)', hint: 'Write \\\\ for a backslash, or use a \'literal string\' in single quotes, where a backslash is plain text (handy for patterns such as \'\\d+\').' }
    case 'invalid unicode escape':
    case 'invalid non-hex character in unicode escape':
      return { message: 'invalid \\u escape in a string', hint: 'Use \\uXXXX with four hex digits (or \\UXXXXXXXX with eight), or a \'literal string\' in single quotes.' }
    case 'trying to redefine an already defined table or value':
    case 'trying to redefine an already defined value': {
      const key = /^\s*\[{0,2}\s*([^=\]]+?)\s*(?:\]{1,2}|=)/.exec(line)?.[1]
      return { message: `${key ? `"${key}"` : 'this key or table'} is already defined`, hint: 'A key (or [table]) may appear once: remove one of the two, or give it another name.' }
    }
    case 'each key-value declaration must be followed by an end-of-line':
      return { message: 'unexpected text after the value', hint: 'Put each key = value on a line of its own, and quote text with spaces: name = "two words".' }
    case 'incomplete key-value: cannot find end of key':
      return { message: 'a key without "= value"', hint: 'Write key = value; a header needs brackets: [services.app].' }
    case 'invalid value':
      return { message: 'this value is not TOML', hint: 'Quote text (name = "text"); numbers, true/false, dates, [arrays] and { inline tables } need no quotes.' }
    case 'unfinished array':
      return { message: 'unclosed array', hint: 'Close it with ], and separate its items with commas.' }
    case 'expected comma or end of structure':
      return { message: 'expected a comma or the closing bracket here', hint: 'Separate items with commas: ["a", "b"], { a = 1, b = 2 }.' }
    case 'unfinished table':
      return { message: 'unclosed table', hint: 'Close a [table] header with ] and an { inline table } with } on the same line.' }
    case 'expected end of table array declaration':
      return { message: 'unclosed [[array of tables]] header', hint: 'Close it with ]], as in [[steps]].' }
    case 'illegal character in key':
    case 'unexpected end of key':
      // The line ended while still in the key: `name` alone, or a header without brackets.
      if (at === undefined || at === '\r' || at === '\n') return { message: 'a key without "= value"', hint: 'Write key = value; a header needs brackets: [services.app].' }
      return { message: 'a bare key may hold only letters, digits, - and _', hint: 'Quote the key ("my key" = …) or rename it.' }
    case 'illegal empty bare key':
      return { message: 'an empty key', hint: 'Name the key before =, or quote an empty one ("" = …).' }
    case 'illegal quoted key: multiline strings are not allowed':
      return { message: 'a key in """triple quotes"""', hint: 'Quote keys with " or \' only.' }
    case 'illegal leading zero':
      return { message: 'a number with a leading zero', hint: 'Write 8, not 08; if it is text (a version, a code), quote it: "08".' }
    case 'illegal underscore':
      return { message: 'an underscore in a number must stand between two digits', hint: 'Write 1_000, not 1__000 or _1000.' }
    case 'control characters are not allowed in comments':
      return { message: 'a control character in a comment', hint: 'Remove it.' }
    default:
      return { message: reason }
  }
}
