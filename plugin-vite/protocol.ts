/**
 * The one channel between the clnrm Vite plugin and its browser view. Server and client both
 * import this file, so names and payloads cannot drift apart. `custom-events.ts` beside it adds
 * them to Vite's `CustomEventMap` for `import.meta.hot.on` (JSR does not publish module
 * augmentations, so that part stays out of the package's public types).
 */

/** Sent by the server after every change, and to a client that says it is ready (replay). */
export const RESULTS_EVENT = 'clnrm:results'
/** Sent by the client when its view has loaded. */
export const CLIENT_READY_EVENT = 'clnrm:client-ready'
/** Sent by the client when the user asks for a rerun from the panel. */
export const RERUN_EVENT = 'clnrm:rerun'

/** Sent by the server to the client that asked for a rerun, once the rerun's reload has started (or not). */
export const RERUN_STARTED_EVENT = 'clnrm:rerun-started'

/**
 * The answer to one rerun request, in request order: the id of the reload that runs it (results
 * of that reload or a later one end the panel's "rerunning…" notice; an older reload's do not),
 * and how many tests it runs (0: nothing to rerun, no reload).
 */
export interface RerunStarted {
  reloadId?: number
  tests: number
}

/** What the panel asks to rerun: every test, those that failed, or one test file. */
export type RerunRequest = { scope: 'all' } | { scope: 'failed' } | { scope: 'test'; file: string }

/** Where something is in a test file, for editor links. */
export interface SourceLocation {
  /** Absolute path, as `/__open-in-editor` wants it. */
  file: string
  line: number
  column: number
}

/** One test file as the browser shows it. */
export interface TestView {
  /** Absolute path of the test file. */
  file: string
  /** Path relative to the Vite root, for display. */
  relative: string
  name: string
  status: 'pass' | 'fail' | 'error' | 'invalid' | 'running'
  durationMs?: number
  /** The first failing step, or the error that stopped the test. */
  failure?: {
    step?: string
    expectation: string
    message: string
    excerpt: string
    location?: SourceLocation
  }
  /** Problems of an invalid file, each with its location. */
  problems?: Problem[]
  /** Notes on output shown cut (head and tail), also on a pass; the whole output was judged. */
  truncated?: string[]
  /** Warnings of a file that loads: what clnrm ignores or could not find. */
  warnings?: Problem[]
  /** The run's spans for the waterfall, in tree order (at most `SPAN_BARS_LIMIT`; `spanRules.spans` counts all). */
  spans?: SpanBar[]
  /** The verdict on the spans, when the test declares span expectations. */
  spanRules?: SpanRulesView
}

/** The most spans sent per test: a waterfall of more is not read, and the payload stays small. */
export const SPAN_BARS_LIMIT = 200

/** One bar of a test's waterfall. Times are relative to the start of the test's first span. */
export interface SpanBar {
  id: string
  /** The parent's id, when the parent is among the test's spans. */
  parent?: string
  /** Depth in the span tree (0 for a root), for indenting the name. */
  depth: number
  name: string
  service: string
  /** Milliseconds after the first span started. */
  startMs: number
  durationMs: number
  status: 'unset' | 'ok' | 'error'
  /** Named by a failed rule (a span it involves, or its closest candidate). */
  highlighted: boolean
}

/** What the span rules said: counts, and each failed rule. */
export interface SpanRulesView {
  checked: number
  /** Every span received for the run (bars may be fewer). */
  spans: number
  settleMs: number
  failures: SpanFailureView[]
}

/** A span rule that did not hold, located in the test file. */
export interface SpanFailureView {
  /** `expect.span[checkout.charge].attrs.all` */
  rule: string
  expected: string
  actual: string
  closest?: { spanId: string; name: string; service: string; differences: string[] }
  spanIds: string[]
  location?: SourceLocation
}

/** One diagnostic of a test file, located for an editor link. */
export interface Problem {
  code: string
  message: string
  hint?: string
  location: SourceLocation
}

/** The last reload's phases, in milliseconds. */
export interface ReloadView {
  id: number
  changed: string[]
  totalLatencyMs: number
  phases: Array<{ name: string; ms: number }>
  templateCacheHitRate: number
  configCacheHitRate: number
  containerReuseRate: number
  /** The tests this reload ran, with why (`changed`, `rerun`, `imports src/api.ts`, …). */
  tests?: Array<{ relative: string; reason: string; status: string }>
}

/**
 * The Docker engine as the plugin sees it. `unreachable`: no engine answers (at start, or it went
 * away); the plugin retries with backoff and runs the tests once it answers again.
 */
export interface EngineView {
  status: 'unreachable'
  /** What is wrong: `No Docker engine is reachable at DOCKER_HOST=…`. */
  message: string
  /** What to do, naming only what the user has (Docker, DOCKER_HOST). */
  hint?: string
}

/**
 * One image the engine is pulling for the tests, or pulled, or could not pull. A line each in the
 * panel while tests wait on it; a pulled image's line goes once a reload has finished after it, a
 * failed one's once no test uses the image (or a later pull of it succeeds).
 */
export interface PullView {
  image: string
  /** Where it comes from (`docker.io` for Docker Hub's short names). */
  registry: string
  state: 'pulling' | 'pulled' | 'failed'
  /** `2/3 layers, 12.1 MB/30.5 MB`; empty before the engine named a layer. */
  amounts: string
  /** Bytes so far and to fetch, for a progress bar (total 0: not known yet). */
  bytes: { current: number; total: number }
  /** How long it took (`pulled`, `failed`), as people read it: `1.2s`. */
  took?: string
  /** Why it failed, in the engine's words, and what to do next. */
  error?: { reason: string; hint: string }
}

/** Everything the view shows: every test's latest result, and the last reload. */
export interface ResultsPayload {
  tests: TestView[]
  /** `warned`: files that load with warnings (whatever their status). */
  counts: { pass: number; fail: number; running: number; warned: number }
  lastReload?: ReloadView
  /** Whether the first run of every test is done. */
  ready: boolean
  /** Present while no Docker engine answers: the view shows it instead of waiting forever. */
  engine?: EngineView
  /** Images being pulled for the tests (they wait on them), just pulled, or that could not be pulled. */
  pulls?: PullView[]
}
