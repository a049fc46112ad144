import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { clnrmContainers, IMAGE } from './engine.ts'
import { fixture, tempDir } from './helpers.ts'
import { node, startDev } from './runtimes/contract.ts'

// The format's promises as a user meets them: the built CLI spawned on temp projects, its exit
// code and located diagnostics, and the engine inspected for containers the run left behind.
// `clnrm run` on an invalid file: asserted as "not 0" (the exit code for invalid files is moving
// from 2 to 1); `validate` exits 1 on errors and 0 on warnings only.

const bin = resolve(import.meta.dirname, '../dist/cli/bin.mjs')

interface Spawned { code: number | null; stdout: string; stderr: string; pid: number; ms: number }

/** Spawns the CLI and keeps its pid, so the engine can be asked what this very process created. */
function cli(args: string[], cwd: string): Promise<Spawned> {
  const started = Date.now()
  const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()))
  child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()))
  return new Promise(resolve => child.once('close', code => resolve({ code, stdout, stderr, pid: child.pid!, ms: Date.now() - started })))
}

const file = (opts: { name?: string; image?: string; service?: string; step?: string; tail?: string; run?: string } = {}): string =>
  `[meta]\nname = "${opts.name ?? 't'}"\n[services.box]\nimage = "${opts.image ?? IMAGE}"\n${opts.service ?? ''}[[steps]]\nname = "s"\nrun = "${opts.run ?? 'true'}"\n${opts.step ?? ''}${opts.tail ?? ''}`

/** Asserts a located diagnostic (`file:line:col severity CODE`) in the output, and no stack trace. */
function expectDiagnostic(output: string, at: string, code: string, severity = 'error'): void {
  expect(output).toContain(`${at} ${severity} ${code}`)
  expect(output).not.toMatch(/\n\s+at .+\(.*:\d+:\d+\)/)
}

