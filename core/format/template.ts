import { readFileSync } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import { createContext, Script } from 'node:vm'
import type { Context } from 'node:vm'
import { Eta, EtaParseError } from 'eta'
import type { TemplateFunction } from 'eta'
import { MemoryCache } from '../cache.ts'
import type { Diagnostic, DiagnosticCode } from './diagnostics.ts'
import { TestFileError } from './diagnostics.ts'
import { contentHash } from '../hash.ts'
import { outside, realPath, realRootOf } from './real-path.ts'
import type { EnvRead } from './template-helpers.ts'
import { createTemplateHelpers } from './template-helpers.ts'
import { asTable, literalDeterminism, literalTableText, upstreamTemplateData } from './template-tables.ts'
import { parseToml } from './toml-parse.ts'

/** Everything a render read: the dev loop reruns the test when any of these change. */
export interface RenderInputs {
  /** The template itself (absolute). */
  template: string
  /** Partials it included, directly or through other partials (absolute, in first-use order). */
  partials: string[]
  /** Environment variables read through `env()`, with the values seen. */
  env: EnvRead[]
}

/** The rendered TOML and what it was made from. */
export interface RenderResult {
  output: string
  inputs: RenderInputs
  /** The vars the template saw: the project's, its own `[vars]`, then `--var` overrides. */
  vars: Record<string, unknown>
}

/** One render's data. */
export interface RenderRequest {
  /** Absolute path of the `.eta` template. */
  file: string
  /** The template's text; read from `file` when omitted. */
  source?: string
  /** Project vars merged with `--var` overrides: `it.<name>` and `vars.<name>`. */
  vars?: Readonly<Record<string, unknown>>
  /**
   * `--var` values: applied over the template's own `[vars]` table, which itself overrides the
   * project's `vars` (upstream's precedence: user, file, project).
   */
  overrides?: Readonly<Record<string, unknown>>
  /** One combination of the file's `[matrix]`: `it.matrix.<key>`. */
  matrix?: Readonly<Record<string, string>>
  /** Project-wide defaults; a literal `[determinism]` table in the template wins. */
  determinism?: { seed?: number; freezeClock?: string }
  /** The environment `env()` reads. @default process.env */
  env?: Readonly<Record<string, string | undefined>>
}

/**
 * A top-level table read from a template's text before it renders: its text (rendered when it
 * held tags; other lines blank, so positions in it are positions in the template) and its value,
 * when that text parses.
 */
export interface LiteralTable {
  text: string
  value?: unknown
}

/** Options of a template renderer. */
export interface TemplateRendererOptions {
  /** Project root: partials must live inside it. */
  root: string
  /** Compiled-template cache, keyed by a hash of the template text. @default a MemoryCache of 100 entries */
  cache?: MemoryCache<string, TemplateFunction>
  /** Reads partials. @default fs.readFileSync */
  readFile?: (path: string) => string
  /**
   * How long one render may run before it is stopped and reported as `CLNRM_TEMPLATE_TIMEOUT`
   * (a loop that never ends would otherwise freeze `validate`, `render` and `dev`). @default 2000
   */
  timeoutMs?: number
}

/** The default render deadline. */
export const DEFAULT_RENDER_TIMEOUT_MS = 2000

/** Renders `.clnrm.toml.eta` templates. Compiled templates are shared between renders. */
export interface TemplateRenderer {
  render: (request: RenderRequest) => RenderResult
  /**
   * A literal top-level table of the template (`[matrix]`, `[vars]`), rendered with the
   * request's vars (its tags may read `env()`) and parsed. Undefined when the template has none
   * or it does not parse (the whole render then reports the problem where it is).
   */
  readTable: (request: RenderRequest, name: string) => LiteralTable | undefined
  readonly cache: MemoryCache<string, TemplateFunction>
}

/** A render failed; `inputs` holds what it read before failing, so a fix to a partial can rerun it. */
export class TemplateRenderError extends TestFileError {
  override name = 'TemplateRenderError'
  readonly inputs: RenderInputs

  constructor(diagnostics: readonly Diagnostic[], inputs: RenderInputs, options?: ErrorOptions) {
    super(diagnostics, options)
    this.inputs = inputs
  }
}

