import {
  any, array, boolean, datetime, field, integer, notSupported, oneOrMany, positiveDuration, record, regex, scalar, string,
  table, union,
} from './fields.ts'
import type { FieldDef, KeyRule, TypeDef } from './fields.ts'
import { assertionsTable } from '../assertions.ts'
import { limitsTable } from './limits.ts'
import { matrixField } from './matrix.ts'
import { reportTable } from './report-table.ts'
import { otelValidationTable } from './otel-validation.ts'
import { artifactsField, expectTable, otelTable } from '../otel/format.ts'

export { expectTable, otelTable }

/** Service plugins clnrm knows how to start. */
export const SERVICE_PLUGINS: readonly string[] = ['generic_container']

/** Names a POSIX shell can hold: steps see env vars through `sh`, which drops any other name. */
export const ENV_NAME: KeyRule = {
  pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
  what: 'an environment variable name',
  hint: 'Use letters, digits and "_", not starting with a digit (a shell cannot hold other names).',
}

/**
 * Service ids are the host names other containers reach a service by, so they are DNS labels:
 * letters, digits and "-", not starting or ending with "-", at most 63 characters. "_" is allowed
 * too: Docker's embedded DNS resolves it (checked on the engine), and clnrm's flat schema uses it.
 */
export const SERVICE_ID: KeyRule = {
  pattern: '^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$',
  what: 'a service id',
  hint: 'Use letters, digits, "-" and "_", starting and ending with a letter or digit, at most 63 characters: the id is a host name.',
}

// Docker's reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest].
const DOMAIN_PART = '(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])'
const PATH_PART = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
/** A pattern for image references such as `busybox:1.36`, `ghcr.io/org/app:v1`, `app@sha256:…`. */
export const IMAGE_REFERENCE_PATTERN: string = `^(?:${DOMAIN_PART}(?:\\.${DOMAIN_PART})*(?::[0-9]+)?/)?${PATH_PART}(?:/${PATH_PART})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$`

const IMAGE_REFERENCE_RE = new RegExp(IMAGE_REFERENCE_PATTERN)

/** True for a well-formed image reference (`busybox:1.36`); paths and empty strings are not. */
export function isImageReference(ref: string): boolean {
  return ref.length <= 255 && IMAGE_REFERENCE_RE.test(ref)
}

const imageType: TypeDef = string({
  examples: ['busybox:1.36', 'alpine:3.20'],
  nonEmpty: true,
  pattern: { source: IMAGE_REFERENCE_PATTERN, what: 'an image reference', hint: 'Write an image reference such as "busybox:1.36" or "ghcr.io/org/app:1.2": a lowercase name, an optional :tag and @digest. Paths are not images.' },
})

const env = (what: string): FieldDef =>
  field(record(scalar, ENV_NAME), `Environment variables ${what}. Values may be strings, integers or booleans.`)

const metaFields = {
  name: field(string({ nonEmpty: true }), 'The test\'s name, shown in every report.', { required: true }),
  description: field(string(), 'What the test proves; shown in reports.'),
  version: field(string(), 'A version for the test file itself (documentation).'),
  tags: field(array(string()), 'Labels for people and tools (documentation; clnrm selects tests by path).'),
  author: field(string(), 'Who wrote the test (documentation).'),
}

// `[meta]` and `[test.metadata]` are free text: keys beyond upstream's documented ones are only warnings.
/** `[meta]`: the short spelling of the test's metadata. */
export const metaTable: TypeDef & { kind: 'table' } = table({
  ...metaFields,
  timeout: field(positiveDuration, 'Budget for the whole test.'),
}, { unknownKeys: 'warning' })

/** `[test.metadata]`: the spelling clnrm's flat schema uses. */
export const testTable: TypeDef & { kind: 'table' } = table({
  metadata: field(table({
    ...metaFields,
    timeout: field(positiveDuration, 'Budget for the whole test.'),
  }, { unknownKeys: 'warning' }), 'The test\'s metadata (same as `[meta]`).', { required: true }),
  assertions: field(assertionsTable, 'Same as `[assertions]`.'),
})

