import {
  any, array, boolean, datetime, duration, field, integer, oneOrMany, record, regex, scalar, string, table, union,
} from './fields.ts'
import type { FieldDef, TypeDef } from './fields.ts'

/** Service plugins clnrm knows how to start. */
export const SERVICE_PLUGINS: readonly string[] = ['generic_container']

const env = (what: string): FieldDef =>
  field(record(scalar), `Environment variables ${what}. Values may be strings, integers or booleans.`)

const metaFields = {
  name: field(string(), 'The test\'s name, shown in every report.', { required: true }),
  description: field(string(), 'What the test proves.'),
}

/** `[meta]`: the short spelling of the test's metadata. */
export const metaTable: TypeDef & { kind: 'table' } = table({
  ...metaFields,
  version: field(string(), 'A version for the test file itself.'),
  timeout: field(duration, 'Budget for the whole test.'),
})

/** `[test.metadata]`: the spelling clnrm's flat schema uses. */
export const testTable: TypeDef & { kind: 'table' } = table({
  metadata: field(table({
    ...metaFields,
    timeout: field(duration, 'Budget for the whole test.'),
  }), 'The test\'s metadata (same as `[meta]`).', { required: true }),
})

const healthCheckTable = table({
  cmd: field(union(array(string()), string()), 'Command run inside the container; exit code 0 means healthy. A string runs with `sh -c`.', { required: true }),
  interval: field(duration, 'Time between checks.', { default: '50ms' }),
  timeout: field(duration, 'Time after which the service counts as unhealthy.', { default: '30s' }),
  retries: field(integer({ minimum: 0 }), 'Failed checks tolerated before giving up (0: until `timeout`).', { default: 0 }),
})

const waitForTable = table({
  log: field(regex, 'A regular expression the container\'s output must match.'),
  port: field(integer({ minimum: 1, maximum: 65535 }), 'A container port that must accept connections.'),
  timeout: field(duration, 'How long to wait.', { default: '30s' }),
})

const volumeTable = table({
  host_path: field(string(), 'A path on the host, relative to the test file. Must stay inside the project root.', { required: true }),
  container_path: field(string(), 'Where it appears inside the container (absolute).', { required: true }),
  read_only: field(boolean, 'Mount read-only.', { default: false }),
})

/** `[services.<id>]`: one container. */
export const serviceTable: TypeDef & { kind: 'table' } = table({
  plugin: field(string({ enum: SERVICE_PLUGINS }), 'How the service is provided.', { default: 'generic_container', aliases: ['type'] }),
  image: field(string({ examples: ['busybox:1.36', 'alpine:3.20'] }), 'The container image. It must exist locally or be pullable.', { required: true }),
  command: field(array(string()), 'Overrides the image\'s command (argv).', { aliases: ['args'] }),
  env: env('of the container'),
  ports: field(array(integer({ minimum: 1, maximum: 65535 })), 'Container ports to publish. Host ports are chosen at run time and given to steps as `SERVICE_<ID>_PORT_<n>`.'),
  volumes: field(array(volumeTable), 'Host paths mounted into the container.'),
  health_check: field(healthCheckTable, 'Checked before the first step runs.'),
  wait_for: field(union(regex, integer({ minimum: 1, maximum: 65535 }), waitForTable), 'Waits for a log line (a regex string) or a port (an integer) before the first step.'),
  reset: field(union(array(string()), string()), 'Run before a reused container is handed to the next run (argv, or a `sh -c` string).'),
  reuse: field(boolean, 'Keep the container between runs (each run still gets a fresh workdir).', { default: true }),
})

const stepFields: Record<string, FieldDef> = {
  name: field(string(), 'The step\'s name, unique within the test. Defaults to `step <n>`.'),
  service: field(string(), 'The service whose container runs the step. May be omitted when the test has one service.'),
  command: field(array(string()), 'The argv to run (no shell).'),
  run: field(string(), 'A shell command, run with `sh -c`.'),
  env: env('for this step'),
  workdir: field(string(), 'Working directory inside the container. Defaults to a fresh, empty directory per run.'),
  timeout: field(duration, 'Budget for this step.', { default: '30s' }),
  expected_exit_code: field(integer(), 'The exit code the step must return.', { default: 0 }),
  expected_output_regex: field(oneOrMany(regex), 'Every pattern must match stdout.'),
  expected_output_regex_not: field(oneOrMany(regex), 'No pattern may match stdout.'),
  expected_stderr_regex: field(oneOrMany(regex), 'Every pattern must match stderr.'),
  continue_on_failure: field(boolean, 'Keep running the test\'s next steps when this one fails.', { default: false }),
}

/** `[[steps]]`: one command inside one container. */
export const stepTable: TypeDef & { kind: 'table' } = table(stepFields)

/** `[[scenario]]`: clnrm's flat schema; a named group of steps, or one `run` step. */
export const scenarioTable: TypeDef & { kind: 'table' } = table({
  ...stepFields,
  name: field(string(), 'The scenario\'s name.', { required: true }),
  steps: field(array(stepTable), 'The scenario\'s steps. Without it, the scenario is one step.'),
})

/** The whole `*.clnrm.toml` file. */
export const testFileTable: TypeDef & { kind: 'table' } = table({
  meta: field(metaTable, 'The test\'s metadata. `[test.metadata]` is accepted too.'),
  test: field(testTable, 'Holds `[test.metadata]`, the spelling of clnrm\'s flat schema.'),
  services: field(record(serviceTable, '^[A-Za-z0-9_-]+$'), 'Containers, by id. The id is the host name other services reach them by.', { aliases: ['service'] }),
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
})

/** The optional project file `clnrm.toml` at the project root. */
export const projectFileTable: TypeDef & { kind: 'table' } = table({
  vars: field(record(any), 'Data for templates, as `it.<name>`; `--var key=value` overrides.'),
  determinism: field(table({
    seed: field(integer(), 'Default seed for every template.'),
    freeze_clock: field(datetime, 'Default frozen clock for every template.'),
  }), 'Defaults for every test\'s `[determinism]`.'),
  tests: field(array(string()), 'Globs of test files, relative to the project root.', { default: ['**/*.clnrm.toml', '**/*.clnrm.toml.eta'] }),
})
