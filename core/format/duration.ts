const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const DURATION_RE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/
const PART_RE = /(\d+(?:\.\d+)?)(ms|s|m|h)/g

/**
 * Parses `"250ms"`, `"5s"`, `"2m"`, `"1h"`, combinations such as `"1m30s"`, or an integer
 * number of milliseconds. Returns `undefined` for anything else.
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined
  if (typeof value !== 'string') return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text)
  if (!DURATION_RE.test(text)) return undefined
  let total = 0
  for (const [, amount, unit] of text.matchAll(PART_RE)) total += Number(amount) * UNIT_MS[unit!]!
  return Math.round(total)
}

/** Formats milliseconds for people: `850ms`, `1.2s`, `2m 5s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`
  const minutes = Math.floor(ms / 60_000)
  return `${minutes}m ${Math.round((ms % 60_000) / 1000)}s`
}