const healthCheckTable = table({
  cmd: field(union(array(string()), string()), 'Command run inside the container; exit code 0 means healthy. A string runs with `sh -c`.', { required: true }),
  interval: field(positiveDuration, 'Time between checks.', { default: '50ms' }),
  timeout: field(positiveDuration, 'Time after which the service counts as unhealthy.', { default: '30s' }),
  retries: field(integer({ minimum: 0 }), 'Failed checks tolerated before giving up (0: until `timeout`).', { default: 0 }),
})

const waitForTable = table({
  log: field(regex, 'A regular expression the container\'s output must match.'),
  port: field(integer({ minimum: 1, maximum: 65535 }), 'A container port that must accept connections.'),
  timeout: field(positiveDuration, 'How long to wait.', { default: '30s' }),
})

const volumeTable = table({
  host_path: field(string({ nonEmpty: true }), 'A path on the host, relative to the test file; it must exist and stay inside the project root (symlinks are followed). An absolute path (upstream requires them) is accepted with a warning: the test then depends on this machine.', { required: true }),
  container_path: field(string({ nonEmpty: true }), 'Where it appears inside the container: absolute, not `/`, `/proc`, `/sys` or `/dev`.', { required: true }),
  read_only: field(boolean, 'Mount read-only.', { default: false }),
})

/** `[services.<id>]`: one container. */
export const serviceTable: TypeDef & { kind: 'table' } = table({
  // Upstream's `plugin` chooses the plugin and its older `type` was required beside it, then
  // ignored; both are accepted. Whether a value names a plugin or is a label (`plugin = "alpine"`
  // next to `type = "generic_container"`) spans the two keys, so normalize.ts decides.
  plugin: field(string({ nonEmpty: true, examples: [...SERVICE_PLUGINS] }), 'How the service is provided: `generic_container`. Next to `type = "generic_container"`, any other value is a label (upstream files write the image\'s name) and the service is a generic container.', { default: 'generic_container' }),
  type: field(string({ nonEmpty: true }), 'Upstream\'s older spelling of `plugin`: used when `plugin` is absent, ignored when `plugin` is present (as upstream does).'),
  description: field(string(), 'What the service is for (documentation); shown by `clnrm dry-run`.'),
  image: field(imageType, 'The container image. It must exist locally or be pullable.', { required: true }),
  command: field(array(string()), 'Overrides the image\'s command (argv).', { aliases: ['args'] }),
  env: env('of the container'),
  ports: field(array(integer({ minimum: 1, maximum: 65535 })), 'Container ports to publish. Host ports are chosen at run time and given to steps as `SERVICE_<ID>_PORT_<n>`.'),
  volumes: field(array(volumeTable), 'Host paths mounted into the container.'),
  health_check: field(healthCheckTable, 'Checked before the first step runs.'),
  wait_for: field(union(regex, integer({ minimum: 1, maximum: 65535 }), waitForTable), 'Waits for a log line (a regex string) or a port (an integer) before the first step.'),
  reset: field(union(array(string()), string()), 'Run before a reused container is handed to the next run (argv, or a `sh -c` string).'),
  reuse: field(boolean, 'Keep the container between runs (each run still gets a fresh workdir).', { default: true }),
  // Upstream's SurrealDB plugin reads these three; its generic container ignores them. Which env
  // var an image reads its credentials from is the image's business: guessing one would pass a
  // test whose database never got the credentials, so they stay errors.
  username: notSupported('the username of upstream\'s surrealdb plugin (clnrm starts generic containers: give the image its own env, e.g. env = { SURREAL_USER = "root" })'),
  password: notSupported('the password of upstream\'s surrealdb plugin (clnrm starts generic containers: give the image its own env, e.g. env = { SURREAL_PASS = "…" })'),
  strict: notSupported('the strict mode of upstream\'s surrealdb plugin (clnrm starts generic containers: pass the image\'s own flag in command)'),
  wait_for_span: field(string({ nonEmpty: true, examples: ['app.ready'] }), 'The container is ready once a span of this name appears on its output (NDJSON or OTLP-JSON lines, as the stdout exporters write them), as upstream polls its services\' output. Checked when the container starts, after `wait_for` and `health_check`.'),
  wait_for_span_timeout_secs: field(integer({ minimum: 1 }), 'How long `wait_for_span` waits, in seconds.', { default: 30 }),
})

