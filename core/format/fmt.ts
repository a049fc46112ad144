import { parseTOML } from 'toml-eslint-parser'
import type { AST } from 'toml-eslint-parser'
import type { KeyPath } from './diagnostics.ts'
import type { TypeDef } from './fields.ts'
import { projectFileTable, testFileTable } from './definition.ts'
import type { TomlSyntaxError } from './toml-parse.ts'
import { parseToml } from './toml-parse.ts'

/** The formatted text, or the syntax error that stopped formatting. */
export type FormatResult = { output: string; changed: boolean } | { error: TomlSyntaxError }

/**
 * Formats a test file: keys within each table take the format's order (`name` first, then
 * `service`, `run`…), each key keeping the comments above it and beside it. Values, tables'
 * order and comments are left as written; tables already in order are not touched at all.
 */
export function formatTestFile(source: string, kind: 'test' | 'project' = 'test'): FormatResult {
  const parsed = parseToml(source)
  if ('error' in parsed) return { error: parsed.error }
  const root = kind === 'test' ? testFileTable : projectFileTable
  const ast = parseTOML(source)
  const lineStarts = computeLineStarts(source)
  const edits: Array<{ start: number; end: number; text: string }> = []

  const top = ast.body[0]!
  const topEntries = top.body.filter((n): n is AST.TOMLKeyValue => n.type === 'TOMLKeyValue')
  const scopes: Array<{ path: KeyPath; after: number; entries: AST.TOMLKeyValue[] }> = [{ path: [], after: 0, entries: topEntries }]
  for (const node of top.body) {
    if (node.type === 'TOMLTable') scopes.push({ path: node.resolvedKey, after: lineEnd(source, node.key.range[1]), entries: node.body })
  }
  for (const scope of scopes) {
    const order = fieldOrder(root, scope.path)
    if (!order || scope.entries.length < 2) continue
    const rank = (kv: AST.TOMLKeyValue): number => {
      const index = order.indexOf(keyName(kv.key.keys[0]!))
      return index === -1 ? order.length : index
    }
    const sorted = scope.entries.map((kv, i) => ({ kv, i })).sort((a, b) => rank(a.kv) - rank(b.kv) || a.i - b.i)
    if (sorted.every((entry, i) => entry.i === i)) continue

    // Each entry owns the comment lines above it (back to the previous entry) and its own lines.
    let previousEnd = scope.after
    const blocks = scope.entries.map((kv) => {
      const start = firstCommentLineStart(source, lineStarts, previousEnd, kv.range[0])
      const end = lineEnd(source, kv.range[1])
      previousEnd = end
      return { start, end }
    })
    edits.push({
      start: blocks[0]!.start,
      end: blocks.at(-1)!.end,
      text: sorted.map(({ i }) => source.slice(blocks[i]!.start, blocks[i]!.end).replace(/^\s*\n/, '')).join('\n'),
    })
  }

  let output = source
  for (const edit of edits.sort((a, b) => b.start - a.start)) output = output.slice(0, edit.start) + edit.text + output.slice(edit.end)
  if (output.length && !output.endsWith('\n')) output += '\n'
  return { output, changed: output !== source }
}

/** The canonical key order of the table at `path`, or `undefined` where order is the user's (env, vars). */
function fieldOrder(root: TypeDef, path: KeyPath): string[] | undefined {
  let type: TypeDef | undefined = root
  for (const part of path) {
    type = step(type, part)
    if (!type) return undefined
  }
  if (type?.kind !== 'table') return undefined
  const order: string[] = []
  for (const [name, def] of Object.entries(type.fields)) order.push(name, ...(def.aliases ?? []))
  return order
}

function step(type: TypeDef | undefined, part: string | number): TypeDef | undefined {
  if (!type) return undefined
  switch (type.kind) {
    case 'table': {
      const match = Object.entries(type.fields).find(([name, def]) => name === part || def.aliases?.includes(String(part)))
      return match?.[1].type
    }
    case 'record': return type.values
    case 'array': case 'oneOrMany': return typeof part === 'number' ? type.items : undefined
    case 'union': return step(type.variants.find(v => v.kind === 'table' || v.kind === 'array'), part)
    default: return undefined
  }
}

function keyName(key: AST.TOMLBare | AST.TOMLQuoted): string {
  return key.type === 'TOMLBare' ? key.name : key.value
}

function computeLineStarts(source: string): number[] {
  const starts = [0]
  for (let i = 0; i < source.length; i++) if (source[i] === '\n') starts.push(i + 1)
  return starts
}

/** Offset of the end of the line holding `offset` (before its newline). */
function lineEnd(source: string, offset: number): number {
  const newline = source.indexOf('\n', offset)
  return newline === -1 ? source.length : newline
}

/** Start of the first comment line between `from` and the line of `kvStart`, or that line's start. */
function firstCommentLineStart(source: string, lineStarts: number[], from: number, kvStart: number): number {
  let lineIndex = lineStarts.findLastIndex(start => start <= kvStart)
  let start = lineStarts[lineIndex]!
  while (lineIndex > 0) {
    const previous = lineStarts[lineIndex - 1]!
    if (previous <= from) break
    const text = source.slice(previous, lineStarts[lineIndex]! - 1).trim()
    if (text !== '' && !text.startsWith('#')) break
    lineIndex--
    if (text.startsWith('#')) start = previous
  }
  return start
}
