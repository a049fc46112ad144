/**
 * A code frame in the shape Vite's error overlay recognises (`> 12 | text` lines and a
 * `    | ^^^` marker, its `codeframeRE`): the overlay renders `frame` only when it has this shape.
 * Written here rather than imported: Vite does not export its `generateCodeFrame`.
 */
export function codeFrame(source: string, at: { line: number; column: number }, context = 2): string {
  // The newline that ends the file starts no line of its own.
  const lines = source.replace(/\r?\n$/, '').split(/\r?\n/)
  const first = Math.max(1, at.line - context)
  const last = Math.min(lines.length, at.line + context)
  if (at.line < 1 || at.line > lines.length) return ''
  const width = String(last).length
  const out: string[] = []
  for (let n = first; n <= last; n++) {
    // Tabs would shift the marker: shown as two spaces, as the marker counts them.
    const text = lines[n - 1]!.replace(/\t/g, '  ')
    out.push(`${n === at.line ? '>' : ' '} ${String(n).padStart(width)} | ${text}`)
    if (n === at.line) {
      const before = lines[n - 1]!.slice(0, at.column - 1).replace(/\t/g, '  ')
      // Under the key (a bare or quoted TOML key), at least one caret.
      const key = /^(?:[\w-]+|"[^"]*"|'[^']*')/.exec(text.slice(before.length))?.[0] ?? ''
      out.push(`  ${' '.repeat(width)} | ${' '.repeat(before.length)}${'^'.repeat(Math.max(1, key.length))}`)
    }
  }
  return out.join('\n')
}
