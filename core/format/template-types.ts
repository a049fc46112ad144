import type { TemplateFunction } from 'eta'
import type { MemoryCache } from '../cache.ts'
import type { EnvRead } from './template-helpers.ts'

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
  /** Compiled-template cache, keyed by the template text (a hash of a long one). @default a MemoryCache of 100 entries */
  cache?: MemoryCache<string, TemplateFunction>
  /** Reads partials. @default fs.readFileSync */
  readFile?: (path: string) => string
  /**
   * How long one render may run before it is stopped and reported as `CLNRM_TEMPLATE_TIMEOUT`
   * (a loop that never ends would otherwise freeze `validate`, `render` and `dev`). @default 2000
   */
  timeoutMs?: number
}

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
