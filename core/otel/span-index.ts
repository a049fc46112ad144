import { compileGlob, isGlob } from './glob.ts'
import type { Span } from './types.ts'

/**
 * The spans of one evaluation, indexed once: by name, by id, and by glob on demand (memoised
 * for the call). Cheap enough to build on every settle tick of the dev loop.
 */
export interface SpanIndex {
  spans: readonly Span[]
  /** Spans whose name matches the glob, in arrival order. */
  matching: (glob: string) => Span[]
  /** The span's direct parent, when it is among the spans. */
  parentOf: (span: Span) => Span | undefined
  /** Distinct span names seen. */
  names: string[]
  /** The earliest start: times in messages are relative to it. */
  originMs: number
}

const key = (traceId: string, spanId: string): string => `${traceId}/${spanId}`

/** Builds the index of one evaluation. */
export function indexSpans(spans: readonly Span[]): SpanIndex {
  const byName = new Map<string, Span[]>()
  let originMs = Number.POSITIVE_INFINITY
  for (const span of spans) {
    let list = byName.get(span.name)
    if (!list) byName.set(span.name, list = [])
    list.push(span)
    if (span.startTimeMs < originMs) originMs = span.startTimeMs
  }
  // Built on first use: only parent and graph rules need ids.
  let byId: Map<string, Span> | undefined
  const ids = (): Map<string, Span> => {
    if (!byId) {
      byId = new Map()
      for (const span of spans) byId.set(key(span.traceId, span.spanId), span)
    }
    return byId
  }
  const memo = new Map<string, Span[]>()
  const names = [...byName.keys()]
  return {
    spans,
    names,
    originMs: Number.isFinite(originMs) ? originMs : 0,
    matching(glob) {
      let found = memo.get(glob)
      if (found) return found
      if (!isGlob(glob)) found = byName.get(glob) ?? []
      else {
        // Test each distinct name once, not each span.
        const re = compileGlob(glob)
        const matched = new Set(names.filter(n => re.test(n)))
        found = matched.size <= 1 ? byName.get([...matched][0] ?? '') ?? [] : spans.filter(s => matched.has(s.name))
      }
      memo.set(glob, found)
      return found
    },
    parentOf(span) {
      return span.parentSpanId === undefined ? undefined : ids().get(key(span.traceId, span.parentSpanId))
    },
  }
}
