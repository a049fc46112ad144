import { dirname, isAbsolute, resolve } from 'node:path'
import { checkTable, didYouMean } from './check.ts'
import type { KeyPath, PendingDiagnostic } from './diagnostics.ts'
import { formatKeyPath } from './diagnostics.ts'
import { SERVICE_PLUGINS, testFileTable } from './definition.ts'
import { normalizeAssertions } from '../assertions.ts'
import { normalizeLimits } from './limits.ts'
import { matrixCombinations, matrixSpec, normalizeMatrix, variantOf } from './matrix.ts'
import { collectsSpans, normalizeOtel } from '../otel/normalize.ts'
import { mergeExpectations, normalizeOtelValidation } from './otel-validation.ts'
import { normalizeReport } from './report-table.ts'
import type { PathCheck } from './path-checks.ts'
import { outside } from './real-path.ts'
import { portEnvName } from './plan.ts'
import type { ServiceSpec, StepSpec, TestSpec, WaitForSpec } from './spec.ts'
import { DEFAULT_HEALTH_INTERVAL_MS, DEFAULT_READY_TIMEOUT_MS, DEFAULT_STEP_TIMEOUT_MS } from './spec.ts'

/** Where a test file sits: needed to resolve relative paths and to keep volumes inside the root. */
export interface NormalizeContext {
  /** Absolute path of the file the user edits. */
  file: string
  /** Absolute project root; volume host paths must stay inside it. */
  root: string
  /** The project's default image (`[containers] default_image`), for steps that name no service. */
  defaultImage?: string
  /**
   * The template was rendered once per `[matrix]` combination, this text being one of them: the
   * loader makes the variants, so the matrix is only checked here.
   */
  matrixRendered?: boolean
}

/** The id of the service a project's default image runs as. */
export const DEFAULT_SERVICE_ID = 'clnrm-default'

type Table = Record<string, any>

/**
 * Turns a parsed test file into a `TestSpec`: checks every key against the format, then applies
 * the rules that span keys (metadata spellings, step services, scenarios, duplicates, volumes).
 * Returns no spec when any error was found.
 */
