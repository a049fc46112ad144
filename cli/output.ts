import { readFileSync } from 'node:fs'
import { relative } from 'node:path'
import type { Diagnostic } from '../core/index.ts'
import { printable } from '../core/index.ts'
import type { CommandContext } from './context.ts'

export { printable }

/** A path as the user typed it: relative to the working directory when inside it; control characters escaped. */
export function displayPath(ctx: Pick<CommandContext, 'cwd'>, file: string): string {
  const rel = relative(ctx.cwd, file)
  return printable(rel && !rel.startsWith('..') ? rel : file)
}

/**
 * Formats one diagnostic for a terminal: location, code, message, two lines of source around the
 * spot with a caret, and the hint.
 */
export function formatDiagnostic(ctx: CommandContext, d: Diagnostic, source?: string): string {
  const { c } = ctx
  const severity = d.severity === 'error' ? c.red('error') : c.yellow('warning')
  const where = `${displayPath(ctx, d.file)}:${d.line}:${d.column}`
  const lines = [`${c.bold(where)} ${severity} ${c.dim(d.code)}`, `  ${printable(d.message)}`]
  const text = source ?? readQuietly(d.file)
  if (text !== undefined) lines.push(...codeFrame(ctx, text, d.line, d.column))
  if (d.mapped === false && d.renderedLine !== undefined) {
    lines.push(`  ${c.dim(`(line ${d.renderedLine} of the rendered TOML; see \`clnrm render ${displayPath(ctx, d.file)}\`)`)}`)
  }
  if (d.hint) lines.push(`  ${c.cyan('hint:')} ${printable(d.hint)}`)
  return `${lines.join('\n')}\n`
}

function codeFrame(ctx: CommandContext, text: string, line: number, column: number): string[] {
  const all = text.split(/\r?\n/)
  if (line < 1 || line > all.length) return []
  const first = Math.max(1, line - 1)
  const width = String(line).length
  const frame: string[] = []
  for (let n = first; n <= line; n++) {
    const marker = n === line ? ctx.c.red('>') : ' '
    frame.push(`  ${marker} ${ctx.c.dim(`${String(n).padStart(width)} |`)} ${printable(hideSecret(all[n - 1]!), true)}`)
  }
  frame.push(`    ${' '.repeat(width)} ${ctx.c.dim('|')} ${' '.repeat(Math.max(0, column - 1))}${ctx.c.red('^')}`)
  return frame
}

/** A `password = "…"` line (upstream's service credentials) is shown without its value: output gets shared. */
function hideSecret(line: string): string {
  return line.replace(/^(\s*(?:password|"password"|'password')\s*=\s*).+$/, '$1(value hidden)')
}

function readQuietly(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  }
  catch {
    return undefined
  }
}

/** `1 file`, `2 files`. */
export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`
}

/** The one-line error (and hint) for an unreachable Docker engine. */
export function formatEngineError(ctx: CommandContext, error: Error & { hint: string }): string {
  return `${ctx.c.red('error')} ${printable(error.message)}\n${ctx.c.cyan('hint:')} ${error.hint}\n`
}