const stepFields: Record<string, FieldDef> = {
  name: field(string({ nonEmpty: true }), 'The step\'s name, unique within the test. Defaults to `step <n>`.'),
  description: field(string(), 'What the step checks (documentation); shown with its result in reports.'),
  service: field(string({ nonEmpty: true }), 'The service whose container runs the step. May be omitted when the test has one service.'),
  command: field(array(string()), 'The argv to run (no shell).'),
  run: field(string(), 'A shell command, run with `sh -c`.'),
  env: env('for this step'),
  workdir: field(string(), 'Working directory inside the container. Defaults to a fresh, empty directory per run.'),
  timeout: field(positiveDuration, 'Budget for this step.', { default: '30s' }),
  expected_exit_code: field(integer({ minimum: 0, maximum: 255 }), 'The exit code the step must return (a process exits with 0..255).', { default: 0 }),
  expected_output_regex: field(oneOrMany(regex), 'Every pattern must match stdout.'),
  expected_output_regex_not: field(oneOrMany(regex), 'No pattern may match stdout.'),
  expected_stderr_regex: field(oneOrMany(regex), 'Every pattern must match stderr.'),
  continue_on_failure: field(boolean, 'Keep running the test\'s next steps when this one fails.', { default: false }),
  artifacts: artifactsField,
  expected_output_contains: field(oneOrMany(string({ nonEmpty: true })), 'Every string must occur in stdout, as written (no pattern syntax).'),
  should_fail: field(boolean, 'The step must exit with a non-zero code, any one (`expected_exit_code` names one). Its other expectations still apply; a timeout still fails it.', { default: false }),
  expect_failure: notSupported('upstream\'s chaos-scenario failure flag (use should_fail = true or expected_exit_code)'),
}

/** `[[steps]]`: one command inside one container. */
export const stepTable: TypeDef & { kind: 'table' } = table(stepFields)

/** Upstream's `PolicyConfig`: security claims about a scenario that clnrm does not enforce. */
const policyTable = table({
  security_level: notSupported('a security level of the scenario (a label no check stands behind)'),
  max_execution_time: notSupported('a scenario time cap in seconds (write timeout_ms on the scenario)'),
  max_memory_mb: notSupported('a memory cap of the scenario (write [limits] memory_mb for the test\'s containers)'),
  max_cpu_usage: notSupported('a CPU cap of the scenario (write [limits] cpu_millicores for the test\'s containers)'),
  allowed_network_hosts: notSupported('a network allow-list (clnrm does not filter container traffic)'),
  disallowed_commands: notSupported('a command deny-list (clnrm does not police what a step\'s shell runs)'),
})

/** `[[scenario]]`: clnrm's flat schema; a named group of steps, or one `run` step. */
export const scenarioTable: TypeDef & { kind: 'table' } = table({
  ...stepFields,
  name: field(string({ nonEmpty: true }), 'The scenario\'s name.', { required: true }),
  steps: field(array(stepTable), 'The scenario\'s steps. Without it, the scenario is one step.'),
  policy: field(policyTable, 'Upstream\'s security policy of a scenario: claims clnrm does not enforce, each `CLNRM_NOT_SUPPORTED`.'),
  concurrent: field(boolean, 'Upstream\'s concurrent scenario steps. `false` is what clnrm does (one step after the other); `true` is `CLNRM_NOT_SUPPORTED`.', { default: false }),
  timeout_ms: field(integer({ minimum: 1 }), 'A deadline for the scenario\'s steps together, in milliseconds from the start of its first step: the step still running then is killed and fails naming `timeout_ms`, and the scenario\'s later steps fail without starting.'),
})

