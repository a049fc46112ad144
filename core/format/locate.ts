import { parseTOML } from 'toml-eslint-parser'
import type { AST } from 'toml-eslint-parser'
import type { KeyPath, PendingDiagnostic } from './diagnostics.ts'

/** A 1-based position in a text. */
export interface Position {
  line: number
  column: number
}

type Node = AST.TOMLNode
type Target = PendingDiagnostic['target']

/**
 * Finds where a key path is written in TOML source. smol-toml gives values without positions,
 * so only files with problems pay for this second, position-keeping parse.
 */
export function createLocator(source: string): (path: KeyPath, target: Target) => Position {
  let ast: AST.TOMLProgram | undefined
  try {
    ast = parseTOML(source)
  }
  catch {
    ast = undefined
  }
  return (path, target) => {
    // The document itself: its start, not its first table.
    if (path.length === 0) return { line: 1, column: 1 }
    const node = ast ? findNode(ast, path, target)?.node : undefined
    return node ? { line: node.loc.start.line, column: node.loc.start.column + 1 } : { line: 1, column: 1 }
  }
}

/**
 * Finds where a key is written, only when it is: `undefined` for a key the file leaves out
 * (a default, an inherited value), so callers can fall back to a key of their choice. For an
 * array index, the element's position.
 */
export function createKeyFinder(source: string): (path: KeyPath) => Position | undefined {
  let ast: AST.TOMLProgram | undefined
  try {
    ast = parseTOML(source)
  }
  catch {
    return () => undefined
  }
  return (path) => {
    if (path.length === 0 || !ast) return undefined
    const found = findNode(ast, path, 'key')
    // A written key scores its own depth plus 0.25, an array element its depth; a table written
    // as `[header]` its depth plus 0.1; anything less is an enclosing table.
    const exact = typeof path.at(-1) === 'number' ? path.length : path.length + 0.1
    if (!found || found.depth < exact) return undefined
    return { line: found.node.loc.start.line, column: found.node.loc.start.column + 1 }
  }
}

function keyName(key: AST.TOMLBare | AST.TOMLQuoted): string {
  return key.type === 'TOMLBare' ? key.name : key.value
}

function startsWith(path: KeyPath, prefix: KeyPath): boolean {
  return prefix.length <= path.length && prefix.every((part, i) => path[i] === part)
}

function findNode(ast: AST.TOMLProgram, path: KeyPath, target: Target): { node: Node; depth: number } | undefined {
  const top = ast.body[0]
  if (!top) return undefined
  let best: { node: Node; depth: number } | undefined
  const consider = (node: Node, depth: number): void => {
    if (!best || depth > best.depth) best = { node, depth }
  }

  // Key/values of the implicit top-level table, then each [table] / [[array table]].
  const scopes: Array<{ prefix: KeyPath; header?: AST.TOMLTable; body: AST.TOMLKeyValue[] }> = [
    { prefix: [], body: top.body.filter((n): n is AST.TOMLKeyValue => n.type === 'TOMLKeyValue') },
  ]
  for (const node of top.body) {
    if (node.type === 'TOMLTable') scopes.push({ prefix: node.resolvedKey, header: node, body: node.body })
  }
  for (const scope of scopes) {
    if (scope.header?.type === 'TOMLTable') {
      const header = scope.header
      // `[services."my app"]` with a bad id: point at the id, not the bracket.
      if (target === 'key' && path.length === scope.prefix.length && startsWith(path, scope.prefix)) consider(header.key.keys.at(-1)!, path.length + 0.1)
      else if (startsWith(path, scope.prefix)) consider(header, scope.prefix.length)
      // A path to a table written only as sub-tables ([services.web] for `services`) points at the first one.
      else if (startsWith(scope.prefix, path)) consider(header, path.length - 0.5)
    }
    if (!startsWith(path, scope.prefix)) continue
    for (const kv of scope.body) searchKeyValue(kv, scope.prefix, path, target, consider)
  }
  return best
}

function searchKeyValue(kv: AST.TOMLKeyValue, prefix: KeyPath, path: KeyPath, target: Target, consider: (node: Node, depth: number) => void): void {
  const full = [...prefix, ...kv.key.keys.map(keyName)]
  if (!startsWith(path, full)) {
    // `a.b = 1` written as a dotted key still belongs to a path that stops at `a`.
    if (startsWith(full, path)) consider(kv.key, path.length - 0.5)
    return
  }
  if (full.length === path.length) {
    consider(target === 'key' ? kv.key : kv.value, full.length + 0.25)
    return
  }
  consider(kv.value, full.length)
  searchValue(kv.value, full, path, target, consider)
}

function searchValue(value: AST.TOMLContentNode, at: KeyPath, path: KeyPath, target: Target, consider: (node: Node, depth: number) => void): void {
  if (value.type === 'TOMLInlineTable') {
    for (const kv of value.body) searchKeyValue(kv, at, path, target, consider)
  }
  else if (value.type === 'TOMLArray') {
    const index = path[at.length]
    const element = typeof index === 'number' ? value.elements[index] : undefined
    if (!element) return
    consider(element, at.length + 1)
    searchValue(element, [...at, index!], path, target, consider)
  }
}
