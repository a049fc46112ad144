/** Template syntax found in a file that is not a template, with its 1-based place. */
export interface TemplateMark {
  line: number
  column: number
  /** The opening, as written: `{{`, `{%`, `{#` or `<%`. */
  open: string
  engine: 'tera' | 'eta'
}

// An opening counts only with its closing later in the text, so shell such as `${#VAR}`,
// `${VAR}` or `awk '{print}'` is left alone. `{{.` is a Go template (`docker inspect -f
// '{{.State.Running}}'`), which Tera cannot start an expression with.
const PAIRS: ReadonlyArray<{ open: string; close: string; engine: TemplateMark['engine'] }> = [
  { open: '{{', close: '}}', engine: 'tera' },
  { open: '{%', close: '%}', engine: 'tera' },
  { open: '{#', close: '#}', engine: 'tera' },
  { open: '<%', close: '%>', engine: 'eta' },
]

/**
 * Finds Tera (`{{ … }}`, `{% … %}`, `{# … #}`) and Eta (`<% … %>`) tags in a plain TOML file,
 * where they would be run as literal text. TOML comments are skipped.
 */
export function findTemplateMarks(source: string): TemplateMark[] {
  if (!/\{\{|\{%|\{#|<%/.test(source)) return []
  const code = blankComments(source)
  const marks: TemplateMark[] = []
  let lineStart = 0
  let line = 1
  for (let i = 0; i < code.length - 1; i++) {
    if (code[i] === '\n') {
      line++
      lineStart = i + 1
      continue
    }
    const pair = PAIRS.find(p => code.startsWith(p.open, i))
    if (!pair) continue
    if (pair.open === '{{' && code[i + 2] === '.') continue
    if (pair.open === '{#' && code[i - 1] === '$') continue
    if (code.indexOf(pair.close, i + 2) === -1) continue
    marks.push({ line, column: i - lineStart + 1, open: pair.open, engine: pair.engine })
    const end = code.indexOf(pair.close, i + 2)
    // Skip to the closing, counting the lines in between.
    for (let j = i; j < end; j++) {
      if (code[j] === '\n') {
        line++
        lineStart = j + 1
      }
    }
    i = end + pair.close.length - 1
  }
  return marks
}

/** The text with TOML comments replaced by spaces (offsets and lines kept). */
function blankComments(source: string): string {
  const out = source.split('')
  let quote: '"' | '\'' | '"""' | '\'\'\'' | undefined
  for (let i = 0; i < source.length; i++) {
    const ch = source[i]!
    if (quote) {
      if (quote.length === 1 && ch === '\n') quote = undefined
      else if (quote === '"' && ch === '\\') i++
      else if (quote === '"""' && ch === '\\') i++
      else if (source.startsWith(quote, i)) {
        i += quote.length - 1
        quote = undefined
      }
      continue
    }
    if (ch === '#') {
      while (i < source.length && source[i] !== '\n') out[i++] = ' '
      continue
    }
    if (source.startsWith('"""', i) || source.startsWith('\'\'\'', i)) {
      quote = source.slice(i, i + 3) as '"""' | '\'\'\''
      i += 2
    }
    else if (ch === '"' || ch === '\'') quote = ch
  }
  return out.join('')
}