export function normalizeTestFile(raw: Record<string, unknown>, ctx: NormalizeContext): { spec?: TestSpec; diagnostics: PendingDiagnostic[]; paths: PathCheck[] } {
  const out: PendingDiagnostic[] = []
  const paths: PathCheck[] = []
  const doc = checkTable(raw, testFileTable, [], out) as Table
  const error: Report = (code, message, path, target, hint, severity = 'error') => {
    out.push({ code, severity, message, hint, path, target })
  }
  const servicesKey = 'services' in raw ? 'services' : 'service'

  // Metadata: `[meta]` or `[test.metadata]`, not both.
  if ('meta' in raw && 'test' in raw) {
    error('CLNRM_CONFLICTING_KEYS', '[meta] and [test.metadata] both describe the test', ['test'], 'key', 'Keep one of them; [meta] is the shorter spelling.')
  }
  else if (!('meta' in raw) && !('test' in raw)) {
    error('CLNRM_MISSING_KEY', 'The test has no [meta] table', [], 'table', 'Add [meta] with name = "…" at the top of the file.')
  }
  const meta: Table = doc.meta ?? doc.test?.metadata ?? {}

  const services: Record<string, ServiceSpec> = {}
  const envNames = new Map<string, string>()
  for (const [id, service] of Object.entries((doc.services ?? {}) as Record<string, Table>)) {
    services[id] = { ...normalizeService(id, service, [servicesKey, id], ctx, error, paths), limits: normalizeLimits(doc.limits) }
    // Steps reach services through SERVICE_<ID>_PORT_<n>, and host names ignore case: ids that
    // map to one name (web-a and web_a, Web and web) would silently share it.
    const envName = portEnvName(id, 0).replace(/0$/, '<port>')
    const earlier = envNames.get(envName)
    if (earlier !== undefined) {
      const sameHost = id.toLowerCase() === earlier.toLowerCase()
      error('CLNRM_DUPLICATE_SERVICE', `Services "${earlier}" and "${id}" collide: both give ${envName}${sameHost ? ' and the same host name' : ''}`, [servicesKey, id], 'key',
        'Rename one of them so the ids differ in more than case, "-" and "_".')
    }
    else envNames.set(envName, id)
  }
  const serviceIds = Object.keys(services)
  const routing = { serviceIds, servicesKey, defaultImage: ctx.defaultImage }

  const steps: StepSpec[] = []
  const stepPaths: KeyPath[] = []
  const addStep = (step: Table, path: KeyPath, defaults: { name: string; scenario?: string; collectSpans?: boolean; scenarioTimeoutMs?: number }): void => {
    const normalized = normalizeStep(step, path, defaults, routing, error)
    if (!normalized) return
    steps.push(normalized)
    stepPaths.push(path)
  }
  ;(doc.steps as Table[] | undefined)?.forEach((step, index) => {
    addStep(step, ['steps', index], { name: `step ${index + 1}` })
  })
  ;(doc.scenario as Table[] | undefined)?.forEach((scenario, index) => {
    const path = ['scenario', index]
    const nested = scenario.steps as Table[] | undefined
    // Steps run one after the other: `concurrent = true` would claim an overlap that never happens.
    if (scenario.concurrent === true) {
      error('CLNRM_NOT_SUPPORTED', `${formatKeyPath([...path, 'concurrent'])} = true is not supported: clnrm runs a scenario's steps one after the other`, [...path, 'concurrent'], 'value',
        'Remove it (or write false): the steps then run in order, which is what clnrm checks.')
    }
    const scenarioTimeoutMs = scenario.timeout_ms as number | undefined
    if (nested) {
      // The scenario's artifacts.collect applies to each step's stdout; checked once, at its own key.
      const collectSpans = collectsSpans(scenario.artifacts, path, error)
      // Upstream silently drops nested steps beside `run`; clnrm runs both, the scenario's own
      // command first, so nothing the file declares goes unchecked.
      if (scenario.run !== undefined || scenario.command !== undefined) {
        const { steps: _nested, artifacts: _artifacts, ...own } = scenario
        addStep(own, path, { name: scenario.name, scenario: scenario.name, collectSpans, scenarioTimeoutMs })
      }
      nested.forEach((step, stepIndex) => {
        const inherited = { ...pickStepDefaults(scenario), ...step }
        const name = `${scenario.name} › ${step.name ?? `step ${stepIndex + 1}`}`
        addStep({ ...inherited, name }, [...path, 'steps', stepIndex], { name, scenario: scenario.name, collectSpans, scenarioTimeoutMs })
      })
    }
    else {
      const { steps: _ignored, ...step } = scenario
      addStep(step, path, { name: scenario.name ?? `scenario ${index + 1}`, scenario: scenario.name, scenarioTimeoutMs })
    }
  })

  // Upstream runs steps without a service in its default image; so does clnrm when one is set.
  if (ctx.defaultImage !== undefined && steps.some(step => step.service === DEFAULT_SERVICE_ID) && !services[DEFAULT_SERVICE_ID]) {
    services[DEFAULT_SERVICE_ID] = {
      id: DEFAULT_SERVICE_ID, plugin: 'generic_container', description: 'the project\'s default image', image: ctx.defaultImage,
      env: {}, ports: [], volumes: [], reuse: true,
    }
  }

  if (steps.length === 0 && !out.some(d => d.severity === 'error' && (d.path[0] === 'steps' || d.path[0] === 'scenario'))) {
    error('CLNRM_NO_STEPS', 'The test has no steps', [], 'table', 'Add a [[steps]] table with name, service and run = "…".')
  }

  // Names identify steps in reports and in the dev loop: they must be unique.
  const seen = new Map<string, number>()
  steps.forEach((step, index) => {
    if (seen.has(step.name)) {
      error('CLNRM_DUPLICATE_STEP', `Two steps are named "${step.name}"`, [...stepPaths[index]!, 'name'], 'value', 'Give each step a unique name.')
    }
    seen.set(step.name, index)
  })

  const baseDir = dirname(ctx.file)
  const watchPaths = (key: 'files' | 'modules'): string[] => ((doc.watch?.[key] ?? []) as string[]).map((written, index) => {
    const absolute = resolve(baseDir, written)
    const path = ['watch', key, index]
    if (key === 'files' && outside(ctx.root, absolute)) {
      error('CLNRM_WATCH_OUTSIDE_ROOT', `[watch] files "${written}" resolves to ${absolute}, outside the project root ${ctx.root}`, path, 'value', 'Watch files inside the project only: the dev loop would watch everything below that directory.')
    }
    else paths.push({ kind: key === 'files' ? 'watch-files' : 'watch-module', path, written, absolute })
    return absolute
  })
  const watch = { files: watchPaths('files'), modules: watchPaths('modules') }
  // Upstream's [otel_validation] checks join the expect.* ones: the same receiver, the same verdict.
  const { otel, expect } = normalizeOtel(doc, steps.some(step => step.collectSpans), serviceIds, error,
    own => mergeExpectations(own, normalizeOtelValidation(doc.otel_validation, doc.expect, serviceIds, error)))
  const assertions = normalizeAssertions(doc, !!otel, services, error)
  const reports = normalizeReport(doc.report, ctx.root, error)
  if (doc.matrix !== undefined && doc.template?.matrix !== undefined) {
    error('CLNRM_CONFLICTING_KEYS', '[matrix] and [template.matrix] both give templates it.matrix', ['template', 'matrix'], 'key',
      'Keep [matrix] to run the test once per combination, or [template.matrix] for data the template loops over; rename one of them.')
  }
  const matrix = normalizeMatrix(doc.matrix, error)
  if (matrix && !ctx.matrixRendered) {
    const times = matrixCombinations(matrix).length
    error('CLNRM_MATRIX_UNUSED', `[matrix] runs this test ${times} time${times === 1 ? '' : 's'} with the same steps: only templates read its values`, ['matrix'], 'table',
      'Rename the file to .clnrm.toml.eta and write <%= it.matrix.<key> %> where a value goes (upstream substitutes them in templates only).', 'warning')
  }

  if (out.some(d => d.severity === 'error')) return { diagnostics: out, paths }
  const spec: TestSpec = {
    file: ctx.file,
    name: meta.name,
    description: meta.description,
    version: meta.version,
    timeoutMs: meta.timeout,
    services,
    steps,
    determinism: { seed: doc.determinism?.seed, freezeClock: doc.determinism?.freeze_clock },
    watch,
    ...(otel && { otel }),
    ...(expect && { expect }),
    ...(assertions && { assertions }),
    ...(doc.vars !== undefined && { vars: doc.vars }),
    ...(reports && { report: reports }),
  }
  // A plain file's matrix runs the same spec once per combination; a template's was rendered per combination.
  if (!matrix || ctx.matrixRendered) return { diagnostics: out, paths, spec }
  return { diagnostics: out, paths, spec: matrixSpec(matrixCombinations(matrix).map(c => variantOf(spec, c)), spec.name) }
}