describe('the format as the CLI reports it', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir('clnrm-format-cli-')))
  afterEach(() => cleanup())
  const write = (name: string, text: string): void => writeFileSync(join(dir, name), text)

  it('a typo in an expectation key is an error in validate and run, never a pass', async () => {
    write('typo.clnrm.toml', file({ step: 'expected_ouput_regex = "^never$"\n' }))
    const validate = await cli(['validate', '.'], dir)
    expect(validate.code).toBe(1)
    expectDiagnostic(validate.stdout, 'typo.clnrm.toml:8:1', 'CLNRM_UNKNOWN_KEY')
    expect(validate.stdout).toContain('Did you mean "expected_output_regex"?')
    const run = await cli(['run', '.'], dir)
    expect(run.code).not.toBe(0)
    expectDiagnostic(run.stderr, 'typo.clnrm.toml:8:1', 'CLNRM_UNKNOWN_KEY')
    expect(run.stdout).not.toMatch(/passed/)
    expect(clnrmContainers(run.pid)).toEqual([])
  })

  it('span expectations and [otel] validate; their type errors are located; tables still unchecked are CLNRM_NOT_SUPPORTED', async () => {
    // The constructs of upstream's red-team files: a green echo, stdout spans and span expectations.
    write('spans.clnrm.toml', `[meta]\nname = "a"\n[service.red]\nimage = "${IMAGE}"\n[[scenario]]\nname = "fake"\nrun = "echo ok"\nartifacts.collect = ["spans:default"]\n`
      + '[[expect.span]]\nname = "clnrm.run"\nkind = "internal"\nattrs.all = { "result" = "pass" }\nduration_ms = { min = 1, max = 600000 }\n'
      + '[expect.counts]\nspans_total = { gte = 2 }\n')
    write('types.clnrm.toml', `${file()}[otel]\nexporter = "zipkin"\nsample_ratio = 2\n[[expect.span]]\nname = "a"\nkind = "INTERNL"\nattrs.any = ["nokey"]\n`
      + '[expect.counts]\nspans_total = { eq = 1, gte = 2 }\n[expect.graph]\nmust_include = [["a"]]\n[expect.status]\nall = "GREEN"\n[[expect.window]]\nouter = "a"\n')
    write('chaos.clnrm.toml', `${file()}[expect.chaos]\nrecovery_verified = true\n[otel_validation]\nenabled = true\n`)
    write('logs.clnrm.toml', file({ step: 'artifacts.collect = ["spans:default", "logs:all"]\n' }))
    const validate = await cli(['validate', '.', '--reporter', 'json'], dir)
    expect(validate.code).toBe(1)
    const report = JSON.parse(validate.stdout)
    expect(report.summary).toMatchObject({ files: 4, valid: 1, invalid: 3 })
    const found = report.files.flatMap((f: { file: string; diagnostics: Array<Record<string, unknown>> }) =>
      f.diagnostics.map(d => [f.file.split('/').pop(), d.code, d.line, d.column]))
    expect(found.filter((d: unknown[]) => d[0] === 'spans.clnrm.toml')).toEqual([])
    expect(found).toEqual(expect.arrayContaining([
      ['types.clnrm.toml', 'CLNRM_INVALID_VALUE', 9, 12],
      ['types.clnrm.toml', 'CLNRM_INVALID_VALUE', 10, 16],
      ['types.clnrm.toml', 'CLNRM_INVALID_VALUE', 13, 8],
      ['types.clnrm.toml', 'CLNRM_INVALID_VALUE', 14, 14],
      ['types.clnrm.toml', 'CLNRM_CONFLICTING_KEYS', 16, 15],
      ['types.clnrm.toml', 'CLNRM_INVALID_VALUE', 18, 17],
      ['types.clnrm.toml', 'CLNRM_INVALID_VALUE', 20, 7],
      ['types.clnrm.toml', 'CLNRM_MISSING_KEY', 21, 1],
      ['chaos.clnrm.toml', 'CLNRM_NOT_SUPPORTED', 8, 9],
      // [otel_validation] maps onto the span checks: enabled alone declares none.
      ['chaos.clnrm.toml', 'CLNRM_MISSING_KEY', 10, 1],
      ['logs.clnrm.toml', 'CLNRM_NOT_SUPPORTED', 8, 39],
    ]))
    const run = await cli(['run', 'chaos.clnrm.toml'], dir)
    expect(run.code).not.toBe(0)
    expectDiagnostic(run.stderr, 'chaos.clnrm.toml:8:9', 'CLNRM_NOT_SUPPORTED')
    expect(run.stderr).toContain('expect.chaos is not supported')
    expect(clnrmContainers(run.pid)).toEqual([])
    const human = await cli(['validate', 'types.clnrm.toml'], dir)
    expectDiagnostic(human.stdout, 'types.clnrm.toml:13:8', 'CLNRM_INVALID_VALUE')
    expect(human.stdout).toContain('expect.span[0].kind is "INTERNL", not a span kind')
  })

  it('dry-run lists every span rule a file declares, human and JSON, and starts nothing', async () => {
    write('all.clnrm.toml', readFileSync(fixture('valid', 'otel-expect.clnrm.toml'), 'utf8'))
    const rules = [
      'expect.span[checkout.*]', 'expect.graph.must_include[0]', 'expect.graph.must_not_cross[0]', 'expect.graph.acyclic',
      'expect.counts.spans_total', 'expect.counts.events_total', 'expect.counts.errors_total', 'expect.counts.by_name[clnrm.run]',
      'expect.window[a]', 'expect.order.must_precede[0]', 'expect.order.must_follow[0]', 'expect.status.all', 'expect.status.by_name[clnrm.*]',
      'expect.hermeticity.no_external_services', 'expect.hermeticity.resource_attrs.must_match', 'expect.hermeticity.span_attrs.forbid_keys',
    ]
    const human = await cli(['dry-run', 'all.clnrm.toml'], dir)
    expect(human.code).toBe(0)
    for (const rule of rules) expect(human.stdout).toContain(`    ${rule}  `)
    expect(human.stdout).toContain('attrs.all { http.method="GET", http.status_code="200" }')
    expect(human.stdout).toContain('status OK, duration 1..2.5 ms')
    expect(human.stdout).toContain('stdout read as NDJSON spans')
    expect(human.stdout).toContain('headers Authorization (values not shown)')
    expect(human.stdout).not.toContain('Bearer')
    expect(clnrmContainers(human.pid)).toEqual([])
    const json = JSON.parse((await cli(['dry-run', 'all.clnrm.toml', '--reporter', 'json'], dir)).stdout)
    const [plan] = json.plans
    expect(plan.expectations.map((e: { rule: string }) => e.rule)).toEqual(rules)
    expect(plan.otel).toMatchObject({ exporter: 'otlp', protocol: 'http/json', sampleRatio: 0.5, settleTimeoutMs: 3000, quietWindowMs: 50, headers: ['Authorization'] })
    expect(plan.steps[0].collectSpans).toBe(true)
    // A test without span rules says nothing about spans.
    write('plain.clnrm.toml', file())
    const plain = JSON.parse((await cli(['dry-run', 'plain.clnrm.toml', '--reporter', 'json'], dir)).stdout)
    expect(plain.plans[0].expectations).toEqual([])
    expect(plain.plans[0].otel).toBeUndefined()
  })

  it('free-text metadata extras are only a warning', async () => {
    // `tags`, `author` and `version` are upstream's documented metadata and do not warn (upstream-schema.test.ts).
    write('tags.clnrm.toml', file().replace('name = "t"\n', 'name = "t"\nowner = "qa"\n'))
    const validate = await cli(['validate', '.'], dir)
    expect(validate.code).toBe(0)
    expectDiagnostic(validate.stdout, 'tags.clnrm.toml:3:1', 'CLNRM_UNKNOWN_KEY', 'warning')
  })

  it('Tera syntax in a plain file is an error at the tag, not literal text run in the container', async () => {
    write('tera.clnrm.toml', file({ run: 'echo \'{{ uuid_v4() }}\'' }))
    write('shell.clnrm.toml', file({ run: 'echo ${HOME} ${#HOME} | awk \'{print $1}\'' }))
    const validate = await cli(['validate', '.'], dir)
    expect(validate.code).toBe(1)
    expectDiagnostic(validate.stdout, 'tera.clnrm.toml:7:14', 'CLNRM_TEMPLATE_IN_PLAIN_FILE')
    expect(validate.stdout).toContain('.clnrm.toml.eta')
    expect(validate.stdout).toMatch(/✓ shell\.clnrm\.toml/)
    const run = await cli(['run', 'tera.clnrm.toml'], dir)
    expect(run.code).not.toBe(0)
    expectDiagnostic(run.stderr, 'tera.clnrm.toml:7:14', 'CLNRM_TEMPLATE_IN_PLAIN_FILE')
    expect(clnrmContainers(run.pid)).toEqual([])
  })

  it('impossible expectations are located errors', async () => {
    write('exit.clnrm.toml', file({ step: 'expected_exit_code = 256\n' }))
    write('timeout.clnrm.toml', file({ step: 'timeout = "0s"\n' }))
    write('name.clnrm.toml', file({ name: '' }))
    write('env.clnrm.toml', file({ step: 'env = { "A-B" = "1" }\n' }))
    write('collide.clnrm.toml', `[meta]\nname = "c"\n[services.web-a]\nimage = "${IMAGE}"\nports = [80]\n[services.web_a]\nimage = "${IMAGE}"\nports = [80]\n[[steps]]\nservice = "web-a"\nrun = "true"\n`)
    write('host.clnrm.toml', `[meta]\nname = "h"\n[services.-web]\nimage = "${IMAGE}"\n[[steps]]\nrun = "true"\n`)
    const validate = await cli(['validate', '.'], dir)
    expect(validate.code).toBe(1)
    expectDiagnostic(validate.stdout, 'exit.clnrm.toml:8:22', 'CLNRM_INVALID_VALUE')
    expectDiagnostic(validate.stdout, 'timeout.clnrm.toml:8:11', 'CLNRM_INVALID_DURATION')
    expectDiagnostic(validate.stdout, 'name.clnrm.toml:2:8', 'CLNRM_INVALID_VALUE')
    expectDiagnostic(validate.stdout, 'env.clnrm.toml:8:9', 'CLNRM_INVALID_VALUE')
    expectDiagnostic(validate.stdout, 'collide.clnrm.toml:6:11', 'CLNRM_DUPLICATE_SERVICE')
    expect(validate.stdout).toContain('SERVICE_WEB_A_PORT_<port>')
    expectDiagnostic(validate.stdout, 'host.clnrm.toml:3:11', 'CLNRM_INVALID_VALUE')
    expect(validate.stdout).toMatch(/6 files: 0 valid, 6 invalid/)
  })

  it('[watch] paths that match nothing are located warnings in validate, run and dev', async () => {
    write('watch.clnrm.toml', file({ tail: '[watch]\nfiles = ["fixtures/*.sql"]\nmodules = ["src/mian.ts"]\n' }))
    const validate = await cli(['validate', '.'], dir)
    expect(validate.code).toBe(0)
    expectDiagnostic(validate.stdout, 'watch.clnrm.toml:9:10', 'CLNRM_WATCH_NO_MATCH', 'warning')
    expectDiagnostic(validate.stdout, 'watch.clnrm.toml:10:12', 'CLNRM_WATCH_NO_MATCH', 'warning')

    const run = await cli(['run', '.'], dir)
    expect(run.code).toBe(0)
    expectDiagnostic(run.stderr, 'watch.clnrm.toml:9:10', 'CLNRM_WATCH_NO_MATCH', 'warning')
    expect(run.stdout).toMatch(/1 passed/)
    expect(clnrmContainers(run.pid)).toEqual([])

    const dev = startDev(node, ['.'], dir)
    try {
      const warning = await dev.waitFor(l => l.type === 'warning' && l.code === 'CLNRM_WATCH_NO_MATCH')
      expect(warning).toMatchObject({ severity: 'warning', line: 9, column: 10, file: join(dir, 'watch.clnrm.toml') })
      await dev.waitFor(l => l.type === 'test' && l.status === 'pass')
    }
    finally {
      dev.kill('SIGINT')
      await dev.exited
    }
    expect(clnrmContainers(dev.pid)).toEqual([])
  })

  it('an image that is not a reference is a located error: no crash, no stack, no container', async () => {
    for (const [image, name] of [['', 'empty'], ['/abs', 'abs'], ['../x', 'rel']] as const) write(`${name}.clnrm.toml`, file({ image }))
    for (const name of ['empty', 'abs', 'rel']) {
      const run = await cli(['run', `${name}.clnrm.toml`], dir)
      expect(run.code, run.stderr).not.toBe(0)
      expectDiagnostic(run.stderr, `${name}.clnrm.toml:4:9`, 'CLNRM_INVALID_VALUE')
      expect(run.stderr).toMatch(/hint: .*image reference/)
      expect(run.ms).toBeLessThan(20_000)
      expect(clnrmContainers(run.pid)).toEqual([])
    }
    // The dev loop shows it as an invalid file and goes on with the others.
    write('ok.clnrm.toml', file({ name: 'ok' }))
    const dev = startDev(node, ['empty.clnrm.toml', 'ok.clnrm.toml'], dir)
    try {
      expect(await dev.waitFor(l => l.type === 'error' && l.code === 'CLNRM_INVALID_VALUE')).toMatchObject({ line: 4, column: 9, file: join(dir, 'empty.clnrm.toml') })
      await dev.waitFor(l => l.type === 'test' && l.name === 'ok' && l.status === 'pass')
      await dev.waitFor(l => l.type === 'ready')
    }
    finally {
      dev.kill('SIGINT')
      await dev.exited
    }
    expect(clnrmContainers(dev.pid)).toEqual([])
    const init = await cli(['init', 'proj', '--image', ''], dir)
    expect(init.code).toBe(2)
    expect(init.stderr).toMatch(/not an image reference/)
    expect(init.stdout).not.toMatch(/created/)
  })

  it('volumes: a missing host_path and an impossible container_path are located errors, nothing is created', async () => {
    write('missing.clnrm.toml', file({ service: 'volumes = [{ host_path = "fixtures", container_path = "/data" }]\n' }))
    mkdirSync(join(dir, 'data'))
    write('root.clnrm.toml', file({ service: 'volumes = [{ host_path = "data", container_path = "/" }]\n' }))
    write('proc.clnrm.toml', file({ service: 'volumes = [{ host_path = "data", container_path = "/proc" }]\n' }))
    const validate = await cli(['validate', '.'], dir)
    expect(validate.code).toBe(1)
    expectDiagnostic(validate.stdout, 'missing.clnrm.toml:5:26', 'CLNRM_VOLUME_NOT_FOUND')
    expectDiagnostic(validate.stdout, 'root.clnrm.toml:5:51', 'CLNRM_INVALID_VALUE')
    expectDiagnostic(validate.stdout, 'proc.clnrm.toml:5:51', 'CLNRM_INVALID_VALUE')
    const run = await cli(['run', 'missing.clnrm.toml'], dir)
    expect(run.code).not.toBe(0)
    expectDiagnostic(run.stderr, 'missing.clnrm.toml:5:26', 'CLNRM_VOLUME_NOT_FOUND')
    expect(clnrmContainers(run.pid)).toEqual([])
    // The engine would have created the directory, owned by root, inside the project.
    expect(existsSync(join(dir, 'fixtures'))).toBe(false)
  })

  it('a volume through a symlink to outside the root is rejected before the engine sees it; one inside still mounts', async () => {
    const { dir: outside, cleanup: cleanupOutside } = await tempDir('clnrm-outside-')
    try {
      writeFileSync(join(outside, 'secret.txt'), 'host secret\n')
      symlinkSync(outside, join(dir, 'rootlink'))
      write('escape.clnrm.toml', file({ service: 'volumes = [{ host_path = "rootlink", container_path = "/host" }]\n', run: 'cat /host/secret.txt' }))
      const escape = await cli(['run', 'escape.clnrm.toml'], dir)
      expect(escape.code).not.toBe(0)
      expectDiagnostic(escape.stderr, 'escape.clnrm.toml:5:26', 'CLNRM_VOLUME_OUTSIDE_ROOT')
      expect(escape.stdout).not.toContain('host secret')
      expect(clnrmContainers(escape.pid)).toEqual([])

      mkdirSync(join(dir, 'data'))
      writeFileSync(join(dir, 'data', 'inside.txt'), 'inside the project\n')
      symlinkSync(join(dir, 'data'), join(dir, 'datalink'))
      write('inside.clnrm.toml', file({ service: 'volumes = [{ host_path = "datalink", container_path = "/data", read_only = true }]\n', run: 'cat /data/inside.txt', step: 'expected_output_regex = "^inside the project\\n$"\n' }))
      const inside = await cli(['run', 'inside.clnrm.toml'], dir)
      expect(inside.code, inside.stdout + inside.stderr).toBe(0)
      expect(inside.stdout).toMatch(/1 passed/)
      expect(clnrmContainers(inside.pid)).toEqual([])
    }
    finally {
      await cleanupOutside()
    }
  })

  it('an include() of a symlink to a host file is a located template error, and nothing of it is rendered', async () => {
    const { dir: outside, cleanup: cleanupOutside } = await tempDir('clnrm-outside-')
    try {
      writeFileSync(join(outside, 'passwd'), 'root:x:0:0:host secret\n')
      symlinkSync(join(outside, 'passwd'), join(dir, '_passwd.eta'))
      write('leak.clnrm.toml.eta', `${file()}# <%~ include('./_passwd.eta') %>\n`)
      const render = await cli(['render', 'leak.clnrm.toml.eta'], dir)
      expect(render.code).not.toBe(0)
      expect(render.stdout + render.stderr).not.toContain('host secret')
      expectDiagnostic(render.stderr, 'leak.clnrm.toml.eta:8:3', 'CLNRM_TEMPLATE_INCLUDE')
      const validate = await cli(['validate', '.'], dir)
      expect(validate.code).toBe(1)
      expectDiagnostic(validate.stdout, 'leak.clnrm.toml.eta:8:3', 'CLNRM_TEMPLATE_INCLUDE')
    }
    finally {
      await cleanupOutside()
    }
  })

  it('[watch] files through a symlink to outside the root are an error, so dev never watches the host', async () => {
    const { dir: outside, cleanup: cleanupOutside } = await tempDir('clnrm-outside-')
    try {
      symlinkSync(outside, join(dir, 'hostlink'))
      write('watch.clnrm.toml', file({ tail: '[watch]\nfiles = ["hostlink/**"]\n' }))
      const validate = await cli(['validate', '.'], dir)
      expect(validate.code).toBe(1)
      expectDiagnostic(validate.stdout, 'watch.clnrm.toml:9:10', 'CLNRM_WATCH_OUTSIDE_ROOT')
    }
    finally {
      await cleanupOutside()
    }
  })
})
