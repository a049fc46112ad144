import { boolean, field, integer, number, table, union } from './format/fields.ts'
import type { FieldDef, TypeDef } from './format/fields.ts'
import type { KeyPath } from './format/diagnostics.ts'
import { formatKeyPath } from './format/diagnostics.ts'
import type { Span } from './otel/types.ts'
import type { StepResult } from './run.ts'
import type { TestSpec } from './format/spec.ts'

/**
 * The keys of upstream clnrm's free-form `[assertions]` that clnrm can check after a run. Every
 * other key is a claim no tool can check (`dashboard_renders_correctly = true`): the table's
 * unknown keys are `CLNRM_NOT_SUPPORTED`, never silently passed.
 */
export type AssertionKey =
  | 'container_should_have_executed_commands'
  | 'all_steps_should_succeed' | 'all_steps_should_pass' | 'all_steps_must_pass' | 'all_commands_should_succeed'
  | 'execution_should_be_hermetic'
  | 'span_graph_is_valid_tree' | 'no_orphaned_spans'
  | 'minimum_success_rate' | 'require_service_health'

/** One checkable assertion of a test, as written. */
export interface AssertionSpec {
  key: AssertionKey
  /** `true`, or a number (`container_should_have_executed_commands`, `minimum_success_rate`). `false` is no claim and is dropped. */
  value: true | number
  /** Where it is written (`assertions.<key>` or `test.assertions.<key>`). */
  path: KeyPath
}

const allSteps = 'Every step ran and passed: none failed, none was skipped.'
const claim = (description: string): FieldDef => field(boolean, `${description} \`false\` makes no claim.`)

/** `[assertions]` / `[test.assertions]`: the checkable keys; any other key is CLNRM_NOT_SUPPORTED. */
export const assertionsTable: TypeDef & { kind: 'table' } = table({
  container_should_have_executed_commands: field(union(integer({ minimum: 0 }), boolean), 'At least this many steps ran to the end inside a service container (`true`: at least one).'),
  all_steps_should_succeed: claim(allSteps),
  all_steps_should_pass: claim(allSteps),
  all_steps_must_pass: claim(allSteps),
  all_commands_should_succeed: claim(allSteps),
  execution_should_be_hermetic: claim('At least one step ran, and every step that ran did so inside a service container in the run\'s fresh, empty workdir (no step sets `workdir`).'),
  span_graph_is_valid_tree: claim('The spans of the run form trees: at least one span, every trace has exactly one root, every parent is a span of the same trace, no cycle.'),
  no_orphaned_spans: claim('Every span\'s parent is among the spans of the run.'),
  minimum_success_rate: field(number({ minimum: 0, maximum: 1 }), 'At least this fraction of the test\'s steps passed (skipped steps count as not passed).'),
  require_service_health: claim('Every service declares `health_check` or `wait_for`, and it held before the first step (a service that never gets ready ends the run as an error).'),
}, { unknownKeys: 'notSupported' })

/** Keys that judge spans: the test must collect them (`[otel]` or an `expect.*` table). */
export const SPAN_ASSERTIONS: ReadonlySet<AssertionKey> = new Set(['span_graph_is_valid_tree', 'no_orphaned_spans'])

type Report = (code: 'CLNRM_INVALID_VALUE', message: string, path: KeyPath, target: 'key' | 'value', hint?: string) => void

/**
 * The checked `[assertions]` and `[test.assertions]` of a document as a list; `false` values are
 * dropped (they claim nothing). Span assertions in a test that collects no spans are reported.
 */
export function normalizeAssertions(doc: { assertions?: Record<string, unknown>; test?: { assertions?: Record<string, unknown> } }, collectsSpans: boolean, services: Readonly<Record<string, { healthCheck?: unknown; waitFor?: unknown }>>, report: Report): AssertionSpec[] | undefined {
  const list: AssertionSpec[] = []
  const tables: Array<[Record<string, unknown> | undefined, KeyPath]> = [[doc.assertions, ['assertions']], [doc.test?.assertions, ['test', 'assertions']]]
  for (const [written, base] of tables) {
    for (const [key, value] of Object.entries(written ?? {})) {
      if (value === false || value === undefined) continue
      const path = [...base, key]
      if (SPAN_ASSERTIONS.has(key as AssertionKey) && !collectsSpans) {
        report('CLNRM_INVALID_VALUE', `${formatKeyPath(path)} judges the run's spans, but this test collects none`, path, 'key', 'Declare [otel] (or an expect.* table) so the services export spans to clnrm, or remove the assertion.')
        continue
      }
      const unchecked = Object.keys(services).filter(id => !services[id]!.healthCheck && !services[id]!.waitFor)
      if (key === 'require_service_health' && unchecked.length) {
        report('CLNRM_INVALID_VALUE', `${formatKeyPath(path)} needs every service's health checked, but ${unchecked.map(id => `"${id}"`).join(', ')} declare${unchecked.length === 1 ? 's' : ''} neither health_check nor wait_for`, path, 'key', 'Give each service a health_check (or wait_for), or remove the assertion.')
        continue
      }
      list.push({ key: key as AssertionKey, value: value as true | number, path })
    }
  }
  return list.length ? list : undefined
}

