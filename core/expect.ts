import type { ExecResult } from './exec/types.ts'
import { compilePattern } from './regex.ts'
import type { StepSpec } from './spec.ts'

/** Why a step failed: the expectation, what happened, and the end of the relevant output. */
export interface StepFailure {
  /** The expectation as written: `expected_exit_code = 0`, `expected_output_regex = "ok"`. */
  expectation: string
  message: string
  stream?: 'stdout' | 'stderr'
  /** The last lines of the relevant output. */
  excerpt: string
}

/** The last lines of an output, for failure messages. */
export function tail(text: string, lines = 20, chars = 2000): string {
  const kept = text.split('\n').slice(-lines - 1).join('\n')
  return kept.length > chars ? `…${kept.slice(-chars)}` : kept
}

/** Checks a step's result against its expectations; `undefined` when every one holds. */
export function checkExpectations(step: StepSpec, result: ExecResult): StepFailure | undefined {
  if (result.timedOut) {
    return { expectation: `timeout = ${step.timeoutMs}ms`, message: `timed out after ${Math.round(result.durationMs)}ms and was killed`, stream: 'stdout', excerpt: tail(result.stdout || result.stderr) }
  }
  if (result.exitCode !== step.expectedExitCode) {
    const stream = result.stderr.trim() ? 'stderr' : 'stdout'
    return { expectation: `expected_exit_code = ${step.expectedExitCode}`, message: `exited with ${result.exitCode}`, stream, excerpt: tail(result[stream]) }
  }
  for (const pattern of step.expectedOutputRegex) {
    if (!compilePattern(pattern).test(result.stdout)) {
      return { expectation: `expected_output_regex = ${JSON.stringify(pattern)}`, message: 'stdout does not match', stream: 'stdout', excerpt: tail(result.stdout) }
    }
  }
  for (const pattern of step.expectedOutputRegexNot) {
    const match = compilePattern(pattern).exec(result.stdout)
    if (match) {
      return { expectation: `expected_output_regex_not = ${JSON.stringify(pattern)}`, message: `stdout matches (${JSON.stringify(match[0].slice(0, 80))})`, stream: 'stdout', excerpt: tail(result.stdout) }
    }
  }
  for (const pattern of step.expectedStderrRegex) {
    if (!compilePattern(pattern).test(result.stderr)) {
      return { expectation: `expected_stderr_regex = ${JSON.stringify(pattern)}`, message: 'stderr does not match', stream: 'stderr', excerpt: tail(result.stderr) }
    }
  }
  return undefined
}
