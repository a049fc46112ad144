import { ClnrmError } from '../errors.ts'
/**
 * Stable diagnostic codes. Tests and tools match on these, never on message text.
 */
export type DiagnosticCode =
  | 'CLNRM_FILE_READ'
  | 'CLNRM_TOML_SYNTAX'
  | 'CLNRM_TEMPLATE_SYNTAX'
  | 'CLNRM_TEMPLATE_RUNTIME'
  | 'CLNRM_TEMPLATE_INCLUDE'
  | 'CLNRM_TEMPLATE_TIMEOUT'
  | 'CLNRM_TEMPLATE_UNDEFINED'
  | 'CLNRM_INVALID_TYPE'
  | 'CLNRM_INVALID_VALUE'
  | 'CLNRM_INVALID_DURATION'
  | 'CLNRM_INVALID_REGEX'
  | 'CLNRM_MISSING_KEY'
  | 'CLNRM_CONFLICTING_KEYS'
  | 'CLNRM_UNKNOWN_KEY'
  | 'CLNRM_NOT_SUPPORTED'
  | 'CLNRM_TEMPLATE_IN_PLAIN_FILE'
  | 'CLNRM_UNKNOWN_SERVICE'
  | 'CLNRM_AMBIGUOUS_SERVICE'
  | 'CLNRM_NO_SERVICES'
  | 'CLNRM_NO_STEPS'
  | 'CLNRM_DUPLICATE_STEP'
  | 'CLNRM_DUPLICATE_PORT'
  | 'CLNRM_DUPLICATE_SERVICE'
  | 'CLNRM_VOLUME_OUTSIDE_ROOT'
  | 'CLNRM_VOLUME_ABSOLUTE'
  | 'CLNRM_VOLUME_NOT_FOUND'
  | 'CLNRM_WATCH_OUTSIDE_ROOT'
  | 'CLNRM_WATCH_NO_MATCH'
  | 'CLNRM_PROJECT_FILE'
  | 'CLNRM_MATRIX_UNUSED'

/** `error` makes a file invalid; `warning` is reported and the file still loads. */
export type Severity = 'error' | 'warning'

/** A key path into a TOML document: table keys and array indices. */
export type KeyPath = ReadonlyArray<string | number>

/** One problem in one file, with a 1-based location and a next step. */
export interface Diagnostic {
  code: DiagnosticCode
  severity: Severity
  message: string
  /** What to do about it. */
  hint?: string
  /** Absolute path of the file the user edits (the template, for `.eta` files). */
  file: string
  /** 1-based line in `file`. */
  line: number
  /** 1-based column in `file`. */
  column: number
  /** The TOML key path the problem is about, when there is one. */
  path?: KeyPath
  /**
   * For templates: the 1-based line in the rendered TOML. When the problem could not be
   * mapped back to a template line, `line` equals this and `mapped` is false.
   */
  renderedLine?: number
  mapped?: boolean
}

/** A diagnostic before it has a location: validators know key paths, not lines. */
export interface PendingDiagnostic {
  code: DiagnosticCode
  severity: Severity
  message: string
  hint?: string
  path: KeyPath
  /** Point at the key itself, its value, or the table that should hold it. */
  target: 'key' | 'value' | 'table'
}

/**
 * Thrown where a single test-file problem must stop the caller (for example `loadTestFileOrThrow`).
 * Carries the first error's location; `diagnostics` has all of them.
 */
export class TestFileError extends ClnrmError {
  override name = 'TestFileError'
  declare readonly code: DiagnosticCode
  readonly file: string
  readonly line: number
  readonly column: number
  readonly diagnostics: readonly Diagnostic[]

  constructor(diagnostics: readonly Diagnostic[], options?: ErrorOptions) {
    const first = diagnostics.find(d => d.severity === 'error') ?? diagnostics[0]
    if (!first) throw new TypeError('TestFileError needs at least one diagnostic')
    super(first.code, `${first.file}:${first.line}:${first.column} ${first.message}`, { ...(first.hint !== undefined && { hint: first.hint }), ...(options && 'cause' in options && { cause: options.cause }) })
    this.file = first.file
    this.line = first.line
    this.column = first.column
    this.diagnostics = diagnostics
  }
}

/** Renders a key path the way users write it: `services.web.ports[0]`. */
export function formatKeyPath(path: KeyPath): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += (out ? '.' : '') + (/^[A-Za-z0-9_-]+$/.test(part) ? part : JSON.stringify(part))
  }
  return out
}

/** True when any diagnostic is an error. */
export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some(d => d.severity === 'error')
}
