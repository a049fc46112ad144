import type { ExecResult } from './engine/exec/types.ts'
import { JUDGE_LIMIT_BYTES } from './engine/exec/types.ts'
import { compilePattern, lineAnchorHint } from './format/regex.ts'
import type { StepSpec } from './format/spec.ts'

/** Why a step failed: the expectation, what happened, and the end of the relevant output. */
export interface StepFailure {
  /** The expectation as written: `expected_exit_code = 0`, `expected_output_regex = "ok"`. */
  expectation: string
  message: string
  stream?: 'stdout' | 'stderr'
  /** The last lines of the relevant output. */
  excerpt: string
  /**
   * The key the failing expectation is written at, within the step (`expected_output_regex`);
   * for a key of the test, its path (`meta.timeout`). Also the implicit ones: a step without
   * `expected_exit_code` that exits non-zero failed on `expected_exit_code`.
   */
  key?: string
  /** Which of the key's patterns failed, when it lists several. */
  index?: number
  /**
   * Where the failing key is written in the file the user edits (for a template, the template
   * line when it can be traced back, else the rendered line); the step's `run`/`command` line
   * when the key is implicit. 1-based. Absent when the run did not know the file's text.
   */
  location?: { line: number; column: number }
}

/** The last lines of an output, for failure messages. */
export function tail(text: string, lines = 20, chars = 2000): string {
  const kept = text.split('\n').slice(-lines - 1).join('\n')
  return kept.length > chars ? `…${kept.slice(-chars)}` : kept
}

const MiB = 1024 * 1024

/**
 * Checks a step's result against its expectations; `undefined` when every one holds. Patterns
 * judge each stream whole; a stream too large to keep fails its expectations rather than
 * being judged on a part (a `_not` pattern must never pass on output nobody saw).
 */
export function checkExpectations(step: StepSpec, result: ExecResult): StepFailure | undefined {
  if (result.timedOut) {
    return { expectation: `timeout = ${step.timeoutMs}ms`, message: `timed out after ${Math.round(result.durationMs)}ms and was killed`, stream: 'stdout', excerpt: tail(result.stdout || result.stderr), key: 'timeout' }
  }
  if (step.shouldFail) {
    if (result.exitCode === 0) {
      const stream = result.stderr.trim() ? 'stderr' : 'stdout'
      return { expectation: 'should_fail = true', message: 'exited with 0', stream, excerpt: tail(result[stream]), key: 'should_fail' }
    }
  }
  else if (result.exitCode !== step.expectedExitCode) {
    const stream = result.stderr.trim() ? 'stderr' : 'stdout'
    return { expectation: `expected_exit_code = ${step.expectedExitCode}`, message: `exited with ${result.exitCode}`, stream, excerpt: tail(result[stream]), key: 'expected_exit_code' }
  }
  const checks: Array<{ key: string; stream: 'stdout' | 'stderr'; patterns: readonly string[]; negated: boolean; literal?: boolean }> = [
    { key: 'expected_output_regex', stream: 'stdout', patterns: step.expectedOutputRegex, negated: false },
    { key: 'expected_output_regex_not', stream: 'stdout', patterns: step.expectedOutputRegexNot, negated: true },
    { key: 'expected_stderr_regex', stream: 'stderr', patterns: step.expectedStderrRegex, negated: false },
    { key: 'expected_output_contains', stream: 'stdout', patterns: step.expectedOutputContains, negated: false, literal: true },
  ]
  for (const { key, stream, patterns, negated, literal } of checks) {
    for (const [index, pattern] of patterns.entries()) {
      const expectation = `${key} = ${JSON.stringify(pattern)}`
      const at = { key, ...(patterns.length > 1 && { index }) }
      const text = result.whole[stream]
      if (text === undefined) {
        const size = (result.bytes[stream] / MiB).toFixed(1)
        return { expectation, message: `${stream} is too large to judge (${size} MiB, more than ${JUDGE_LIMIT_BYTES / MiB} MiB)`, stream, excerpt: tail(result[stream]), ...at }
      }
      if (literal) {
        if (!text.includes(pattern)) return { expectation, message: `${stream} does not contain it`, stream, excerpt: tail(result[stream]), ...at }
        continue
      }
      const compiled = compilePattern(pattern)
      if (negated) {
        const match = compiled.firstMatch(text)
        if (match !== undefined) return { expectation, message: `${stream} matches (${JSON.stringify(match.slice(0, 80))})`, stream, excerpt: tail(result[stream]), ...at }
      }
      else if (!compiled.test(text)) {
        const hint = lineAnchorHint(pattern, text)
        return { expectation, message: `${stream} does not match${hint ? `; ${hint}` : ''}`, stream, excerpt: tail(result[stream]), ...at }
      }
    }
  }
  return undefined
}
