/**
 * Tera expressions → JavaScript for Eta tags. A small tokenizer and a recursive-descent parser
 * over the subset of Tera that upstream clnrm's templates use; anything else throws
 * `Untranslatable`, which the template translator turns into a located TODO.
 */

/** An expression (or tag) the migration cannot translate; `offset` is within the expression. */
export class Untranslatable extends Error {
  override name = 'Untranslatable'
  constructor(message: string, readonly offset = 0) {
    super(message)
  }
}

type TokenKind = 'str' | 'num' | 'name' | 'op'
interface Token {
  kind: TokenKind
  text: string
  offset: number
}

const OPS = ['==', '!=', '<=', '>=', '::', '(', ')', '[', ']', '{', '}', ',', '.', '|', '=', ':', '+', '-', '*', '/', '%', '~', '<', '>']

/** Splits a Tera expression into tokens. */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  while (i < text.length) {
    const ch = text[i]!
    if (/\s/.test(ch)) {
      i++
      continue
    }
    if (ch === '"' || ch === '\'' || ch === '`') {
      const end = text.indexOf(ch, i + 1)
      if (end === -1) throw new Untranslatable('unclosed string', i)
      tokens.push({ kind: 'str', text: text.slice(i + 1, end), offset: i })
      i = end + 1
      continue
    }
    const num = /^\d+(?:\.\d+)?/.exec(text.slice(i))
    if (num) {
      tokens.push({ kind: 'num', text: num[0], offset: i })
      i += num[0].length
      continue
    }
    const name = /^[A-Za-z_]\w*/.exec(text.slice(i))
    if (name) {
      tokens.push({ kind: 'name', text: name[0], offset: i })
      i += name[0].length
      continue
    }
    const op = OPS.find(o => text.startsWith(o, i))
    if (!op) throw new Untranslatable(`unexpected "${ch}"`, i)
    tokens.push({ kind: 'op', text: op, offset: i })
    i += op.length
  }
  return tokens
}

/** What the expression translator needs to know about the template around it. */
export interface ExprScope {
  /** Names bound by the template (loop variables, macro parameters, `set`, imports): left as they are. */
  isLocal: (name: string) => boolean
  /** Aliases of `{% import … as m %}`: `m::f(…)` becomes `m("f", […], {…})`. */
  isImport: (name: string) => boolean
  /** Inside a macro file, `self::f(…)` calls a macro of the same file. */
  inMacroFile: boolean
}

// Tera functions whose single named argument becomes a positional one (the helper's signature).
const POSITIONAL: Record<string, string[]> = {
  env: ['name', 'default'],
  sha256: ['s'],
  uuid_v4: ['seed'],
  pick: ['array'],
  toml_encode: ['value', 's'],
  now_plus: ['seconds'],
  range: ['start', 'end', 'step_by'],
}

// Filters: Tera name → how to call the Eta helper with the piped value first.
const FILTERS: Record<string, { helper: string; args: string[] }> = {
  upper: { helper: 'filter.upper', args: [] },
  lower: { helper: 'filter.lower', args: [] },
  length: { helper: 'filter.length', args: [] },
  slugify: { helper: 'filter.slug', args: [] },
  slug: { helper: 'filter.slug', args: [] },
  kebab: { helper: 'filter.kebab', args: [] },
  snake: { helper: 'filter.snake', args: [] },
  join: { helper: 'filter.join', args: ['sep'] },
  truncate: { helper: 'filter.truncate', args: ['length', 'end'] },
  trim: { helper: 'filter.trim', args: [] },
  json_encode: { helper: 'JSON.stringify', args: [] },
  toml_encode: { helper: 'toml_encode', args: [] },
  sha256: { helper: 'sha256', args: [] },
}

/** A translated call of a macro: its output is appended by the macro itself (same file) or returned (import). */
export interface Translated {
  js: string
  /** True when the expression is a `self::` macro call, which writes its output itself. */
  selfCall: boolean
}

/** Translates one Tera expression to JavaScript. Throws `Untranslatable`. */
export function translateExpression(text: string, scope: ExprScope): Translated {
  const parser = new Parser(tokenize(text), scope, text.length)
  const js = parser.expression()
  parser.expectEnd()
  return { js, selfCall: parser.selfCall }
}

/** Splits `a, b in expr` (a `for` header). */
export function translateForHeader(text: string, scope: ExprScope): { names: string[]; iterable: string } {
  const m = /^\s*([A-Za-z_]\w*)(?:\s*,\s*([A-Za-z_]\w*))?\s+in\s+([\s\S]+)$/.exec(text)
  if (!m) throw new Untranslatable('expected "for <name> in <expression>" or "for <key>, <value> in <expression>"')
  const names = m[2] ? [m[1]!, m[2]] : [m[1]!]
  return { names, iterable: translateExpression(m[3]!, scope).js }
}

