import { basename, relative } from 'node:path'
import { formatKeyPath, locateKeyPath, printable } from '../core/index.ts'
import type { Diagnostic, LoadedTestFile, TestSpec } from '../core/index.ts'
import type { FilePlan, PlannedSuite, PlannedTest, SourcePosition } from './generate.ts'

/** Time for the run server's answer to cross to the worker, on top of the TOML's timeouts. */
const GRACE_MS = 2_000
/** Creating and starting containers, an image pull included: a generous backstop, never the verdict. */
const START_MS = 300_000

/**
 * What a run may spend before its first step: creating and starting containers, and the
 * readiness waits the TOML declares.
 */
export function startAllowanceMs(spec: TestSpec): number {
  let ready = 0
  for (const service of Object.values(spec.services)) {
    const health = service.healthCheck ? (service.healthCheck.intervalMs + service.healthCheck.timeoutMs) * (service.healthCheck.retries + 1) : 0
    ready = Math.max(ready, health + (service.waitFor?.timeoutMs ?? 0))
  }
  return START_MS + ready
}

/** Turns a loaded clnrm file into the tests Vitest collects from it (see `FilePlan`). */
export async function planFile(loaded: LoadedTestFile, root: string): Promise<FilePlan> {
  const { file, spec } = loaded
  const errors = loaded.diagnostics.filter(d => d.severity === 'error')
  if (!spec || errors.length || loaded.toml === undefined) {
    const first = errors[0] ?? loaded.diagnostics[0]
    const at = first ? { line: first.line, column: first.column } : { line: 1, column: 1 }
    return { file, suites: [{ name: basename(file), at, tests: [] }], invalid: { message: describeProblems(errors.length ? errors : loaded.diagnostics, root), at } }
  }
  // A [matrix] template's combination locates its steps in the text it rendered to.
  const locateIn = (toml: string) => (path: ReadonlyArray<string | number>): Promise<SourcePosition> => locateKeyPath(file, toml, path)
  const locate = locateIn(loaded.toml)
  // `[meta]` or upstream's `[test.metadata]`: a path that is not written locates at 1:1.
  const meta = await locate(['meta'])
  const at = meta.line === 1 && meta.column === 1 ? await locate(['test', 'metadata']) : meta
  // A [matrix] file: each combination is a describe of its own, as `clnrm run` reports it.
  const variants = spec.variants ?? [spec]
  const suites = await Promise.all(variants.map(async (variant, index): Promise<PlannedSuite> => ({
    name: variant.name,
    at,
    ...(spec.variants && { variant: index }),
    tests: await planTests(variant, variant.toml === undefined ? locate : locateIn(variant.toml)),
  })))
  const warnings = loaded.diagnostics.filter(d => d.severity === 'warning')
  return { file, suites, ...(warnings.length && { warnings: warnings.map(w => describeProblems([w], root)) }) }
}

/**
 * The tests of one clnrm test, with Vitest timeouts from the TOML. clnrm enforces each step's
 * `timeout` itself and reports it as the step's failure; Vitest's timer is only a backstop that
 * must never fire first. A test's timer starts when it starts, and the first one to run (with
 * `-t`, maybe a later step) waits for the containers and every step before it: so each test gets
 * the start allowance plus the timeouts of its step and all steps before it.
 */
async function planTests(spec: TestSpec, locate: (path: ReadonlyArray<string | number>) => Promise<SourcePosition>): Promise<PlannedTest[]> {
  let budget = startAllowanceMs(spec) + GRACE_MS
  const tests: PlannedTest[] = []
  for (const step of spec.steps) {
    budget += step.timeoutMs
    tests.push({ name: step.name, kind: 'step', timeoutMs: budget, at: await locate(step.source) })
  }
  // Judged after the last step: settling waits for spans.
  budget += spec.otel?.settleTimeoutMs ?? 0
  if (spec.expect) tests.push({ name: 'spans', kind: 'spans', timeoutMs: budget, at: await locate(['expect']) })
  if (spec.assertions?.length) {
    const first = spec.assertions[0]!.path
    tests.push({ name: 'assertions', kind: 'assertions', timeoutMs: budget, at: await locate(first.slice(0, -1)) })
  }
  return tests
}

/** Every problem as clnrm's other views print it: `file:line:col CODE message`, then the hint. */
export function describeProblems(diagnostics: readonly Diagnostic[], root: string): string {
  if (!diagnostics.length) return 'the file could not be loaded'
  return diagnostics.map((d) => {
    const where = `${printable(relative(root, d.file))}:${d.line}:${d.column}`
    const path = d.path?.length ? ` (${formatKeyPath(d.path)})` : ''
    return `${where} ${d.code}${path} ${printable(d.message)}${d.hint ? `\n  hint: ${printable(d.hint)}` : ''}`
  }).join('\n')
}