/**
 * Thrown when a render running without the deadline reaches a partial that needs one; the
 * render starts again under the deadline. Never leaves the renderer.
 */
class NeedsDeadline extends Error {}

/** Thrown inside Eta and turned into a diagnostic at the edge of `render`. */
class TemplateProblem extends Error {
  constructor(readonly code: DiagnosticCode, message: string, readonly file: string | undefined, readonly line: number | undefined, readonly hint?: string) {
    super(message)
  }
}

// Helpers are plain locals in templates (`env("HOME")`, `toml(x)`); `it` stays the user's data.
const FUNCTION_HEADER = `const {env, now, sha256, toml, uuid, fake, ${Object.keys(createTemplateHelpers({ env: {}, onEnvRead: () => {} })).filter(name => /^(?:fake_|now_|uuid_|ulid|trace|span_id|pick|toml_encode|filter)/.test(name)).join(', ')}} = it.__clnrm;`

/**
 * Eta keeps the line being rendered in a local `__eta` object; a render stopped by the deadline
 * never reaches Eta's catch block, so each compiled template registers that object (and its file)
 * on a stack the renderer can read afterwards. The stack top is the innermost template running.
 */
interface Frame {
  eta: { line: number }
  file: string | undefined
}
const ETA_STATE_RE = /^let __eta = (\{.*\});$/m
const ETA_RETURN = '\nreturn __eta.res;'

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

/** Compiled templates that need the render deadline (keyed by function, so a shared cache keeps the answer). */
const needsDeadline = new WeakMap<TemplateFunction, boolean>()

// One vm context and one script for the whole process, created on first use: `timeout` is the
// only way to stop a synchronous loop that works the same on Node, Bun and Deno without leaving
// the thread (a worker would cost a message round trip and a copy of the data per render).
let deadline: { context: Context; script: Script } | undefined

