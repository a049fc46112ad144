import type { Span } from './types.ts'

/** One span in tree order, with its depth (0 for a root). */
export interface SpanTreeRow {
  span: Span
  depth: number
}

const byStart = (a: Span, b: Span): number => a.startTimeMs - b.startTimeMs || a.endTimeMs - b.endTimeMs

/**
 * Spans in the order a trace is read: each root by start time, then its children (by start time)
 * under it, depth-first. A span whose parent is not among `spans` (not received, or from another
 * process) counts as a root, so every span appears exactly once, even for a malformed parent cycle.
 */
export function spanTree(spans: readonly Span[]): SpanTreeRow[] {
  // Parent ids are only unique within a trace.
  const key = (traceId: string, spanId: string): string => `${traceId}/${spanId}`
  const ids = new Set(spans.map(s => key(s.traceId, s.spanId)))
  const children = new Map<string, Span[]>()
  const roots: Span[] = []
  for (const span of spans) {
    const parent = span.parentSpanId === undefined ? undefined : key(span.traceId, span.parentSpanId)
    if (parent === undefined || !ids.has(parent) || parent === key(span.traceId, span.spanId)) roots.push(span)
    else children.set(parent, [...(children.get(parent) ?? []), span])
  }
  const rows: SpanTreeRow[] = []
  const seen = new Set<Span>()
  const visit = (span: Span, depth: number): void => {
    if (seen.has(span)) return
    seen.add(span)
    rows.push({ span, depth })
    for (const child of (children.get(key(span.traceId, span.spanId)) ?? []).sort(byStart)) visit(child, depth + 1)
  }
  for (const root of roots.sort(byStart)) visit(root, 0)
  // Spans caught in a parent cycle have no root above them: show them flat rather than lose them.
  for (const span of [...spans].sort(byStart)) visit(span, 0)
  return rows
}

/** A span's duration for people: `0.42ms`, `4.1ms`, `12ms`, `1.25s`. */
export function formatSpanDuration(ms: number): string {
  const value = Math.max(0, ms)
  if (value < 1) return `${value.toFixed(2)}ms`
  if (value < 10) return `${value.toFixed(1)}ms`
  if (value < 1000) return `${Math.round(value)}ms`
  return `${(value / 1000).toFixed(value < 10_000 ? 2 : 1)}s`
}
