import { parse, TomlError } from 'smol-toml'
import type { Position } from './locate.ts'

/** A TOML syntax error with its 1-based position and smol-toml's reason, without its code frame. */
export interface TomlSyntaxError extends Position {
  message: string
}

/** Parses TOML, returning the table or the syntax error (never throws for bad TOML). */
export function parseToml(text: string): { value: Record<string, unknown> } | { error: TomlSyntaxError } {
  try {
    return { value: parse(text) as Record<string, unknown> }
  }
  catch (error) {
    if (!(error instanceof TomlError)) throw error
    const reason = error.message.split('\n')[0]!.replace(/^Invalid TOML document:\s*/, '')
    return { error: { line: error.line, column: error.column, message: `TOML syntax error: ${reason}` } }
  }
}