type Report = (code: PendingDiagnostic['code'], message: string, path: KeyPath, target: PendingDiagnostic['target'], hint?: string, severity?: PendingDiagnostic['severity']) => void

const SHELL = (script: string): string[] => ['sh', '-c', script]
const argv = (value: string | string[] | undefined): string[] | undefined =>
  value === undefined ? undefined : typeof value === 'string' ? SHELL(value) : value

function normalizeService(id: string, service: Table, path: KeyPath, ctx: NormalizeContext, report: Report, paths: PathCheck[]): ServiceSpec {
  const baseDir = dirname(ctx.file)
  const volumes = ((service.volumes ?? []) as Table[]).map((volume, index) => {
    const hostPath = resolve(baseDir, volume.host_path ?? '')
    const hostKey = [...path, 'volumes', index, 'host_path']
    if (volume.host_path === undefined) { /* reported missing or invalid by the schema */ }
    else if (isAbsolute(volume.host_path)) {
      // Upstream requires absolute host paths, so its files carry them. Such a test runs only on
      // machines with that path: accepted, with a warning; it must still exist (path-checks.ts).
      report('CLNRM_VOLUME_ABSOLUTE', `Volume host_path "${volume.host_path}" is absolute: the test depends on this machine`, hostKey, 'value',
        outside(ctx.root, hostPath) ? 'Copy what the test needs into the project and write the path relative to the test file, so the test runs anywhere.' : 'Write the path relative to the test file, so the test runs wherever the project is checked out.', 'warning')
      paths.push({ kind: 'volume', path: hostKey, written: volume.host_path, absolute: hostPath, service: id, index, machine: true })
    }
    else if (outside(ctx.root, hostPath)) {
      report('CLNRM_VOLUME_OUTSIDE_ROOT', `Volume host_path "${volume.host_path}" resolves to ${hostPath}, outside the project root ${ctx.root}`, hostKey, 'value', 'Keep mounted files inside the project so tests stay hermetic; copy the file into the project.')
    }
    else paths.push({ kind: 'volume', path: hostKey, written: volume.host_path, absolute: hostPath, service: id, index })
    if (typeof volume.container_path === 'string') {
      const problem = containerPathProblem(volume.container_path)
      if (problem) report('CLNRM_INVALID_VALUE', `Volume container_path "${volume.container_path}" ${problem.message}`, [...path, 'volumes', index, 'container_path'], 'value', problem.hint)
    }
    return { hostPath, containerPath: volume.container_path, readOnly: volume.read_only ?? false }
  })
  const ports = (service.ports ?? []) as number[]
  ports.forEach((port, index) => {
    if (ports.indexOf(port) !== index) report('CLNRM_DUPLICATE_PORT', `Port ${port} is listed twice`, [...path, 'ports', index], 'value', 'List each container port once.')
  })
  if (service.wait_for_span_timeout_secs !== undefined && service.wait_for_span === undefined) {
    report('CLNRM_MISSING_KEY', `${formatKeyPath([...path, 'wait_for_span_timeout_secs'])} is set, but the service has no wait_for_span`, [...path, 'wait_for_span_timeout_secs'], 'key', 'Add wait_for_span = "<span name>", or remove the timeout.')
  }
  const { plugin, label } = resolvePlugin(service, path, report)
  return {
    id,
    plugin,
    ...(label !== undefined && { label }),
    ...(service.description !== undefined && { description: service.description }),
    image: service.image,
    command: service.command,
    env: service.env ?? {},
    ports,
    volumes,
    healthCheck: service.health_check && {
      cmd: argv(service.health_check.cmd)!,
      intervalMs: service.health_check.interval ?? DEFAULT_HEALTH_INTERVAL_MS,
      timeoutMs: service.health_check.timeout ?? DEFAULT_READY_TIMEOUT_MS,
      retries: service.health_check.retries ?? 0,
    },
    waitFor: normalizeWaitFor(service.wait_for, [...path, 'wait_for'], report),
    ...(service.wait_for_span !== undefined && { waitForSpan: { name: service.wait_for_span, timeoutMs: (service.wait_for_span_timeout_secs ?? 30) * 1000 } }),
    reset: argv(service.reset),
    reuse: service.reuse ?? true,
  }
}

