import { checkTable } from './check.ts'
import type { Diagnostic, KeyPath, PendingDiagnostic } from './diagnostics.ts'
import { formatKeyPath } from './diagnostics.ts'
import { array, field, record, scalar, table } from './fields.ts'
import { createLocator } from './locate.ts'
import type { FieldDef } from './fields.ts'
import type { TestSpec } from './spec.ts'
import type { LiteralTable } from './template.ts'
import { combinationLabel, matrixCombinations } from './template-tables.ts'

/** Matrix keys are read as `it.matrix.<key>` in templates: identifiers. */
const MATRIX_KEY = {
  pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
  what: 'a matrix key',
  hint: 'Use letters, digits and "_", not starting with a digit: templates read it as it.matrix.<key>.',
}

/** More combinations than this is almost surely a mistake (and would hold the engine for long). */
export const MAX_MATRIX_COMBINATIONS = 64

/** `[matrix]`: upstream's `HashMap<String, Vec<String>>`; the test runs once per combination. */
export const matrixField: FieldDef = field(record(array(scalar), MATRIX_KEY),
  'Runs the test once per combination of these values (`os = ["alpine", "debian"]`), each a test named `name [os=alpine]`. Templates read the combination as `it.matrix.<key>`.')

type Report = (code: PendingDiagnostic['code'], message: string, path: KeyPath, target: PendingDiagnostic['target'], hint?: string, severity?: PendingDiagnostic['severity']) => void

/**
 * A checked `[matrix]` table's values, or undefined when it has none or a problem: an empty list
 * would run the test zero times (nothing checked, yet green), and too many combinations are
 * almost surely a mistake.
 */
export function normalizeMatrix(matrix: Record<string, string[]> | undefined, report: Report): Record<string, string[]> | undefined {
  if (matrix === undefined) return undefined
  let ok = true
  const keys = Object.keys(matrix)
  if (keys.length === 0) {
    report('CLNRM_INVALID_VALUE', '[matrix] is empty: the test would run with no combination', ['matrix'], 'table', 'List values to run the test with, e.g. os = ["alpine", "debian"], or remove [matrix].')
    return undefined
  }
  for (const key of keys) {
    const values = matrix[key]
    if (!values) ok = false
    else if (values.length === 0) {
      report('CLNRM_INVALID_VALUE', `${formatKeyPath(['matrix', key])} is empty: the test would run zero times`, ['matrix', key], 'value', 'List at least one value, or remove the key.')
      ok = false
    }
    else {
      values.forEach((value, index) => {
        if (values.indexOf(value) !== index) {
          report('CLNRM_INVALID_VALUE', `${formatKeyPath(['matrix', key])} lists "${value}" twice: two tests would have one name`, ['matrix', key, index], 'value', 'List each value once.')
          ok = false
        }
      })
    }
  }
  if (!ok) return undefined
  const count = keys.reduce((n, key) => n * matrix[key]!.length, 1)
  if (count > MAX_MATRIX_COMBINATIONS) {
    report('CLNRM_INVALID_VALUE', `[matrix] makes ${count} combinations, more than ${MAX_MATRIX_COMBINATIONS}`, ['matrix'], 'table', 'Run fewer combinations: split the test, or drop values.')
    return undefined
  }
  return matrix
}

/** The combinations of a checked matrix. */
export { combinationLabel, matrixCombinations }

/**
 * One variant of a test: its name carries the combination, and `matrix` holds it; `toml` is the
 * text it was rendered to, when each combination renders its own.
 */
export function variantOf(spec: TestSpec, combination: Record<string, string>, toml?: string): TestSpec {
  return { ...spec, name: `${spec.name} ${combinationLabel(combination)}`, matrix: combination, ...(toml !== undefined && { toml }) }
}

/**
 * The spec of a file with a matrix: the variants it runs, and their steps side by side (each
 * named after its combination), which is what a single result for the whole file shows.
 */
export function matrixSpec(variants: readonly TestSpec[], name: string): TestSpec {
  const first = variants[0]!
  const { matrix: _matrix, toml: _toml, ...base } = first
  return {
    ...base,
    name,
    steps: variants.flatMap(variant => variant.steps.map(step => ({ ...step, name: `${combinationLabel(variant.matrix ?? {})} ${step.name}` }))),
    variants: [...variants],
  }
}

/**
 * Checks a template's `[matrix]` table, read from its text before rendering (each render needs a
 * combination). Problems are located in the template, whose lines the literal text keeps.
 */
export function checkLiteralMatrix(file: string, literal: LiteralTable): { values?: Record<string, string[]>; diagnostics: Diagnostic[] } {
  const pending: PendingDiagnostic[] = []
  const report: Report = (code, message, path, target, hint, severity = 'error') => void pending.push({ code, severity, message, hint, path, target })
  const checked = checkTable({ matrix: literal.value }, table({ matrix: matrixField }), [], pending) as { matrix?: Record<string, string[]> }
  const values = pending.length ? undefined : normalizeMatrix(checked.matrix, report)
  const locate = createLocator(literal.text)
  const diagnostics = pending.map(d => ({ code: d.code, severity: d.severity, message: d.message, hint: d.hint, file, path: d.path, ...locate(d.path, d.target) }))
  return values && !pending.length ? { values, diagnostics } : { diagnostics }
}
