import type { AttributeValue, Span, StatusCode } from './types.ts'

/** An attribute value's string form, as expectations compare it: `200`, `true`, `GET`. */
export function stringForm(value: AttributeValue | undefined): string {
  if (value === undefined) return ''
  if (value === null) return 'null'
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}

/**
 * Whether an attribute holds the expected value: equal string forms, or equal numbers
 * (`1.0` written in TOML and `1` sent as a double are the same number).
 */
export function attributeEquals(actual: AttributeValue | undefined, expected: string): boolean {
  if (actual === undefined) return false
  const text = stringForm(actual)
  if (text === expected) return true
  if ((typeof actual === 'number' || typeof actual === 'string') && expected.trim() !== '' && text.trim() !== '') {
    const a = Number(text)
    const b = Number(expected)
    return Number.isFinite(a) && Number.isFinite(b) && a === b
  }
  return false
}

const STATUS_NAMES: Record<string, StatusCode> = {
  ok: 'ok', error: 'error', unset: 'unset',
  status_code_ok: 'ok', status_code_error: 'error', status_code_unset: 'unset',
}

/**
 * A span's status: the OTLP status field, or, when that is unset, the `otel.status_code`
 * attribute some exporters write instead (`"OK"`, `"ERROR"`, any case).
 */
export function statusOf(span: Span): StatusCode {
  if (span.status.code !== 'unset') return span.status.code
  const attribute = span.attributes['otel.status_code']
  return typeof attribute === 'string' ? STATUS_NAMES[attribute.toLowerCase()] ?? 'unset' : 'unset'
}

/** Duration in milliseconds. */
export function durationMs(span: Span): number {
  return span.endTimeMs - span.startTimeMs
}

/** A number of milliseconds as reports show it: `12ms`, `1.25ms`, `0.003ms`. */
export function formatMs(ms: number): string {
  return `${Number(ms.toFixed(ms >= 100 ? 0 : 3))}ms`
}