class Parser {
  private i = 0
  selfCall = false
  constructor(private readonly tokens: Token[], private readonly scope: ExprScope, private readonly length: number) {}

  private peek(offset = 0): Token | undefined {
    return this.tokens[this.i + offset]
  }

  private isOp(text: string): boolean {
    const t = this.peek()
    return t?.kind === 'op' && t.text === text
  }

  private isWord(text: string): boolean {
    const t = this.peek()
    return t?.kind === 'name' && t.text === text
  }

  private fail(message: string): never {
    throw new Untranslatable(message, this.peek()?.offset ?? this.length)
  }

  private expect(text: string): void {
    if (!this.isOp(text)) this.fail(`expected "${text}"`)
    this.i++
  }

  expectEnd(): void {
    if (this.peek()) this.fail(`unexpected "${this.peek()!.text}"`)
  }

  expression(): string {
    let left = this.and()
    while (this.isWord('or')) {
      this.i++
      left = `${left} || ${this.and()}`
    }
    return left
  }

  private and(): string {
    let left = this.not()
    while (this.isWord('and')) {
      this.i++
      left = `${left} && ${this.not()}`
    }
    return left
  }

  private not(): string {
    if (this.isWord('not')) {
      this.i++
      return `!(${this.not()})`
    }
    return this.comparison()
  }

  private comparison(): string {
    const left = this.concat()
    const t = this.peek()
    if (t?.kind === 'op' && ['==', '!=', '<', '>', '<=', '>='].includes(t.text)) {
      this.i++
      const op = t.text === '==' ? '===' : t.text === '!=' ? '!==' : t.text
      return `${left} ${op} ${this.concat()}`
    }
    if (this.isWord('in') || (this.isWord('not') && this.peek(1)?.text === 'in')) {
      const negate = this.isWord('not')
      this.i += negate ? 2 : 1
      return `${negate ? '!' : ''}filter.contains(${this.concat()}, ${left})`
    }
    if (this.isWord('is')) {
      this.i++
      const negate = this.isWord('not')
      if (negate) this.i++
      if (!this.isWord('defined') && !this.isWord('undefined')) this.fail('only "is defined" and "is undefined" tests are translated')
      const defined = (this.peek()!.text === 'defined') !== negate
      this.i++
      return `(${left} ${defined ? '!==' : '==='} undefined)`
    }
    return left
  }

  private concat(): string {
    let left = this.additive()
    while (this.isOp('~')) {
      this.i++
      left = `\`\${${left}}\${${this.additive()}}\``
    }
    return left
  }

  private additive(): string {
    let left = this.multiplicative()
    while (this.isOp('+') || this.isOp('-')) {
      const op = this.tokens[this.i++]!.text
      left = `${left} ${op} ${this.multiplicative()}`
    }
    return left
  }

  private multiplicative(): string {
    let left = this.filtered()
    while (this.isOp('*') || this.isOp('/') || this.isOp('%')) {
      const op = this.tokens[this.i++]!.text
      left = `${left} ${op} ${this.filtered()}`
    }
    return left
  }

  private filtered(): string {
    let value = this.unary()
    while (this.isOp('|')) {
      this.i++
      const name = this.peek()
      if (name?.kind !== 'name') this.fail('expected a filter name after "|"')
      this.i++
      const { positional, named } = this.isOp('(') ? this.args() : { positional: [], named: [] }
      if (name.text === 'default') {
        const fallback = positional[0] ?? named.find(([k]) => k === 'value')?.[1]
        if (fallback === undefined) this.fail('default needs value=…')
        // Tera's default applies when the value is missing; `env(name=X) | default(value=Y)` means env(X, Y).
        const env = /^env\((.*)\)$/s.exec(value)
        value = env && !env[1]!.includes(',') ? `env(${env[1]}, ${fallback})` : `(${value} ?? ${fallback})`
        continue
      }
      const filter = FILTERS[name.text]
      if (!filter) this.fail(`unknown filter "${name.text}"`)
      const extra = [...positional, ...filter.args.flatMap(arg => named.filter(([k]) => k === arg).map(([, v]) => v))]
      if (named.some(([k]) => !filter.args.includes(k))) this.fail(`unknown argument of filter "${name.text}"`)
      value = `${filter.helper}(${[value, ...extra].join(', ')})`
    }
    return value
  }

  private unary(): string {
    if (this.isOp('-')) {
      this.i++
      return `-${this.unary()}`
    }
    return this.postfix()
  }

  private postfix(): string {
    let value = this.primary()
    for (;;) {
      if (this.isOp('.')) {
        this.i++
        const t = this.peek()
        if (t?.kind === 'name') value = `${value}.${t.text}`
        else if (t?.kind === 'num' && /^\d+$/.test(t.text)) value = `${value}[${t.text}]`
        else this.fail('expected a name after "."')
        this.i++
      }
      else if (this.isOp('[')) {
        this.i++
        value = `${value}[${this.expression()}]`
        this.expect(']')
      }
      else return value
    }
  }

