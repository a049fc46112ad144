import { EtaParseError } from 'eta'
import type { Eta } from 'eta'
import type { Diagnostic, DiagnosticCode } from './diagnostics.ts'
import { TestFileError } from './diagnostics.ts'
import type { RenderInputs } from './template-types.ts'

/** A render failed; `inputs` holds what it read before failing, so a fix to a partial can rerun it. */
export class TemplateRenderError extends TestFileError {
  override name = 'TemplateRenderError'
  readonly inputs: RenderInputs

  constructor(diagnostics: readonly Diagnostic[], inputs: RenderInputs, options?: ErrorOptions) {
    super(diagnostics, options)
    this.inputs = inputs
  }
}

/** Thrown inside Eta and turned into a diagnostic at the edge of `render`. */
export class TemplateProblem extends Error {
  constructor(readonly code: DiagnosticCode, message: string, readonly file: string | undefined, readonly line: number | undefined, readonly hint?: string) {
    super(message)
  }
}

/** Eta's filter for printed values: their text, and a located error for `undefined`. */
export function printValue(value: unknown): string {
  if (value === undefined) {
    throw new TemplateProblem('CLNRM_TEMPLATE_UNDEFINED', 'A tag printed undefined', undefined, undefined,
      'Define the var in [vars] (the test file or clnrm.toml) or with --var name=value, give a default (<%= it.name ?? "x" %>), or fix the name.')
  }
  return String(value)
}

/** Names the output tag on `line` that printed undefined, when the line has one such tag. */
export function undefinedMessage(text: string, line: number): string {
  const tags = [...(text.split(/\r?\n/)[line - 1] ?? '').matchAll(/<%[-_]?\s*[=~]\s*([\s\S]*?)\s*[-_]?%>/g)].map(m => m[1])
  return tags.length === 1 ? `\`${tags[0]}\` is undefined: the tag would print "undefined"` : 'A tag on this line printed undefined'
}

/** A render's failure as a located diagnostic: at the problem's file and line, the column of its first tag. */
export function toRenderError(error: unknown, file: string, source: string, read: (path: string) => string, inputs: RenderInputs): TemplateRenderError {
  const problem = error instanceof TemplateProblem
    ? error
    : new TemplateProblem('CLNRM_TEMPLATE_RUNTIME', `Template error: ${(error as Error)?.message ?? String(error)}`, file, undefined)
  const at = problem.file ?? file
  let text = source
  if (at !== file) {
    try {
      text = read(at)
    }
    catch {}
  }
  const line = problem.line ?? 1
  const column = (text.split(/\r?\n/)[line - 1]?.indexOf('<%') ?? -1) + 1 || 1
  const diagnostic: Diagnostic = { code: problem.code, severity: 'error', message: problem.message, hint: problem.hint, file: at, line, column }
  return new TemplateRenderError([diagnostic], inputs, { cause: error })
}

/** Finds the line of a template syntax error: Eta reports unclosed tags, the JS engine reports nothing. */
export function syntaxProblem(eta: Eta, error: unknown, text: string, file: string | undefined): TemplateProblem {
  const message = (error as Error).message ?? String(error)
  const hint = 'Check the <% %> tags on this line: every tag must close, and its JavaScript must be complete.'
  const parsed = /at line (\d+) col (\d+)/.exec(message)
  if (error instanceof EtaParseError && parsed) {
    return new TemplateProblem('CLNRM_TEMPLATE_SYNTAX', `Template syntax error: ${message.split(' at line')[0]}`, file, Number(parsed[1]), hint)
  }
  const reason = /Bad template syntax\s+([^\n]*)/.exec(message)?.[1] ?? message
  return new TemplateProblem('CLNRM_TEMPLATE_SYNTAX', `Template syntax error: ${reason}`, file, findBadTag(eta, text), hint)
}

function findBadTag(eta: Eta, text: string): number | undefined {
  let tags: Array<{ t: string; val: string; lineNo?: number }>
  try {
    tags = eta.parse(text).filter(node => typeof node !== 'string') as typeof tags
  }
  catch {
    return undefined
  }
  let code = ''
  for (const tag of tags) {
    const candidate = tag.t === 'e' ? `${code}\n${tag.val}` : code
    const standalone = tag.t === 'e' ? candidate : `return (${tag.val}\n)`
    try {
      // eslint-disable-next-line no-new-func
      new Function(standalone)
    }
    catch (error) {
      // Open blocks (`for (…) {`) end the input early; any other error is this tag's fault.
      if (tag.t !== 'e' || !/end of input|missing \} |Unexpected end/i.test((error as Error).message)) return tag.lineNo
    }
    code = candidate
  }
  return tags.at(-1)?.lineNo
}