/** The whole `*.clnrm.toml` file. */
export const testFileTable: TypeDef & { kind: 'table' } = table({
  meta: field(metaTable, 'The test\'s metadata. `[test.metadata]` is accepted too.'),
  test: field(testTable, 'Holds `[test.metadata]`, the spelling of clnrm\'s flat schema.'),
  services: field(record(serviceTable, SERVICE_ID), 'Containers, by id. The id is the host name other services reach them by.', { aliases: ['service'] }),
  steps: field(array(stepTable), 'Commands to run, in order, each inside a service\'s container.'),
  scenario: field(array(scenarioTable), 'Named groups of steps (clnrm\'s flat schema); run after `[[steps]]`.'),
  determinism: field(table({
    seed: field(integer(), 'Seeds `uuid()` and `fake` in templates.'),
    freeze_clock: field(datetime, 'The time `now()` returns in templates.'),
  }), 'Makes templates render the same output every time.'),
  watch: field(table({
    files: field(array(string()), 'Globs, relative to the test file, whose changes rerun this test in `clnrm dev`.'),
    modules: field(array(string()), 'Entry modules (for `clnrm/vite`): a change to anything they import reruns this test.'),
  }), 'Extra inputs of this test for the dev loop.'),
  otel: field(otelTable, 'How services export OpenTelemetry spans to clnrm, and how long it waits for them.'),
  expect: field(expectTable, 'What the spans the services emit must show: `[[expect.span]]`, `[expect.graph]`, `[expect.counts]`, `[[expect.window]]`, `[expect.order]`, `[expect.status]`, `[expect.hermeticity]`.'),
  otel_validation: field(otelValidationTable, 'Upstream\'s older span checks, mapped onto the `expect.*` checks (`expected_spans` as `[[expect.span]]`, `expect_graph` as `[expect.graph]`…); `expected_traces` need one trace to hold the spans named.'),
  assertions: field(assertionsTable, 'Claims about the run, judged after it: the checkable keys; any other key is `CLNRM_NOT_SUPPORTED`.'),
  matrix: matrixField,
  report: field(reportTable, 'Reports `clnrm run` writes for this file\'s tests: `json`, `junit`, `digest` (paths relative to the project root).'),
  limits: field(limitsTable, 'CPU and memory limits of every service container of the test.'),
  template: field(table({
    matrix: field(record(any), 'Data for the template\'s loops, read as `it.matrix.<key>` (upstream\'s `[template.matrix]`; unlike `[matrix]`, the test runs once).'),
    env_defaults: field(record(scalar), 'What `env("NAME")` returns when the variable is unset (upstream\'s `[template.env_defaults]`).'),
  }), 'Upstream\'s template data: `[template.matrix]` and `[template.env_defaults]`. Data, not claims.'),
  vars: field(record(any), 'Data for this file\'s template tags (`it.<name>`, `it.vars.<name>`): overrides `[vars]` of clnrm.toml, and `--var` overrides both. Shown by `clnrm dry-run`; data, not a claim, so nothing is checked.'),
})

/**
 * The optional project file `clnrm.toml` at the project root. Its unknown keys stay warnings:
 * it holds settings, not tests, so nothing a test declares goes unchecked because of them.
 */
export const projectFileTable: TypeDef & { kind: 'table' } = table({
  vars: field(record(any), 'Data for templates, as `it.<name>`; `--var key=value` overrides.'),
  determinism: field(table({
    seed: field(integer(), 'Default seed for every template.'),
    freeze_clock: field(datetime, 'Default frozen clock for every template.'),
  }), 'Defaults for every test\'s `[determinism]`.'),
  tests: field(array(string()), 'Globs of test files, relative to the project root.', { default: ['**/*.clnrm.toml', '**/*.clnrm.toml.eta'] }),
  containers: field(table({
    default_image: field(imageType, 'The image of the service `clnrm-default`, which runs steps of tests that declare no service, and steps without `service` in tests that declare several (as upstream\'s default image does).'),
  }, { unknownKeys: 'warning' }), 'Container defaults, spelled as in upstream\'s `cleanroom.toml`.'),
  render_timeout: field(positiveDuration, 'How long one template render may run before it is stopped and reported (an endless loop); `--render-timeout` overrides.', { default: '2s' }),
  reuse: field(boolean, '`clnrm run` leaves idle single-service containers running for the next run, which claims them (as `--reuse` does); each run still gets a fresh workdir, `reset`, and a container of its own.', { default: false }),
  reuse_idle_timeout: field(positiveDuration, 'How long a container left by `reuse` waits for a later run; any later clnrm process removes it after that.', { default: '10m' }),
}, { unknownKeys: 'warning' })