  private primary(): string {
    const t = this.peek()
    if (!t) this.fail('expression ends too early')
    if (t.kind === 'str') {
      this.i++
      return JSON.stringify(t.text)
    }
    if (t.kind === 'num') {
      this.i++
      return t.text
    }
    if (t.kind === 'op') {
      if (t.text === '(') {
        this.i++
        const inner = this.expression()
        this.expect(')')
        return `(${inner})`
      }
      if (t.text === '[') return this.array()
      if (t.text === '{') return this.object()
      this.fail(`unexpected "${t.text}"`)
    }
    this.i++
    const name = t.text
    if (name === 'true' || name === 'True') return 'true'
    if (name === 'false' || name === 'False') return 'false'
    if (name === 'none' || name === 'None') return 'null'
    if (this.isOp('::')) {
      this.i++
      const fn = this.peek()
      if (fn?.kind !== 'name') this.fail('expected a macro name after "::"')
      this.i++
      const { positional, named } = this.args()
      if (name === 'self' && this.scope.inMacroFile) {
        this.selfCall = true
        return `__macro(${JSON.stringify(fn.text)}, [${positional.join(', ')}]${named.length ? `, ${objectOf(named)}` : ''})`
      }
      if (!this.scope.isImport(name)) this.fail(`"${name}::" is not an imported macro file`)
      return `${name}(${JSON.stringify(fn.text)}, [${positional.join(', ')}]${named.length ? `, ${objectOf(named)}` : ''})`
    }
    if (this.isOp('(')) return this.call(name)
    if (this.scope.isLocal(name)) return name
    return `it.${name}`
  }

  private call(name: string): string {
    const { positional, named } = this.args()
    const order = POSITIONAL[name]
    if (order) {
      const unknown = named.find(([k]) => !order.includes(k))
      if (unknown) this.fail(`unknown argument "${unknown[0]}" of ${name}()`)
      const args = [...positional]
      for (const [index, key] of order.entries()) {
        const value = named.find(([k]) => k === key)?.[1]
        if (value !== undefined) {
          while (args.length < index) args.push('undefined')
          args[index] = value
        }
      }
      // toml_encode(s=…) and toml_encode(value=…) are both spelled upstream.
      return `${name === 'range' ? 'filter.range' : name}(${(name === 'toml_encode' ? args.filter(a => a !== 'undefined') : args).join(', ')})`
    }
    // Filters upstream also calls as functions: slug(s='Text').
    const asFilter = FILTERS[name]
    if (asFilter && asFilter.helper.startsWith('filter.') && named.length === 1 && ['s', 'value', 'text'].includes(named[0]![0]) && !positional.length) {
      return `${asFilter.helper}(${named[0]![1]})`
    }
    if (!/^(?:now_\w+|uuid_v7|ulid|trace_id|span_id|traceparent|fake_\w+)$/.test(name)) this.fail(`unknown function "${name}"`)
    if (positional.length) this.fail(`${name}() takes named arguments`)
    return named.length ? `${name}(${objectOf(named)})` : `${name}()`
  }

  private args(): { positional: string[]; named: Array<[string, string]> } {
    this.expect('(')
    const positional: string[] = []
    const named: Array<[string, string]> = []
    while (!this.isOp(')')) {
      const t = this.peek()
      if (t?.kind === 'name' && this.peek(1)?.text === '=' && this.peek(1)?.kind === 'op') {
        this.i += 2
        named.push([t.text, this.expression()])
      }
      else {
        if (named.length) this.fail('a positional argument after a named one')
        positional.push(this.expression())
      }
      if (!this.isOp(')')) this.expect(',')
    }
    this.i++
    return { positional, named }
  }

  private array(): string {
    this.expect('[')
    const items: string[] = []
    while (!this.isOp(']')) {
      items.push(this.expression())
      if (!this.isOp(']')) this.expect(',')
    }
    this.i++
    return `[${items.join(', ')}]`
  }

  private object(): string {
    this.expect('{')
    const entries: Array<[string, string]> = []
    while (!this.isOp('}')) {
      const key = this.peek()
      if (key?.kind !== 'str' && key?.kind !== 'name') this.fail('expected a key')
      this.i++
      this.expect(':')
      entries.push([key.text, this.expression()])
      if (!this.isOp('}')) this.expect(',')
    }
    this.i++
    return objectOf(entries)
  }
}

function objectOf(entries: ReadonlyArray<readonly [string, string]>): string {
  if (!entries.length) return '{}'
  const key = (k: string): string => /^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)
  return `{ ${entries.map(([k, v]) => `${key(k)}: ${v}`).join(', ')} }`
}
