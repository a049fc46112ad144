import type { ExprScope } from './tera-expr.ts'
import { translateExpression, translateForHeader, Untranslatable } from './tera-expr.ts'

/** A construct the migration left as a `TODO` in the output. Line and column are 1-based, in the Tera source. */
export interface MigrationTodo {
  line: number
  column: number
  message: string
  /** The Tera tag as written. */
  source: string
}

/** The Eta text and what could not be translated. */
export interface TeraTranslation {
  output: string
  todos: MigrationTodo[]
}

/** Options of `translateTera`. */
export interface TeraOptions {
  /** Maps an imported Tera file name (`_macros.toml.tera`) to the partial it becomes. @default renameTeraFile */
  renameImport?: (name: string) => string
}

/** The name a migrated Tera file gets: `x.clnrm.toml.tera` → `x.clnrm.toml.eta`, `_m.toml.tera` → `_m.toml.eta`. */
export function renameTeraFile(name: string): string {
  return name.endsWith('.tera') ? `${name.slice(0, -'.tera'.length)}.eta` : `${name}.eta`
}

interface Tag {
  kind: 'expr' | 'stmt' | 'comment'
  body: string
  trimBefore: boolean
  trimAfter: boolean
  start: number
  end: number
}

type Piece = string | Tag

/** Splits a template into text and `{{ }}` / `{% %}` / `{# #}` tags; a tag's end is found outside strings. */
function scan(source: string): Piece[] {
  const pieces: Piece[] = []
  let at = 0
  const open = /\{([{%#])/g
  for (;;) {
    open.lastIndex = at
    const m = open.exec(source)
    if (!m) break
    const kind = m[1] === '{' ? 'expr' : m[1] === '%' ? 'stmt' : 'comment'
    const close = kind === 'expr' ? '}}' : kind === 'stmt' ? '%}' : '#}'
    let i = m.index + 2
    let quote: string | undefined
    let end = -1
    for (; i < source.length; i++) {
      const ch = source[i]!
      if (kind !== 'comment' && quote) {
        if (ch === quote) quote = undefined
      }
      else if (kind !== 'comment' && (ch === '"' || ch === '\'' || ch === '`')) quote = ch
      else if (source.startsWith(close, i)) {
        end = i
        break
      }
    }
    if (end === -1) break
    if (m.index > at) pieces.push(source.slice(at, m.index))
    let body = source.slice(m.index + 2, end)
    const trimBefore = body.startsWith('-')
    const trimAfter = body.endsWith('-')
    if (trimBefore) body = body.slice(1)
    if (trimAfter) body = body.slice(0, -1)
    pieces.push({ kind, body: body.trim(), trimBefore, trimAfter, start: m.index, end: end + 2 })
    at = end + 2
  }
  if (at < source.length) pieces.push(source.slice(at))
  return pieces
}

interface Block {
  kind: 'if' | 'for' | 'macro' | 'todo'
  locals: string[]
}

/**
 * Translates a Tera template to an Eta template for clnrm's renderer. Pure: no files are read.
 *
 * `{{ e }}` → `<%= e %>`, `{% if %}`/`elif`/`else`/`for`/`set` → JavaScript tags, `{# #}` → a
 * JavaScript comment, `-` whitespace control → Eta's `_` (which, like Tera's, trims every
 * space and newline). Bare names read the render data (`svc` → `it.svc`); names the template
 * binds stay locals. Macros become functions of the partial, and `{% import "f" as m %}`
 * defines `m(name, [args], {named})`, which renders the partial for one macro. Anything else is
 * kept, commented out, behind a TODO naming its line and column.
 */
export function translateTera(source: string, options: TeraOptions = {}): TeraTranslation {
  const renameImport = options.renameImport ?? renameTeraFile
  const pieces = scan(source)
  const macros: Array<{ name: string; params: string[] }> = []
  const inMacroFile = pieces.some(p => typeof p !== 'string' && p.kind === 'stmt' && /^macro\s/.test(p.body))
  const blocks: Block[] = []
  const globals = new Set<string>()
  const imports = new Set<string>()
  const todos: MigrationTodo[] = []
  const scope: ExprScope = {
    isLocal: name => globals.has(name) || imports.has(name) || blocks.some(b => b.locals.includes(name)),
    isImport: name => imports.has(name),
    inMacroFile,
  }
  const lineStarts = [0]
  for (let i = 0; i < source.length; i++) if (source[i] === '\n') lineStarts.push(i + 1)
  const locate = (offset: number): { line: number; column: number } => {
    let line = 0
    while (line + 1 < lineStarts.length && lineStarts[line + 1]! <= offset) line++
    return { line: line + 1, column: offset - lineStarts[line]! + 1 }
  }

  let out = ''
  const tag = (t: Tag, code: string, prefix = ''): string => `<%${t.trimBefore ? '_' : ''}${prefix} ${code} ${t.trimAfter ? '_' : ''}%>`
  const todo = (t: Tag, message: string): string => {
    const original = source.slice(t.start, t.end)
    const where = locate(t.start)
    todos.push({ ...where, message, source: original })
    return `<%/* TODO(clnrm migrate) ${where.line}:${where.column}: ${message}: ${commentSafe(original)} */%>`
  }

  for (const piece of pieces) {
    if (typeof piece === 'string') {
      out += piece.replace(/<%/g, '<%= "<%" %>')
      continue
    }
    if (piece.kind === 'comment') {
      out += `<%${piece.trimBefore ? '_' : ''}/* ${commentSafe(piece.body)} */${piece.trimAfter ? '_' : ''}%>`
      continue
    }
    try {
      if (piece.kind === 'expr') {
        const { js, selfCall } = translateExpression(piece.body, scope)
        out += selfCall ? tag(piece, js) : tag(piece, js, '=')
        continue
      }
      out += statement(piece)
    }
    catch (error) {
      if (!(error instanceof Untranslatable)) throw error
      const opens = /^(if|for|macro)\b/.exec(piece.body)
      if (opens) blocks.push({ kind: 'todo', locals: [] })
      out += todo(piece, error.message)
    }
  }
  for (const block of blocks.reverse()) {
    todos.push({ ...locate(source.length), message: `{% ${block.kind} %} is never closed`, source: '' })
  }
  if (inMacroFile) out += macroDispatcher(macros)
  return { output: out, todos }

  function statement(t: Tag): string {
    const [, keyword = '', rest = ''] = /^(\w+)\s*([\s\S]*)$/.exec(t.body) ?? []
    switch (keyword) {
      case 'if':
        const condition = translateExpression(rest, scope).js
        blocks.push({ kind: 'if', locals: [] })
        return tag(t, `if (${condition}) {`)
      case 'elif':
      case 'else':
      case 'endif':
      case 'endfor':
      case 'endmacro':
        return closeOrContinue(t, keyword, rest)
      case 'for': {
        const { names, iterable } = translateForHeader(rest, scope)
        blocks.push({ kind: 'for', locals: [...names, 'loop'] })
        const binding = names.length === 2 ? `[${names[0]}, ${names[1]}]` : names[0]!
        const source = names.length === 2 ? `Object.entries(${iterable})` : iterable
        return tag(t, `for (const [${binding}, loop] of filter.loop(${source})) {`)
      }
      case 'set': {
        const m = /^([A-Za-z_]\w*)\s*=\s*([\s\S]+)$/.exec(rest)
        if (!m) throw new Untranslatable('expected "set <name> = <expression>"')
        const value = translateExpression(m[2]!, scope).js
        const block = blocks.at(-1)
        if (block) block.locals.push(m[1]!)
        else globals.add(m[1]!)
        return tag(t, `var ${m[1]} = ${value}`)
      }
      case 'import': {
        const m = /^(["'])([^"']+)\1\s+as\s+([A-Za-z_]\w*)$/.exec(rest)
        if (!m) throw new Untranslatable('expected import "<file>" as <name>')
        imports.add(m[3]!)
        const partial = renameImport(m[2]!)
        const path = partial.startsWith('.') || partial.startsWith('/') ? partial : `./${partial}`
        return tag(t, `const ${m[3]} = (macro, args = [], named = {}) => include(${JSON.stringify(path)}, { ...it, __call: { macro, args, named } })`)
      }
      case 'macro': {
        if (blocks.length) throw new Untranslatable('a macro inside a block')
        const m = /^([A-Za-z_]\w*)\s*\(([\s\S]*)\)$/.exec(rest)
        if (!m) throw new Untranslatable('expected macro <name>(<parameters>)')
        const params = splitParams(m[2]!)
        const names = params.map(p => p.name)
        const list = params.map(p => p.fallback === undefined ? p.name : `${p.name} = ${translateExpression(p.fallback, scope).js}`)
        macros.push({ name: m[1]!, params: names })
        blocks.push({ kind: 'macro', locals: names })
        return tag(t, `function ${m[1]}(${list.join(', ')}) {`)
      }
      default:
        throw new Untranslatable(`"{% ${keyword} %}" is not translated`)
    }
  }

  function closeOrContinue(t: Tag, keyword: string, rest: string): string {
    const block = blocks.at(-1)
    const wanted = keyword === 'endfor' ? 'for' : keyword === 'endmacro' ? 'macro' : 'if'
    if (block?.kind === 'todo') {
      if (keyword.startsWith('end')) blocks.pop()
      throw new Untranslatable(`belongs to a block that was not translated`)
    }
    if (block?.kind !== wanted) throw new Untranslatable(`{% ${keyword} %} without its {% ${wanted} %}`)
    if (keyword === 'elif') return tag(t, `} else if (${translateExpression(rest, scope).js}) {`)
    if (keyword === 'else') return tag(t, '} else {')
    blocks.pop()
    return tag(t, '}')
  }
}

function splitParams(text: string): Array<{ name: string; fallback?: string }> {
  const params: Array<{ name: string; fallback?: string }> = []
  let depth = 0
  let current = ''
  for (const ch of `${text},`) {
    if (ch === ',' && depth === 0) {
      const m = /^\s*([A-Za-z_]\w*)\s*(?:=\s*([\s\S]+?))?\s*$/.exec(current)
      if (current.trim()) {
        if (!m) throw new Untranslatable(`bad macro parameter "${current.trim()}"`)
        params.push(m[2] === undefined ? { name: m[1]! } : { name: m[1]!, fallback: m[2] })
      }
      current = ''
      continue
    }
    if ('([{'.includes(ch)) depth++
    if (')]}'.includes(ch)) depth--
    current += ch
  }
  return params
}

// The partial renders the macro its includer names; named arguments are matched to parameters here.
function macroDispatcher(macros: ReadonlyArray<{ name: string; params: string[] }>): string {
  const table = macros.map(m => `${JSON.stringify(m.name)}: [${m.name}, ${JSON.stringify(m.params)}]`).join(', ')
  return [
    `<%/* Macros, called from a template as m("name", [arguments], { named }) */%>`,
    `<% function __macro(name, args = [], named = {}) {`,
    `  const entry = ({ ${table} })[name]`,
    `  if (!entry) throw new Error(\`no macro named "\${name}"\`)`,
    `  entry[0](...entry[1].map((param, i) => i < args.length ? args[i] : named[param]))`,
    `} %>`,
    // Tera's import takes only the macros: the text around them is dropped (Eta keeps output in __eta.res).
    `<% if (it.__call) { __eta.res = ''; __macro(it.__call.macro, it.__call.args, it.__call.named) } %>`,
    '',
  ].join('\n')
}

function commentSafe(text: string): string {
  return text.replace(/\*\//g, '* /').replace(/%>/g, '% >')
}
