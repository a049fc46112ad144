import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { checkTable } from './check.ts'
import type { Diagnostic } from './diagnostics.ts'
import { TestFileError } from './diagnostics.ts'
import { parseDuration } from './duration.ts'
import { isImageReference, projectFileTable } from './definition.ts'
import { createLocator } from './locate.ts'
import { parseToml } from './toml-parse.ts'

/** The project file's name, at the project root. */
export const PROJECT_FILE = 'clnrm.toml'

/** Test files are found by these globs unless the project file says otherwise. */
export const DEFAULT_TEST_GLOBS: readonly string[] = ['**/*.clnrm.toml', '**/*.clnrm.toml.eta']

/** The project: its root, its file (when there is one), template vars and determinism defaults. */
export interface Project {
  root: string
  /** Absolute path of `clnrm.toml`, when the project has one. */
  file?: string
  /** Template data: `[vars]` with `--var` overrides applied. */
  vars: Record<string, unknown>
  /** The `--var` overrides alone: they also win over a test file's own `[vars]`. */
  varOverrides?: Record<string, string>
  determinism: { seed?: number; freezeClock?: string }
  tests: string[]
  /** How long one template render may run (`render_timeout`, `--render-timeout`). @default 2000 */
  renderTimeoutMs?: number
  /** `reuse`: `clnrm run` leaves idle containers for the next run (`--reuse`). */
  reuse?: boolean
  /** `reuse_idle_timeout`: how long a container left for a later run waits before it is removed. */
  reuseIdleTimeoutMs?: number
  /** `[containers] default_image`: runs steps that name no service (see `DEFAULT_SERVICE_ID`). */
  defaultImage?: string
  /** Warnings about the project file (unknown keys). */
  warnings: Diagnostic[]
}

/** Options of `loadProject`. */
export interface LoadProjectOptions {
  /** Where to start looking for `clnrm.toml`. @default process.cwd() */
  cwd?: string
  /** The root, when the caller knows it; skips the upward search. */
  root?: string
  /** `--var key=value` overrides of `[vars]`. */
  vars?: Record<string, string>
  /** `--render-timeout`: overrides `render_timeout`. */
  renderTimeoutMs?: number
}

/** The nearest directory at or above `cwd` holding `clnrm.toml`; `cwd` itself when none does. */
export function findProjectRoot(cwd: string): string {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, PROJECT_FILE))) return dir
    if (dirname(dir) === dir) return resolve(cwd)
  }
}

/** Loads the project file, if any. A broken project file throws a `TestFileError` (code CLNRM_PROJECT_FILE or CLNRM_TOML_SYNTAX). */
export async function loadProject(options: LoadProjectOptions = {}): Promise<Project> {
  const root = options.root ? resolve(options.root) : findProjectRoot(options.cwd ?? process.cwd())
  const file = join(root, PROJECT_FILE)
  let text: string | undefined
  try {
    text = await readFile(file, 'utf8')
  }
  catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  if (text === undefined) {
    const defaultImage = await upstreamDefaultImage(root)
    return { root, vars: { ...options.vars }, varOverrides: { ...options.vars }, determinism: {}, tests: [...DEFAULT_TEST_GLOBS], renderTimeoutMs: options.renderTimeoutMs, warnings: [], ...(defaultImage && { defaultImage }) }
  }
  const parsed = parseProjectFile(file, text, options.vars)
  return { ...parsed, root, file, varOverrides: { ...options.vars }, renderTimeoutMs: options.renderTimeoutMs ?? parsed.renderTimeoutMs }
}

/** Upstream's project file, read when there is no `clnrm.toml`: only for its default image. */
export const UPSTREAM_PROJECT_FILE = 'cleanroom.toml'

/**
 * `[containers] default_image` of upstream's `cleanroom.toml`. Its other settings are upstream's
 * own, so nothing else is read or checked; a value that is not an image reference is ignored
 * (steps that need it then get the located "no service" error).
 */
async function upstreamDefaultImage(root: string): Promise<string | undefined> {
  const text = await readFile(join(root, UPSTREAM_PROJECT_FILE), 'utf8').catch(() => undefined)
  if (text === undefined) return undefined
  const parsed = parseToml(text)
  if ('error' in parsed) return undefined
  const image = (parsed.value.containers as { default_image?: unknown } | undefined)?.default_image
  return typeof image === 'string' && isImageReference(image) ? image : undefined
}

/** Parses and checks the text of a project file. */
export function parseProjectFile(file: string, text: string, overrides: Record<string, string> = {}): Omit<Project, 'root'> {
  const parsed = parseToml(text)
  if ('error' in parsed) {
    const { line, column, message, hint } = parsed.error
    throw new TestFileError([{ code: 'CLNRM_TOML_SYNTAX', severity: 'error', message, file, line, column, hint: `${hint ? `${hint} ` : ''}Every test depends on the project file.` }])
  }
  const pending: Parameters<typeof checkTable>[3] = []
  const doc = checkTable(parsed.value, projectFileTable, [], pending) as {
    vars?: Record<string, unknown>
    determinism?: { seed?: number; freeze_clock?: string }
    tests?: string[]
    render_timeout?: string | number
    reuse?: boolean
    reuse_idle_timeout?: string | number
    containers?: { default_image?: string }
  }
  const locate = createLocator(text)
  const diagnostics: Diagnostic[] = pending.map(d => ({
    code: d.severity === 'error' ? 'CLNRM_PROJECT_FILE' : d.code,
    severity: d.severity,
    message: d.message,
    hint: d.hint,
    file,
    path: d.path,
    ...locate(d.path, d.target),
  }))
  if (diagnostics.some(d => d.severity === 'error')) throw new TestFileError(diagnostics)
  return {
    file,
    vars: { ...doc.vars, ...overrides },
    determinism: { seed: doc.determinism?.seed, freezeClock: doc.determinism?.freeze_clock },
    tests: doc.tests ?? [...DEFAULT_TEST_GLOBS],
    renderTimeoutMs: parseDuration(doc.render_timeout),
    ...(doc.reuse !== undefined && { reuse: doc.reuse }),
    ...(doc.reuse_idle_timeout !== undefined && { reuseIdleTimeoutMs: parseDuration(doc.reuse_idle_timeout) }),
    ...(doc.containers?.default_image !== undefined && { defaultImage: doc.containers.default_image }),
    warnings: diagnostics,
  }
}

/** Parses `--var key=value` arguments; a value may contain `=`. */
export function parseVarArgs(args: readonly string[]): Record<string, string> {
  const vars: Record<string, string> = {}
  for (const arg of args) {
    const eq = arg.indexOf('=')
    if (eq <= 0) throw new TypeError(`--var expects key=value, got "${arg}"`)
    vars[arg.slice(0, eq)] = arg.slice(eq + 1)
  }
  return vars
}
