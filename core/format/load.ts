import { readFile } from 'node:fs/promises'
import type { TemplateFunction } from 'eta'
import { MemoryCache } from '../cache.ts'
import type { Diagnostic, KeyPath, PendingDiagnostic } from './diagnostics.ts'
import { hasErrors } from './diagnostics.ts'
import { checkLiteralMatrix, combinationLabel, matrixCombinations, matrixSpec, variantOf } from './matrix.ts'
import { contentHash } from '../hash.ts'
import { createLocator } from './locate.ts'
import { normalizeTestFile } from './normalize.ts'
import type { PathCheck } from './path-checks.ts'
import { runPathChecks, withRealVolumes } from './path-checks.ts'
import { realRootOf } from './real-path.ts'
import type { Project } from './project.ts'
import { mapToTemplate } from './source-map.ts'
import type { TestSpec } from './spec.ts'
import type { RenderInputs } from './template.ts'
import { createTemplateRenderer, TemplateRenderError } from './template.ts'
import type { TemplateMark } from './template-marks.ts'
import { findTemplateMarks } from './template-marks.ts'
import { parseToml } from './toml-parse.ts'

/** True for `*.clnrm.toml.eta` (and any `.eta`) files. */
export const isTemplateFile = (file: string): boolean => file.endsWith('.eta')

/** True for the files clnrm treats as tests. Partials (`_*.eta`) are not tests. */
export const isTestFile = (file: string): boolean => /\.clnrm\.toml(?:\.eta)?$/.test(file) && !/(?:^|[\\/])_[^\\/]*$/.test(file)

/** One test file, loaded: the spec when valid, every diagnostic, and what the load cost. */
export interface LoadedTestFile {
  file: string
  /** The spec, when the file has no errors. */
  spec?: TestSpec
  /** Errors and warnings, located in the file the user edits. */
  diagnostics: Diagnostic[]
  /** The TOML that was parsed (the render, for templates). Absent when rendering failed. */
  toml?: string
  /** What the load read: the file, partials, env vars. */
  inputs: RenderInputs
  cache: { template?: 'hit' | 'miss'; config: 'hit' | 'miss' | 'skipped' }
  timings: { renderMs: number; parseMs: number }
}

/** Options of a test loader: the project, and caches to share (the dev loop passes its own). */
export interface TestLoaderOptions {
  project: Pick<Project, 'root' | 'vars' | 'determinism'> & Partial<Pick<Project, 'renderTimeoutMs' | 'defaultImage' | 'varOverrides'>>
  /** Compiled templates. @default 100 entries, grown by `sizeFor` */
  templateCache?: MemoryCache<string, TemplateFunction>
  /** Checked configs, keyed by a hash of the rendered text. @default 500 entries, grown by `sizeFor` */
  configCache?: MemoryCache<string, CachedConfig>
  /** The environment templates read. @default process.env */
  env?: Readonly<Record<string, string | undefined>>
}

/** A config cache entry: the spec and the problems by key path, located again on each load. */
export interface CachedConfig {
  spec?: TestSpec
  pending: PendingDiagnostic[]
  syntax?: { line: number; column: number; message: string; hint?: string }
  /** Template tags in a plain file: the file is not checked further until they are gone. */
  marks?: TemplateMark[]
  /** Paths whose rules depend on the file system, checked again on every load. */
  paths?: PathCheck[]
}

/** Loads test files through the template and config caches. */
export interface TestLoader {
  /** Reads and loads a file. Never throws for bad input: problems are diagnostics. */
  load: (file: string) => Promise<LoadedTestFile>
  /** Loads a file whose text the caller already has. */
  loadSource: (file: string, source: string) => LoadedTestFile
  readonly templateCache: MemoryCache<string, TemplateFunction>
  readonly configCache: MemoryCache<string, CachedConfig>
  /**
   * Grows both caches to hold a project of `testFiles` files with room for its partials and a
   * round of edits, so a pass over every test (a shared partial changed, rerun all) hits instead
   * of evicting the entries it is about to need. Never shrinks them.
   */
  sizeFor: (testFiles: number) => void
}

/** Cache entries per test file: its own, and one more for the text being edited (and partials, [vars] tags). */
const ENTRIES_PER_TEST = 2