/** What one assertion found: `undefined` when it holds, else why not. */
function verdict(assertion: AssertionSpec, spec: TestSpec, steps: readonly StepResult[], spans: readonly Span[] | undefined): string | undefined {
  const ran = steps.filter(s => s.status !== 'skipped' && s.exitCode !== undefined)
  switch (assertion.key) {
    case 'container_should_have_executed_commands': {
      const wanted = assertion.value === true ? 1 : assertion.value
      return ran.length >= wanted ? undefined : `${ran.length} of ${spec.steps.length} steps ran to the end in a container, fewer than ${wanted}`
    }
    case 'all_steps_should_succeed':
    case 'all_steps_should_pass':
    case 'all_steps_must_pass':
    case 'all_commands_should_succeed': {
      const bad = steps.filter(s => s.status !== 'pass')
      if (steps.length < spec.steps.length) return `${spec.steps.length - steps.length} of ${spec.steps.length} steps did not run (the run was cut short)`
      return bad.length ? `${bad.length} of ${steps.length} steps did not pass: ${bad.map(s => `"${s.name}" (${s.status === 'skipped' ? 'skipped' : 'failed'})`).join(', ')}` : undefined
    }
    case 'execution_should_be_hermetic': {
      if (!ran.length) return 'no step ran'
      const ranNames = new Set(ran.map(s => s.name))
      const own = spec.steps.filter(s => ranNames.has(s.name) && s.workdir !== undefined)
      return own.length ? `steps ran outside the run's fresh workdir: ${own.map(s => `"${s.name}" (workdir = "${s.workdir}")`).join(', ')}` : undefined
    }
    case 'minimum_success_rate': {
      const passed = steps.filter(s => s.status === 'pass').length
      const rate = spec.steps.length ? passed / spec.steps.length : 0
      return rate >= (assertion.value as number) ? undefined : `${passed} of ${spec.steps.length} steps passed (${Math.round(rate * 1000) / 10}%)`
    }
    // Readiness is checked before the first step, and a service that never gets ready ends the
    // run as an error: a run judged at all had every (declared, load-checked) check hold.
    case 'require_service_health':
      return undefined
    case 'span_graph_is_valid_tree':
    case 'no_orphaned_spans':
      return spanVerdict(assertion.key, spans ?? [])
  }
}

function spanVerdict(key: 'span_graph_is_valid_tree' | 'no_orphaned_spans', spans: readonly Span[]): string | undefined {
  const byId = new Map(spans.map(s => [`${s.traceId}/${s.spanId}`, s]))
  const orphans = spans.filter(s => s.parentSpanId !== undefined && !byId.has(`${s.traceId}/${s.parentSpanId}`))
  const names = (list: readonly Span[]): string => list.slice(0, 5).map(s => `"${s.name}" (${s.spanId})`).join(', ') + (list.length > 5 ? `, and ${list.length - 5} more` : '')
  if (key === 'no_orphaned_spans') return orphans.length ? `${orphans.length} of ${spans.length} spans have a parent that is not among the run's spans: ${names(orphans)}` : undefined
  if (!spans.length) return 'no span was received'
  if (orphans.length) return `${orphans.length} spans have a parent that is not among the run's spans: ${names(orphans)}`
  const roots = new Map<string, Span[]>()
  for (const span of spans) if (span.parentSpanId === undefined) roots.set(span.traceId, [...roots.get(span.traceId) ?? [], span])
  for (const traceId of new Set(spans.map(s => s.traceId))) {
    const found = roots.get(traceId) ?? []
    if (found.length !== 1) return `trace ${traceId} has ${found.length} root spans${found.length ? `: ${names(found)}` : ' (a cycle)'}, a tree has one`
  }
  // With one root per trace and every parent present, a span that never reaches its root is on a cycle.
  for (const span of spans) {
    const seen = new Set<string>()
    let current: Span | undefined = span
    while (current?.parentSpanId !== undefined) {
      if (seen.has(current.spanId)) return `spans form a cycle through "${current.name}" (${current.spanId})`
      seen.add(current.spanId)
      current = byId.get(`${current.traceId}/${current.parentSpanId}`)
    }
  }
  return undefined
}

/**
 * Judges the test's assertions after its run. Each one becomes a result entry after the steps,
 * named `assertions.<key>`, so every reporter (terminal, JSON, JUnit, the dev page) shows it as
 * it shows a step: passing, or failing with the expectation as written and what was found.
 */
export function judgeAssertions(spec: TestSpec, steps: readonly StepResult[], spans: readonly Span[] | undefined): StepResult[] {
  return (spec.assertions ?? []).map((assertion) => {
    const problem = verdict(assertion, spec, steps, spans)
    const written = `${formatKeyPath(assertion.path)} = ${assertion.value}`
    return {
      name: formatKeyPath(assertion.path),
      service: 'clnrm',
      status: problem ? 'fail' : 'pass',
      stdout: '',
      stderr: '',
      truncated: { stdout: false, stderr: false },
      durationMs: 0,
      timedOut: false,
      ...(problem && { failure: { expectation: written, message: `${written} does not hold: ${problem}`, excerpt: '' } }),
    }
  })
}
