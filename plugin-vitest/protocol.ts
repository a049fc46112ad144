import type { StepResult, TestResult } from '../core/index.ts'

/** What the global setup tells workers: where the main process's run server listens, and its token. */
export interface RunServerInfo {
  url: string
  token: string
}

/** The plugin's options as the global setup needs them (plain data: they cross to workers too). */
export interface SetupOptions {
  vars: Record<string, string>
}

/** The `provide`/`inject` key of `RunServerInfo`. */
export const SERVER_KEY: string = 'clnrm:server'
/** The `provide` key of `SetupOptions`. */
export const OPTIONS_KEY: string = 'clnrm:options'

// Not an augmentation of Vitest's ProvidedContext: JSR refuses ambient module declarations, and
// users' `inject` types need not list ours. The two sides cast at the call, from these types.

/** A worker's request: run this test file, whose steps Vitest collected under these names. */
export interface RunRequest {
  file: string
  /** For a `[matrix]` file: which combination (an index into the spec's `variants`). */
  variant?: number
  steps: string[]
}

/**
 * One line of the run server's NDJSON answer: the run started, a step finished (in order), the run
 * ended with its result, or it could not run (the file changed, it is invalid, the engine failed).
 */
export type RunMessage =
  | { type: 'step'; index: number; step: StepResult }
  | { type: 'done'; result: TestResult }
  | { type: 'error'; code?: string; message: string; hint?: string }