/**
 * Upstream's two keys: `plugin` chooses the plugin and `type` is ignored beside it (v0.4 required
 * both). A `plugin` clnrm does not know, next to `type = "generic_container"`, is a label
 * (upstream files write `plugin = "alpine"`): the service is a generic container from its image.
 */
function resolvePlugin(service: Table, path: KeyPath, report: Report): { plugin: string; label?: string } {
  const plugin: unknown = service.plugin
  const type: unknown = service.type
  const known = (value: unknown): value is string => typeof value === 'string' && SERVICE_PLUGINS.includes(value)
  if (typeof plugin === 'string') {
    if (known(plugin)) return { plugin }
    if (type === 'generic_container') return { plugin: 'generic_container', label: plugin }
    // Upstream's own plugins (otel_collector, ollama, surrealdb…) are a feature clnrm does not
    // have, not a typo: not supported, unless the value is one letter off a plugin clnrm knows.
    const typo = didYouMean(plugin, SERVICE_PLUGINS)
    report(typo ? 'CLNRM_INVALID_VALUE' : 'CLNRM_NOT_SUPPORTED', typo
      ? `${formatKeyPath([...path, 'plugin'])} is "${plugin}", expected one of: ${SERVICE_PLUGINS.join(', ')}`
      : `${formatKeyPath([...path, 'plugin'])} = "${plugin}" is not supported: clnrm starts generic containers only`, [...path, 'plugin'], 'value',
      typo ?? 'Give the service the image that runs it and write plugin = "generic_container" (or keep the value as a label beside type = "generic_container"); `clnrm migrate` does this when the service has an image.')
    return { plugin: 'generic_container' }
  }
  if (typeof type === 'string' && !known(type)) {
    report('CLNRM_INVALID_VALUE', `${formatKeyPath([...path, 'type'])} is "${type}", expected one of: ${SERVICE_PLUGINS.join(', ')}`, [...path, 'type'], 'value',
      didYouMean(type, SERVICE_PLUGINS) ?? 'clnrm starts generic containers only: write type = "generic_container".')
  }
  return { plugin: 'generic_container' }
}

