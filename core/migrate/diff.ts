/**
 * A unified diff of two texts, line by line (longest common subsequence; the files a migration
 * touches are templates of a few hundred lines, so the quadratic table is small).
 */
export function unifiedDiff(before: string, after: string, fromName: string, toName: string, context = 3): string {
  const a = splitLines(before)
  const b = splitLines(after)
  const n = a.length
  const m = b.length
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1))
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!)
  }
  type Op = { kind: ' ' | '-' | '+'; text: string; ai: number; bi: number }
  const ops: Op[] = []
  let i = 0
  let j = 0
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) ops.push({ kind: ' ', text: a[i]!, ai: i++, bi: j++ })
    else if (i < n && (j >= m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) ops.push({ kind: '-', text: a[i]!, ai: i++, bi: j })
    else ops.push({ kind: '+', text: b[j]!, ai: i, bi: j++ })
  }
  const changed = ops.map((op, k) => op.kind !== ' ' ? k : -1).filter(k => k >= 0)
  if (!changed.length) return ''
  const out = [`--- ${fromName}`, `+++ ${toName}`]
  let k = 0
  while (k < changed.length) {
    const start = Math.max(0, changed[k]! - context)
    let end = Math.min(ops.length, changed[k]! + context + 1)
    while (k + 1 < changed.length && changed[k + 1]! - context <= end) end = Math.min(ops.length, changed[++k]! + context + 1)
    k++
    const hunk = ops.slice(start, end)
    const aLen = hunk.filter(op => op.kind !== '+').length
    const bLen = hunk.filter(op => op.kind !== '-').length
    const aStart = aLen ? hunk.find(op => op.kind !== '+')!.ai + 1 : hunk[0]!.ai
    const bStart = bLen ? hunk.find(op => op.kind !== '-')!.bi + 1 : hunk[0]!.bi
    out.push(`@@ -${aStart},${aLen} +${bStart},${bLen} @@`, ...hunk.map(op => `${op.kind}${op.text}`))
  }
  return `${out.join('\n')}\n`
}

function splitLines(text: string): string[] {
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  return lines
}