/** Runs `fn`, stopping it after `timeoutMs` (vm's ERR_SCRIPT_EXECUTION_TIMEOUT). */
function runWithDeadline<T>(fn: () => T, timeoutMs: number): T {
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

/** Creates a renderer with its own Eta instance and compiled-template cache. */
export function createTemplateRenderer(options: TemplateRendererOptions): TemplateRenderer {
  const cache = options.cache ?? new MemoryCache<string, TemplateFunction>({ max: 100 })
  const read = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'))
  // Partials read during the current render; renders are synchronous, so one slot suffices.
  let partials: Set<string> = new Set()
  let realRoot: string | undefined
  let frames: Frame[] = []
  // Set while a render runs without the deadline; `escalated` records that it reached risky code
  // (set even when a tag's own try/catch swallowed the NeedsDeadline).
  let optimistic = false
  let escalated = false
  const timeoutMs = options.timeoutMs ?? DEFAULT_RENDER_TIMEOUT_MS

  // No auto-trim: in TOML the newline after `key = <%= value %>` is syntax. Blank lines left by
  // control-flow tags are harmless, and `-%>` still trims one newline where wanted.
  // Every printed value goes through the filter: `undefined` in a test file is always a mistake
  // (a var not defined, a typo in a property), so it is a located error, not the text "undefined".
  const eta = new Eta({ autoEscape: false, autoTrim: false, debug: true, functionHeader: FUNCTION_HEADER, autoFilter: true, filterFunction: printValue })
  const compile = eta.compile.bind(eta)
  const compileToString = eta.compileToString.bind(eta)
  eta.compileToString = (text, compileOptions) => {
    const code = compileToString(text, compileOptions)
    const at = code.lastIndexOf(ETA_RETURN)
    if (!ETA_STATE_RE.test(code) || at === -1) return code
    const traced = code.replace(ETA_STATE_RE, 'let __eta = it.__clnrm.enter($1, options.filepath);')
    const end = traced.lastIndexOf(ETA_RETURN)
    return `${traced.slice(0, end)}\nit.__clnrm.leave();${traced.slice(end)}`
  }
  eta.compile = (text, compileOptions) => {
    const key = contentHash(text)
    let fn = cache.get(key)
    if (!fn) {
      try {
        fn = compile(text, compileOptions)
      }
      catch (error) {
        throw syntaxProblem(eta, error, text, compileOptions?.filepath)
      }
      needsDeadline.set(fn, mayRunLong(eta, text))
      cache.set(key, fn)
    }
    if (optimistic && needsDeadline.get(fn) !== false) {
      escalated = true
      throw new NeedsDeadline()
    }
    return fn
  }
  eta.resolvePath = (name, resolveOptions) => {
    const from = resolveOptions?.filepath
    const path = resolve(from ? dirname(from) : options.root, name.endsWith('.eta') ? name : `${name}.eta`)
    if (!basename(path).startsWith('_')) {
      throw new TemplateProblem('CLNRM_TEMPLATE_INCLUDE', `include("${name}"): partials must be named _*.eta`, undefined, undefined, `Rename it to _${basename(path)} so it is not mistaken for a test.`)
    }
    if (outside(options.root, path)) {
      throw new TemplateProblem('CLNRM_TEMPLATE_INCLUDE', `include("${name}") resolves to ${path}, outside the project root`, undefined, undefined, 'Keep partials inside the project.')
    }
    // A symlink inside the root may point anywhere: check where it really leads (one realpath per include).
    const real = realPath(path)
    if (real !== undefined && outside(realRoot ??= realRootOf(options.root), real)) {
      throw new TemplateProblem('CLNRM_TEMPLATE_INCLUDE', `include("${name}") leads through a symlink to ${real}, outside the project root`, undefined, undefined, 'Keep partials inside the project: copy the file instead of linking to it.')
    }
    return path
  }
  eta.readFile = (path) => {
    partials.add(path)
    try {
      return read(path)
    }
    catch {
      throw new TemplateProblem('CLNRM_TEMPLATE_INCLUDE', `include(): partial ${path} not found`, undefined, undefined, 'Check the name; partials resolve relative to the including template.')
    }
  }
  eta.RuntimeErr = (error: Error, text: string, line: number, file: string): never => {
    if (error instanceof NeedsDeadline) throw error
    if (error instanceof TemplateProblem) {
      // A problem from a partial already has its place; an include problem gets the include's.
      if (error.line !== undefined) throw error
      const message = error.code === 'CLNRM_TEMPLATE_UNDEFINED' ? undefinedMessage(text, line) : error.message
      throw new TemplateProblem(error.code, message, file, line, error.hint)
    }
    throw new TemplateProblem('CLNRM_TEMPLATE_RUNTIME', `Template error: ${error.message}`, file, line, 'Check the expression in the tag on this line.')
  }

  /**
   * Renders `source` with `vars` as data, under the deadline when its tags, or a partial they
   * include, could run long. `helpers` is called once per attempt: a render started again under
   * the deadline gets a fresh seeded generator, so its values are the same as a first attempt's.
   */
  const renderText = (source: string, file: string, vars: Readonly<Record<string, unknown>>, extra: Record<string, unknown>, helpers: () => Record<string, unknown>): string => {
    const fn = eta.compile(source, { filepath: file })
    const render = (): string => eta.render(fn, { ...vars, vars, ...extra, __clnrm: helpers() }, { filepath: file })
    if (needsDeadline.get(fn) !== false) return runWithDeadline(render, timeoutMs)
    optimistic = true
    escalated = false
    try {
      const output = render()
      if (!escalated) return output
    }
    catch (error) {
      if (!escalated) throw error
    }
    finally {
      optimistic = false
    }
    frames = []
    return runWithDeadline(render, timeoutMs)
  }
  const trace = {
    enter: <T extends Frame['eta']>(eta: T, file: string | undefined): T => (frames.push({ eta, file }), eta),
    leave: (): void => void frames.pop(),
  }
  const helpersFor = (request: RenderRequest, source: string, envReads: Map<string, EnvRead>): Record<string, unknown> => {
    const determinism = { ...request.determinism, ...literalDeterminism(source) }
    return {
      ...createTemplateHelpers({
        seed: determinism.seed,
        freezeClock: determinism.freezeClock,
        env: request.env ?? process.env,
        onEnvRead: read => envReads.set(read.name, read),
      }),
      ...trace,
    }
  }
  /** A literal table, rendered (when it holds tags) and parsed; see `TemplateRenderer.readTable`. */
  const readTable = (request: RenderRequest, source: string, name: string, envReads: Map<string, EnvRead>): LiteralTable | undefined => {
    let text = literalTableText(source, name)
    if (text === undefined) return undefined
    if (text.includes('<%')) text = renderText(text, request.file, request.vars ?? {}, {}, () => helpersFor(request, source, envReads))
    const parsed = parseToml(text)
    if ('error' in parsed) return { text }
    return { text, value: parsed.value[name] }
  }

  return {
    cache,
    readTable(request, name) {
      const source = request.source ?? read(request.file)
      partials = new Set()
      frames = []
      try {
        return readTable(request, source, name, new Map())
      }
      catch (error) {
        // The whole render reads the same table and reports the problem where it is.
        if (error instanceof TemplateProblem || (error as { code?: string })?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') return undefined
        throw error
      }
    },
    render(request) {
      const source = request.source ?? read(request.file)
      const envReads = new Map<string, EnvRead>()
      partials = new Set()
      frames = []
      let vars: Record<string, unknown> = { ...request.vars }
      try {
        // The template's own [vars] table is data for its tags, between the project's vars and --var.
        const table = asTable(readTable(request, source, 'vars', envReads)?.value)
        vars = { ...request.vars, ...table, ...request.overrides }
        const upstream = upstreamTemplateData(readTable(request, source, 'template', envReads)?.value, request.matrix)
        const withDefaults = upstream.envDefaults ? { ...request, env: { ...upstream.envDefaults, ...(request.env ?? process.env) } } : request
        frames = []
        const output = renderText(source, request.file, vars, upstream.data, () => helpersFor(withDefaults, source, envReads))
        return { output, inputs: { template: request.file, partials: [...partials], env: [...envReads.values()] }, vars }
      }
      catch (error) {
        const inputs = { template: request.file, partials: [...partials], env: [...envReads.values()] }
        if ((error as { code?: string })?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') {
          const frame = frames.at(-1)
          error = new TemplateProblem('CLNRM_TEMPLATE_TIMEOUT', `Template did not finish rendering within ${timeoutMs / 1000}s: is a loop endless?`, frame?.file ?? request.file, frame?.eta.line, 'Check the loop on this line. A template that is only slow can get more time: render_timeout in clnrm.toml or --render-timeout.')
        }
        throw toRenderError(error, request.file, source, read, inputs)
      }
    },
  }
}

/** Eta's filter for printed values: their text, and a located error for `undefined`. */
function printValue(value: unknown): string {
  if (value === undefined) {
    throw new TemplateProblem('CLNRM_TEMPLATE_UNDEFINED', 'A tag printed undefined', undefined, undefined,
      'Define the var in [vars] (the test file or clnrm.toml) or with --var name=value, give a default (<%= it.name ?? "x" %>), or fix the name.')
  }
  return String(value)
}

/** Names the output tag on `line` that printed undefined, when the line has one such tag. */
function undefinedMessage(text: string, line: number): string {
  const tags = [...(text.split(/\r?\n/)[line - 1] ?? '').matchAll(/<%[-_]?\s*[=~]\s*([\s\S]*?)\s*[-_]?%>/g)].map(m => m[1])
  return tags.length === 1 ? `\`${tags[0]}\` is undefined: the tag would print "undefined"` : 'A tag on this line printed undefined'
}

/** Whether a template's tags hold anything that could make its render run long (see RISKY_CODE_RE). */
function mayRunLong(eta: Eta, text: string): boolean {
  try {
    return eta.parse(text).some(node => typeof node !== 'string' && RISKY_CODE_RE.test(node.val.replace(PLAIN_STRING_RE, quoted => quoted.replaceAll('/', ''))))
  }
  catch {
    return true
  }
}

function toRenderError(error: unknown, file: string, source: string, read: (path: string) => string, inputs: RenderInputs): TemplateRenderError {
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
function syntaxProblem(eta: Eta, error: unknown, text: string, file: string | undefined): TemplateProblem {
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
