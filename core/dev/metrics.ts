/**
 * Where one reload's time went, from the file's change event to results on screen. Phase times
 * of several tests run in parallel are their longest, render and parse times their sum.
 */
export interface HotReloadMetrics {
  /** From the file's modification time to the change event reaching the session. */
  fileDetectionMs: number
  /** From the first change event to the run starting: one tick, since saves no longer wait for a quiet window. */
  debounceMs: number
  templateRenderMs: number
  configParseMs: number
  /** Leasing containers: ~0 when reused, a container start otherwise. */
  containerStartMs: number
  testExecutionMs: number
  /** Waiting after the last step for the services' spans to arrive (0 without span expectations). */
  settleMs?: number
  /** Time the result listeners (formatting, printing, sending) took. */
  resultFormattingMs: number
  /** From the first change event to the last result displayed. */
  totalLatencyMs: number
  /** Session-wide hit rates, 0..1. */
  templateCacheHitRate: number
  configCacheHitRate: number
  /** Share of this reload's services whose container was reused, 0..1. */
  containerReuseRate: number
  /** Resident set size of the process. */
  memoryMb: number
  tests: Array<{ file: string; name?: string; reason: string; status: 'pass' | 'fail' | 'error' | 'invalid' | 'superseded'; durationMs: number }>
}

/** Milliseconds rounded to 0.1 for display and NDJSON. */
export const roundMs = (ms: number): number => Math.round(ms * 10) / 10
