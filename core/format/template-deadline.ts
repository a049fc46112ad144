import { createContext, Script } from 'node:vm'
import type { Context } from 'node:vm'
import type { Eta } from 'eta'

/** The default render deadline. */
export const DEFAULT_RENDER_TIMEOUT_MS = 2000

/**
 * Thrown when a render running without the deadline reaches a partial that needs one; the
 * render starts again under the deadline. Never leaves the renderer.
 */
export class NeedsDeadline extends Error {}

/** Whether `error` is vm's report of a render stopped by the deadline. */
export function isDeadlineError(error: unknown): boolean {
  return (error as { code?: string })?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT'
}

/**
 * What in a tag's code can make a render run long: loops, functions (recursion, callbacks),
 * regular expressions (backtracking), code from strings, (typed) arrays and builtins that block
 * or repeat work, big-integer powers. A template whose tags hold none of these runs each
 * statement once, so its time is bounded by its length; it skips the deadline and its cost (a vm
 * call with a watchdog thread, about a millisecond: seconds at thousands of tests). Includes and
 * layouts are not risky by themselves: the partial they reach is compiled through the same cache
 * and judged there, and a render that reaches a risky one starts again under the deadline.
 * Anything unsure (a `/`, a comment) counts as risky.
 */
const RISKY_CODE_RE = /\b(?:for|while|do|function|block|eval|Function|RegExp|Atomics|BigInt|process|globalThis|require|import|repeat|fill|sort|padStart|padEnd|match|matchAll|replace|replaceAll|search|split|test|exec)\b|Array\b|\d+n\b|\*\*|=>|\//

/**
 * One-line string literals without escapes or `${`: a `/` in them (a path: `include("./_svc.eta")`)
 * is no regular expression and is left out of the check; their words still count (code can be
 * built from strings). A quote inside a regular expression may start a false match, but the
 * expression's opening `/` stays outside it.
 */
const PLAIN_STRING_RE = /'[^'\\\n]*'|"[^"\\\n]*"|`[^`\\\n$]*`/g

/** Whether a template's tags hold anything that could make its render run long (see RISKY_CODE_RE). */
export function mayRunLong(eta: Eta, text: string): boolean {
  try {
    return eta.parse(text).some(node => typeof node !== 'string' && RISKY_CODE_RE.test(node.val.replace(PLAIN_STRING_RE, quoted => quoted.replaceAll('/', ''))))
  }
  catch {
    return true
  }
}

// One vm context and one script for the whole process, created on first use: `timeout` is the
// only way to stop a synchronous loop that works the same on Node, Bun and Deno without leaving
// the thread (a worker would cost a message round trip and a copy of the data per render).
let deadline: { context: Context; script: Script } | undefined

/** Runs `fn`, stopping it after `timeoutMs` (vm's ERR_SCRIPT_EXECUTION_TIMEOUT). */
export function runWithDeadline<T>(fn: () => T, timeoutMs: number): T {
  deadline ??= { context: createContext({ run: undefined }), script: new Script('run()') }
  const { context, script } = deadline
  const previous: unknown = context.run
  context.run = fn
  try {
    return script.runInContext(context, { timeout: timeoutMs }) as T
  }
  finally {
    context.run = previous
  }
}

/**
 * Eta keeps the line being rendered in a local `__eta` object; a render stopped by the deadline
 * never reaches Eta's catch block, so each compiled template registers that object (and its file)
 * on a stack the renderer can read afterwards. The stack top is the innermost template running.
 */
export interface Frame {
  eta: { line: number }
  file: string | undefined
}
const ETA_STATE_RE = /^let __eta = (\{.*\});$/m
const ETA_RETURN = '\nreturn __eta.res;'

/**
 * Rewrites a template compiled by Eta (its function body) to call `it.__clnrm.enter` with its
 * `__eta` state and file on entry and `it.__clnrm.leave` on return (see `Frame`). Code of
 * another shape is returned as it is.
 */
export function traceFrames(code: string): string {
  const at = code.lastIndexOf(ETA_RETURN)
  if (!ETA_STATE_RE.test(code) || at === -1) return code
  const traced = code.replace(ETA_STATE_RE, 'let __eta = it.__clnrm.enter($1, options.filepath);')
  const end = traced.lastIndexOf(ETA_RETURN)
  return `${traced.slice(0, end)}\nit.__clnrm.leave();${traced.slice(end)}`
}