/** Creates a loader; keep one per project so its caches pay off. */
export function createTestLoader(options: TestLoaderOptions): TestLoader {
  const { project } = options
  const templateCache = options.templateCache ?? new MemoryCache<string, TemplateFunction>({ max: 100 })
  // No TTL: entries are keyed by content, so age never makes one wrong, and a count bound is
  // enough for memory; with a TTL a rerun after a few idle minutes paid the whole check again.
  const configCache = options.configCache ?? new MemoryCache<string, CachedConfig>({ max: 500 })
  const renderer = createTemplateRenderer({ root: project.root, cache: templateCache, timeoutMs: project.renderTimeoutMs })
  let realRoot: string | undefined

  /** Checks one TOML text (the file, or one render of a template) through the config cache. */
  const checkText = (file: string, source: string, toml: string, combination: Record<string, string> | undefined): { spec?: TestSpec; diagnostics: Diagnostic[]; configState: 'hit' | 'miss' } => {
    // The default image and the matrix combination change the spec of the same text: part of the key.
    const key = contentHash(file, toml, project.defaultImage ?? '', combination ? JSON.stringify(combination) : '')
    let cached = configCache.get(key)
    const configState = cached ? 'hit' : 'miss'
    if (!cached) {
      cached = checkToml(file, toml, project.root, project.defaultImage, combination !== undefined)
      configCache.set(key, cached)
    }
    let spec = cached.spec
    let pathProblems: PendingDiagnostic[] = []
    if (cached.paths?.length) {
      const checked = runPathChecks(cached.paths, project.root, realRoot ??= realRootOf(project.root))
      pathProblems = checked.pending
      if (pathProblems.some(d => d.severity === 'error')) spec = undefined
      else if (spec) {
        const real = (s: TestSpec): TestSpec => withRealVolumes(s, checked.realVolumes)
        spec = spec.variants ? { ...real(spec), variants: spec.variants.map(real) } : real(spec)
      }
    }
    const diagnostics = cached.syntax || cached.marks || cached.pending.length || pathProblems.length ? locateAll(file, source, toml, cached, pathProblems) : []
    return { spec, diagnostics, configState }
  }

  const loadSource = (file: string, source: string): LoadedTestFile => {
    const start = performance.now()
    if (!isTemplateFile(file)) {
      const rendered = performance.now()
      const { spec, diagnostics, configState } = checkText(file, source, source, undefined)
      return {
        file,
        spec,
        diagnostics,
        toml: source,
        inputs: { template: file, partials: [], env: [] },
        cache: { config: configState },
        timings: { renderMs: rendered - start, parseMs: performance.now() - rendered },
      }
    }

    const missesBefore = templateCache.stats().misses
    const request = { file, source, vars: project.vars, overrides: project.varOverrides, determinism: project.determinism, env: options.env }
    // A template with [matrix] renders once per combination (upstream's `matrix.<key>` in tags).
    let combinations: Array<Record<string, string> | undefined> = [undefined]
    const literal = renderer.readTable(request, 'matrix')
    if (literal?.value !== undefined) {
      const matrix = checkLiteralMatrix(file, literal)
      if (!matrix.values) {
        return { file, diagnostics: matrix.diagnostics, inputs: { template: file, partials: [], env: [] }, cache: { config: 'skipped' }, timings: { renderMs: performance.now() - start, parseMs: 0 } }
      }
      combinations = matrixCombinations(matrix.values)
    }
    let inputs: RenderInputs = { template: file, partials: [], env: [] }
    const renders: Array<{ toml: string; combination?: Record<string, string>; checked: ReturnType<typeof checkText> }> = []
    let renderMs = 0
    let parseMs = 0
    for (const combination of combinations) {
      const before = performance.now()
      let output: string
      try {
        const rendered = renderer.render(combination ? { ...request, matrix: combination } : request)
        output = rendered.output
        inputs = mergeInputs(inputs, rendered.inputs)
      }
      catch (error) {
        if (!(error instanceof TemplateRenderError)) throw error
        return { file, diagnostics: [...error.diagnostics], inputs: mergeInputs(inputs, error.inputs), cache: { config: 'skipped' }, timings: { renderMs: renderMs + performance.now() - before, parseMs } }
      }
      const rendered = performance.now()
      renders.push({ toml: output, combination, checked: checkText(file, source, output, combination) })
      renderMs += rendered - before
      parseMs += performance.now() - rendered
    }
    // A hit only when nothing (template or partial) had to be compiled.
    const templateCacheState = templateCache.stats().misses > missesBefore ? 'miss' : 'hit'
    const first = renders[0]!
    const diagnostics = renders.length === 1 ? first.checked.diagnostics : matrixDiagnostics(renders)
    const specs = renders.map(r => r.checked.spec)
    const spec = first.combination === undefined
      ? first.checked.spec
      : specs.every(s => s !== undefined) && !hasErrors(diagnostics)
        ? matrixSpec(renders.map(r => variantOf(r.checked.spec!, r.combination!, r.toml)), first.checked.spec!.name)
        : undefined
    return {
      file,
      spec,
      diagnostics,
      toml: first.toml,
      inputs,
      cache: { template: templateCacheState, config: renders.every(r => r.checked.configState === 'hit') ? 'hit' : 'miss' },
      timings: { renderMs, parseMs },
    }
  }

  return {
    templateCache,
    configCache,
    sizeFor(testFiles) {
      templateCache.reserve(ENTRIES_PER_TEST * testFiles + 64)
      configCache.reserve(ENTRIES_PER_TEST * testFiles + 100)
    },
    loadSource,
    async load(file) {
      let source: string
      try {
        source = await readFile(file, 'utf8')
      }
      catch (error) {
        const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(error as Error).message})`
        return {
          file,
          diagnostics: [{ code: 'CLNRM_FILE_READ', severity: 'error', message: `${file} ${reason}`, hint: 'Check the path.', file, line: 1, column: 1 }],
          inputs: { template: file, partials: [], env: [] },
          cache: { config: 'skipped' },
          timings: { renderMs: 0, parseMs: 0 },
        }
      }
      return loadSource(file, source)
    },
  }
}

/**
 * Where a key path (a step, a service) is written in the file the user edits: the TOML line, or
 * the template's line when it can be traced back. For editor links; reads the template again.
 */
export async function locateKeyPath(file: string, toml: string, path: KeyPath): Promise<{ line: number; column: number }> {
  const at = createLocator(toml)(path, 'table')
  if (!isTemplateFile(file)) return at
  const template = await readFile(file, 'utf8').catch(() => undefined)
  return (template !== undefined && mapToTemplate(template, toml, at)) || at
}

function checkToml(file: string, toml: string, root: string, defaultImage: string | undefined, matrixRendered: boolean): CachedConfig {
  if (!isTemplateFile(file)) {
    // The first few are enough to show the problem; a Tera file can have hundreds.
    const marks = findTemplateMarks(toml).slice(0, 5)
    if (marks.length) return { pending: [], marks }
  }
  const parsed = parseToml(toml)
  if ('error' in parsed) return { pending: [], syntax: parsed.error }
  const { spec, diagnostics, paths } = normalizeTestFile(parsed.value, { file, root, defaultImage, matrixRendered })
  return { spec, pending: diagnostics, paths }
}

/** What several renders of one template read, each input once. */
function mergeInputs(a: RenderInputs, b: RenderInputs): RenderInputs {
  // The first render's inputs (nothing merged yet): a render lists each partial and variable once.
  if (a.partials.length === 0 && a.env.length === 0) return { template: a.template, partials: [...b.partials], env: [...b.env] }
  const env = new Map(a.env.map(read => [read.name, read]))
  for (const read of b.env) env.set(read.name, read)
  return { template: a.template, partials: [...new Set([...a.partials, ...b.partials])], env: [...env.values()] }
}

/**
 * The problems of a matrix template's renders: one found in every render is shown once; one
 * found in some says in which combinations (`[os=alpine] …`), since the others render fine.
 */
function matrixDiagnostics(renders: ReadonlyArray<{ combination?: Record<string, string>; checked: { diagnostics: Diagnostic[] } }>): Diagnostic[] {
  const key = (d: Diagnostic): string => `${d.code}\0${d.line}\0${d.column}\0${d.message}`
  const found = new Map<string, { diagnostic: Diagnostic; labels: string[] }>()
  for (const render of renders) {
    for (const d of render.checked.diagnostics) {
      const entry = found.get(key(d)) ?? { diagnostic: d, labels: [] }
      entry.labels.push(combinationLabel(render.combination ?? {}))
      found.set(key(d), entry)
    }
  }
  return [...found.values()].map(({ diagnostic, labels }) =>
    labels.length === renders.length ? diagnostic : { ...diagnostic, message: `${labels.join(' ')} ${diagnostic.message}` })
    .sort((a, b) => a.line - b.line || a.column - b.column)
}

/** Gives every problem a line and column in the file the user edits. */
function locateAll(file: string, source: string, toml: string, cached: CachedConfig, extra: readonly PendingDiagnostic[]): Diagnostic[] {
  const template = isTemplateFile(file)
  const place = (at: { line: number; column: number }): Pick<Diagnostic, 'line' | 'column' | 'renderedLine' | 'mapped'> => {
    if (!template) return at
    const mapped = mapToTemplate(source, toml, at)
    return mapped ? { ...mapped, renderedLine: at.line, mapped: true } : { ...at, renderedLine: at.line, mapped: false }
  }
  if (cached.syntax) {
    const { message, hint, ...at } = cached.syntax
    const next = template ? 'Run `clnrm render` on the template to see the TOML it produces.' : 'Fix the TOML syntax at this position.'
    return [{ code: 'CLNRM_TOML_SYNTAX', severity: 'error', message, file, ...place(at), hint: hint ? `${hint}${template ? ` ${next}` : ''}` : next }]
  }
  if (cached.marks) {
    return cached.marks.map(mark => ({
      code: 'CLNRM_TEMPLATE_IN_PLAIN_FILE',
      severity: 'error',
      message: `${mark.engine === 'eta' ? 'Eta' : 'Tera'} template syntax "${mark.open}" in a plain .clnrm.toml file would run as literal text`,
      hint: mark.engine === 'eta'
        ? 'Rename the file to .clnrm.toml.eta so the tag is rendered, or remove it.'
        : 'clnrm templates are Eta: `clnrm migrate <file>` rewrites Tera as Eta and renames the file to .clnrm.toml.eta; or remove the tag.',
      file,
      line: mark.line,
      column: mark.column,
    }))
  }
  const locate = createLocator(toml)
  const located: Diagnostic[] = [...cached.pending, ...extra].map(d => ({
    code: d.code,
    severity: d.severity,
    message: d.message,
    hint: d.hint,
    file,
    path: d.path,
    ...place(locate(d.path, d.target)),
  }))
  return located.sort((a, b) => a.line - b.line || a.column - b.column)
}