/**
 * Where the engine cannot mount: it refuses "/" outright, and runc fails to start a container
 * with a mount on /proc, below /sys or on /dev (checked on the engine). Other refusals surface
 * from the engine when the container starts.
 */
function containerPathProblem(path: string): { message: string; hint: string } | undefined {
  if (!path.startsWith('/')) return { message: 'must be absolute', hint: `Write "/${path}".` }
  const segments = path.split('/').filter(s => s !== '' && s !== '.')
  if (segments.includes('..')) return { message: 'has a ".." segment', hint: 'Write the path without "..": where it points inside the container is not obvious.' }
  const clean = `/${segments.join('/')}`
  if (clean === '/') return { message: 'is the container\'s root, which cannot be replaced', hint: 'Mount into a directory such as "/data".' }
  if (clean === '/proc' || clean.startsWith('/proc/') || clean === '/sys' || clean.startsWith('/sys/') || clean === '/dev') {
    return { message: 'is a system path the engine mounts itself', hint: 'Mount into a directory of your own, such as "/data".' }
  }
  return undefined
}

function normalizeWaitFor(value: unknown, path: KeyPath, report: Report): WaitForSpec | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'string') return { kind: 'log', pattern: value, timeoutMs: DEFAULT_READY_TIMEOUT_MS }
  if (typeof value === 'number') return { kind: 'port', port: value, timeoutMs: DEFAULT_READY_TIMEOUT_MS }
  const table = value as Table
  const timeoutMs = table.timeout ?? DEFAULT_READY_TIMEOUT_MS
  if (table.log !== undefined && table.port !== undefined) {
    report('CLNRM_CONFLICTING_KEYS', 'wait_for has both log and port', path, 'value', 'Wait for one thing; use health_check for more.')
  }
  if (table.log !== undefined) return { kind: 'log', pattern: table.log, timeoutMs }
  if (table.port !== undefined) return { kind: 'port', port: table.port, timeoutMs }
  report('CLNRM_MISSING_KEY', 'wait_for needs log or port', path, 'value', 'Write wait_for = { log = "ready" } or wait_for = { port = 8080 }.')
  return undefined
}

/** Keys a scenario passes down to its nested steps. */
function pickStepDefaults(scenario: Table): Table {
  const defaults: Table = {}
  for (const key of ['service', 'env', 'workdir', 'timeout', 'continue_on_failure']) {
    if (scenario[key] !== undefined) defaults[key] = scenario[key]
  }
  return defaults
}

