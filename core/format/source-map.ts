import type { Position } from './locate.ts'

const TAG_RE = /<%[\s\S]*?%>/g

/**
 * Maps a position in a template's rendered output back to the template, where the line is
 * recognisable: a template line whose literal text (around its `<% %>` tags) appears on the
 * rendered line. Output that only a tag produced cannot be mapped; we then return `undefined`
 * and callers report the rendered line instead.
 */
export function mapToTemplate(template: string, rendered: string, at: Position): Position | undefined {
  const renderedLines = rendered.split(/\r?\n/)
  const target = renderedLines[at.line - 1]
  if (target === undefined || target.trim() === '') return undefined
  const templateLines = literalLines(template)

  let best: { line: number; score: number; column: number } | undefined
  templateLines.forEach((fragments, index) => {
    const match = matchFragments(fragments, target)
    if (!match) return
    // A line such as `[[steps]]` occurs many times: the lines after it tell which one it is.
    let context = 0
    for (let k = 1, t = index + 1; k <= 3 && t < templateLines.length; t++) {
      if (templateLines[t]!.length === 0) continue
      const next = renderedLines[at.line - 1 + k]
      if (next === undefined || !matchFragments(templateLines[t]!, next)) break
      context++
      k++
    }
    // Prefer more literal text and more matching context; then the nearest relative position.
    const expected = (at.line / renderedLines.length) * templateLines.length
    const score = match.literal * 1000 + context * 100_000 - Math.abs(index + 1 - expected)
    if (!best || score > best.score) best = { line: index + 1, score, column: match.columnFor(at.column) }
  })
  return best && { line: best.line, column: best.column }
}

/** For each template line, its literal fragments with their columns; lines inside a tag have none. */
function literalLines(template: string): Array<Array<{ text: string; column: number }>> {
  const lines: Array<Array<{ text: string; column: number }>> = template.split(/\r?\n/).map(() => [])
  let line = 0
  let column = 1
  let last = 0
  const pushLiteral = (text: string): void => {
    for (const [i, part] of text.split(/\r?\n/).entries()) {
      if (i > 0) {
        line++
        column = 1
      }
      if (part.trim()) lines[line]!.push({ text: part, column })
      column += part.length
    }
  }
  const advance = (text: string): void => {
    const breaks = text.split(/\r?\n/)
    if (breaks.length > 1) {
      line += breaks.length - 1
      column = breaks.at(-1)!.length + 1
    }
    else column += text.length
  }
  for (const tag of template.matchAll(TAG_RE)) {
    pushLiteral(template.slice(last, tag.index))
    advance(tag[0])
    last = tag.index! + tag[0].length
  }
  pushLiteral(template.slice(last))
  return lines
}

function matchFragments(fragments: Array<{ text: string; column: number }>, target: string): { literal: number; columnFor: (col: number) => number } | undefined {
  if (fragments.length === 0) return undefined
  const positions: number[] = []
  let from = 0
  for (const [i, fragment] of fragments.entries()) {
    // The first fragment anchors the line: leading literal text must start the rendered line.
    const text = i === 0 ? fragment.text.trimStart() : fragment.text
    const found = target.indexOf(text, from)
    if (found === -1 || (i === 0 && target.slice(0, found).trim() !== '')) return undefined
    positions.push(found)
    from = found + text.length
  }
  const literal = fragments.reduce((sum, f) => sum + f.text.trim().length, 0)
  if (literal < 3) return undefined
  return {
    literal,
    // Inside a literal fragment the column carries over; elsewhere the fragment start is the best guess.
    columnFor: (col) => {
      for (let i = fragments.length - 1; i >= 0; i--) {
        const start = positions[i]! + 1
        const f = fragments[i]!
        const lead = i === 0 ? f.text.length - f.text.trimStart().length : 0
        if (col >= start) return Math.min(f.column + lead + (col - start), f.column + f.text.length)
      }
      return fragments[0]!.column
    },
  }
}
