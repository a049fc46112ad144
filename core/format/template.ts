import { readFileSync } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import { Eta } from 'eta'
import type { TemplateFunction } from 'eta'
import { MemoryCache } from '../cache.ts'
import { contentHash } from '../hash.ts'
import { outside, realPath, realRootOf } from './real-path.ts'
import type { Frame } from './template-deadline.ts'
import { DEFAULT_RENDER_TIMEOUT_MS, isDeadlineError, mayRunLong, NeedsDeadline, runWithDeadline, traceFrames } from './template-deadline.ts'
import type { EnvRead } from './template-helpers.ts'
import { createHelperSet, createTemplateHelpers } from './template-helpers.ts'
import { printValue, syntaxProblem, TemplateProblem, toRenderError, undefinedMessage } from './template-problems.ts'
import { asTable, literalDeterminism, literalTableText, upstreamTemplateData } from './template-tables.ts'
import type { LiteralTable, RenderRequest, TemplateRenderer, TemplateRendererOptions } from './template-types.ts'
import { parseToml } from './toml-parse.ts'

// The renderer; its parts live beside it: the types (template-types.ts), the render deadline and
// what needs it (template-deadline.ts), located problems (template-problems.ts), the helpers in
// tags (template-helpers.ts) and the literal tables read before a render (template-tables.ts).
export type { LiteralTable, RenderInputs, RenderRequest, RenderResult, TemplateRenderer, TemplateRendererOptions } from './template-types.ts'
export { DEFAULT_RENDER_TIMEOUT_MS } from './template-deadline.ts'
export { TemplateRenderError } from './template-problems.ts'

// Helpers are plain locals in templates (`env("HOME")`, `toml(x)`); `it` stays the user's data.
const HELPER_NAMES = ['env', 'now', 'sha256', 'toml', 'uuid', 'fake', ...Object.keys(createTemplateHelpers({ env: {}, onEnvRead: () => {} })).filter(name => /^(?:fake_|now_|uuid_|ulid|trace|span_id|pick|toml_encode|filter)/.test(name))]

/**
 * The first line of a compiled template: the helpers it names, as locals. A helper whose name
 * is not in the text cannot be reached by name, so it is left out: a test renders a fresh
 * compiled function each time (a few render only once per save), whose every property read
 * starts cold, and destructuring all fifty helpers cost more than the rest of such a render.
 */
function functionHeader(text: string): string {
  const names = HELPER_NAMES.filter(name => text.includes(name) && new RegExp(`(?<![\\w$])${name}(?![\\w$])`).test(text))
  return names.length ? `const {${names.join(', ')}} = it.__clnrm;` : ''
}

/** Templates up to this length are their own cache key; longer ones are keyed by a hash. */
const KEY_TEXT_MAX = 4096

/**
 * The compiled-template cache key of a text: a small text itself (after a NUL, which no hash key
 * holds), so the renders of a shared partial's dependents (two lookups each) do not hash it
 * again and again; the compiled function holds such a text anyway (Eta's debug copy).
 */
const templateKey = (text: string): string => (text.length <= KEY_TEXT_MAX ? `\0${text}` : contentHash(text))

/** Compiled templates that need the render deadline (keyed by function, so a shared cache keeps the answer). */
const needsDeadline = new WeakMap<TemplateFunction, boolean>()

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
  const eta = new Eta({ autoEscape: false, autoTrim: false, debug: true, autoFilter: true, filterFunction: printValue })
  const compile = eta.compile.bind(eta)
  const compileToString = eta.compileToString.bind(eta)
  eta.compileToString = (text, compileOptions) => {
    eta.config.functionHeader = functionHeader(text)
    return traceFrames(compileToString(text, compileOptions))
  }
  eta.compile = (text, compileOptions) => {
    const key = templateKey(text)
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
  // The helpers of every render of this renderer: renders run one at a time, each pointing them at
  // its own options and a fresh generator (`helpersFor`).
  const helperSet = createHelperSet()
  const shared: Record<string, unknown> = { ...helperSet.helpers, ...trace }
  const sharedFake = helperSet.helpers.fake
  const helpersFor = (request: RenderRequest, source: string, envReads: Map<string, EnvRead>): Record<string, unknown> => {
    const determinism = { ...request.determinism, ...literalDeterminism(source) }
    helperSet.use({
      seed: determinism.seed,
      freezeClock: determinism.freezeClock,
      env: request.env ?? process.env,
      onEnvRead: read => envReads.set(read.name, read),
    })
    // Copies of this render's own (a spread of one shape is cheap, unlike making the functions):
    // what a tag assigns to them (`fake.name = …`) stays in this render, and they have the same
    // own keys as ever (`Object.keys(fake)`).
    return { ...shared, fake: { ...sharedFake } }
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
        if (error instanceof TemplateProblem || isDeadlineError(error)) return undefined
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
        if (isDeadlineError(error)) {
          const frame = frames.at(-1)
          error = new TemplateProblem('CLNRM_TEMPLATE_TIMEOUT', `Template did not finish rendering within ${timeoutMs / 1000}s: is a loop endless?`, frame?.file ?? request.file, frame?.eta.line, 'Check the loop on this line. A template that is only slow can get more time: render_timeout in clnrm.toml or --render-timeout.')
        }
        throw toRenderError(error, request.file, source, read, inputs)
      }
    },
  }
}