function normalizeStep(
  step: Table,
  path: KeyPath,
  defaults: { name: string; scenario?: string; collectSpans?: boolean; scenarioTimeoutMs?: number },
  routing: { serviceIds: string[]; servicesKey: string; defaultImage?: string },
  report: Report,
): StepSpec | undefined {
  const { serviceIds, servicesKey, defaultImage } = routing
  const name: string = step.name ?? defaults.name
  let ok = true
  if (step.command !== undefined && step.run !== undefined) {
    report('CLNRM_CONFLICTING_KEYS', `Step "${name}" has both command and run`, [...path, 'run'], 'key', 'Use command for an argv, or run for a shell string, not both.')
    ok = false
  }
  else if (step.command === undefined && step.run === undefined) {
    report('CLNRM_MISSING_KEY', `Step "${name}" has neither command nor run`, path, 'table', 'Add run = "…" (a shell string) or command = ["…"] (an argv).')
    ok = false
  }
  else if (step.command !== undefined && step.command.length === 0) {
    report('CLNRM_INVALID_VALUE', `Step "${name}" has an empty command`, [...path, 'command'], 'value', 'Name the program to run: command = ["echo", "hi"].')
    ok = false
  }

  let service: string | undefined = step.service
  if (service === undefined) {
    if (serviceIds.length === 1) service = serviceIds[0]
    else if (defaultImage !== undefined) service = DEFAULT_SERVICE_ID
    else if (serviceIds.length === 0) {
      report('CLNRM_NO_SERVICES', `Step "${name}" has no service to run in: the test declares none`, path, 'table', `Declare one: [${servicesKey}.app] with image = "…", or set a default image in clnrm.toml: [containers] default_image = "…".`)
      ok = false
    }
    else {
      report('CLNRM_AMBIGUOUS_SERVICE', `Step "${name}" does not say which service runs it`, path, 'table', `Add service = one of: ${serviceIds.join(', ')} (or set [containers] default_image in clnrm.toml to run it there).`)
      ok = false
    }
  }
  else if (!serviceIds.includes(service)) {
    report('CLNRM_UNKNOWN_SERVICE', `Step "${name}" names the service "${service}", which the test does not declare`, [...path, 'service'], 'value',
      didYouMean(service, serviceIds) ?? (serviceIds.length ? `Declared services: ${serviceIds.join(', ')}.` : `Declare it: [${servicesKey}.${service}] with image = "…".`))
    ok = false
  }
  if (step.should_fail === true && step.expected_exit_code !== undefined) {
    report('CLNRM_CONFLICTING_KEYS', `Step "${name}" has both should_fail and expected_exit_code`, [...path, 'should_fail'], 'key',
      'Keep expected_exit_code to require one exit code, or should_fail = true to accept any non-zero one.')
    ok = false
  }
  const collectSpans = step.artifacts !== undefined ? collectsSpans(step.artifacts, path, report) : defaults.collectSpans ?? false
  if (!ok) return undefined
  return {
    name,
    service: service!,
    command: step.command ?? SHELL(step.run),
    run: step.run,
    env: step.env ?? {},
    workdir: step.workdir,
    timeoutMs: step.timeout ?? DEFAULT_STEP_TIMEOUT_MS,
    ...(step.description !== undefined && { description: step.description }),
    expectedExitCode: step.expected_exit_code ?? 0,
    shouldFail: step.should_fail ?? false,
    expectedOutputRegex: step.expected_output_regex ?? [],
    expectedOutputContains: step.expected_output_contains ?? [],
    expectedOutputRegexNot: step.expected_output_regex_not ?? [],
    expectedStderrRegex: step.expected_stderr_regex ?? [],
    continueOnFailure: step.continue_on_failure ?? false,
    collectSpans,
    scenario: defaults.scenario,
    ...(defaults.scenarioTimeoutMs !== undefined && { scenarioTimeoutMs: defaults.scenarioTimeoutMs }),
    source: path,
  }
}
