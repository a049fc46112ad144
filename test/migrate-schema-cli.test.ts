import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'smol-toml'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { spawnCli } from './cli-process.ts'
import { tempDir } from './helpers.ts'

// `clnrm migrate`'s schema fixes on test files written the way upstream's are (our own fixtures):
// spawned on a temp project, checked by the files written, what it reports, and `clnrm validate`
// of the result.

const LEGACY = `[test.metadata]
name = "legacy"

[services.app]
plugin = "otel_collector"
image = "busybox:1.36"
environment = { GREETING = "hi" }
network = { mode = "internal" }

[services.db]
plugin = "generic_container"
image = "busybox:1.36"
env = { A = "1" }
environment = { A = "0", B = "2" }

[[steps]]
name = "greet"
service = "app"
command = ["sh", "-c", "echo $GREETING"]
expected_output_contains = "hi"
capture_stdout = true

[[steps]]
name = "both"
service = "db"
command = ["sh", "-c", "echo $A$B"]
depends_on = [
  "greet",
]

[otel_expectations]
must_have_spans = ["a", "b"]

[otel_expectations.details]
strict = true

[assertions]
dashboard_renders_correctly = true
all_steps_should_succeed = true
`

const OTHER = `# not a test file: a tool's settings
[tool]
environment = "x"
anything = 1
`

async function run(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = spawnCli([...args, '--no-color'], cwd)
  const exit = await cli.exited
  expect(exit.ms).toBeLessThan(10_000)
  return { code: exit.code, stdout: cli.stdout(), stderr: cli.stderr() }
}

function snapshot(dir: string): Record<string, { text: string; mtime: number }> {
  const out: Record<string, { text: string; mtime: number }> = {}
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name)
    if (entry.isFile()) out[path] = { text: readFileSync(path, 'utf8'), mtime: statSync(path).mtimeMs }
  }
  return out
}

describe('clnrm migrate: schema fixes', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('clnrm-migrate-schema-'))
    mkdirSync(join(dir, 'tests'))
    writeFileSync(join(dir, 'tests', 'legacy.clnrm.toml'), LEGACY)
    writeFileSync(join(dir, 'tests', 'tool.toml'), OTHER)
  })
  afterEach(() => cleanup())

  it('the file as upstream wrote it is refused only for what upstream dropped, before migrate', async () => {
    const { code, stdout } = await run(['validate', 'tests/legacy.clnrm.toml'], dir)
    expect(code).toBe(1)
    expect(stdout).toMatch(/CLNRM_UNKNOWN_KEY/)
    expect(stdout).toMatch(/CLNRM_NOT_SUPPORTED/)
  })

  it('rewrites environment → env (merged, env winning), plugin labels → generic_container, and comments every unchecked claim, located', async () => {
    const { code, stdout, stderr } = await run(['migrate', 'tests'], dir)
    expect(code).toBe(0)
    expect(stdout).toContain('migrated tests/legacy.clnrm.toml (in place)')
    const text = readFileSync(join(dir, 'tests', 'legacy.clnrm.toml'), 'utf8')
    const lines = text.split('\n')
    // Comments only: every line stays where it was, so reported places hold.
    expect(lines).toHaveLength(LEGACY.split('\n').length)
    expect(lines[6]).toBe('env = { GREETING = "hi" }')
    expect(lines[4]).toBe('plugin = "generic_container"  # upstream plugin "otel_collector"')
    expect(lines[7]).toBe('# not checked: network = { mode = "internal" }')
    expect(lines[13]).toBe('# merged into env: environment = { A = "0", B = "2" }')
    expect(lines[19]).toBe('expected_output_contains = "hi"')
    expect(lines[20]).toBe('# not checked: capture_stdout = true')
    // A multi-line value is commented line by line; a table with its sub-tables.
    expect(lines.slice(26, 29)).toEqual(['# not checked: depends_on = [', '# not checked:   "greet",', '# not checked: ]'])
    expect(lines.slice(30, 36)).toEqual([
      '# not checked: [otel_expectations]',
      '# not checked: must_have_spans = ["a", "b"]',
      '',
      '# not checked: [otel_expectations.details]',
      '# not checked: strict = true',
      '',
    ])
    expect(lines[37]).toBe('# not checked: dashboard_renders_correctly = true')
    expect(lines[38]).toBe('all_steps_should_succeed = true')

    expect(stderr).toContain('rewrote tests/legacy.clnrm.toml:7:1 services.app.environment → env')
    expect(stderr).toContain('rewrote tests/legacy.clnrm.toml:5:10 services.app.plugin "otel_collector" → "generic_container"')
    expect(stderr).toContain('rewrote tests/legacy.clnrm.toml:14:1 services.db.environment merged into env')
    expect(stderr).toContain('not checked tests/legacy.clnrm.toml:38:1 dashboard_renders_correctly = true')
    expect(stderr).toContain('not checked tests/legacy.clnrm.toml:31:1 [otel_expectations]')
    expect(stderr).toContain('not checked tests/legacy.clnrm.toml:27:1 depends_on = [ …')
    expect(stderr).toMatch(/5 claims upstream never checked are now a `# not checked:` comment/)

    const doc = parse(text) as { services: Record<string, { env: Record<string, string> }> }
    expect(doc.services.db.env).toEqual({ A: '1', B: '2' })
    const validated = await run(['validate', 'tests/legacy.clnrm.toml'], dir)
    expect(validated.stdout).toContain('1 file: 1 valid, 0 invalid')
    expect(validated.code).toBe(0)

    // Nothing else is touched: a .toml that is not a test file stays as it was.
    expect(readFileSync(join(dir, 'tests', 'tool.toml'), 'utf8')).toBe(OTHER)
    // And a second run finds nothing left to do.
    const again = await run(['migrate', 'tests'], dir)
    expect(again.code).toBe(0)
    expect(again.stdout).toMatch(/Nothing to migrate/)
  })

  it('--dry-run prints the diff of the schema fixes and writes nothing', async () => {
    const before = snapshot(dir)
    const { code, stdout, stderr } = await run(['migrate', '--dry-run', 'tests'], dir)
    expect(code).toBe(0)
    expect(stdout).toContain('--- a/tests/legacy.clnrm.toml\n+++ b/tests/legacy.clnrm.toml\n')
    expect(stdout).toContain('-dashboard_renders_correctly = true\n')
    expect(stdout).toContain('+# not checked: dashboard_renders_correctly = true\n')
    expect(stderr).toContain('not checked tests/legacy.clnrm.toml:38:1 dashboard_renders_correctly = true')
    expect(snapshot(dir)).toEqual(before)
  })

  it('[otel] exporter = "stdout" reads the only scenario\'s stdout as spans; with several steps it is a TODO', async () => {
    const otel = (steps: string): string => `[meta]\nname = "o"\nversion = "1"\n\n[otel]\nexporter = "stdout"\n\n[services.app]\nimage = "busybox:1.36"\n${steps}\n[[expect.span]]\nname = "clnrm.run"\n`
    writeFileSync(join(dir, 'tests', 'one.clnrm.toml'), otel('\n[[scenario]]\nname = "only"\nservice = "app"\nrun = "echo hi"\n'))
    writeFileSync(join(dir, 'tests', 'two.clnrm.toml'), otel('\n[[steps]]\nname = "a"\ncommand = ["true"]\n\n[[steps]]\nname = "b"\ncommand = ["true"]\n'))
    const { code, stderr } = await run(['migrate', 'tests/one.clnrm.toml', 'tests/two.clnrm.toml'], dir)
    expect(code).toBe(1)
    expect(stderr).toContain('rewrote tests/one.clnrm.toml:12:1 artifacts.collect = ["spans:default"] added')
    expect(stderr).toContain('TODO tests/two.clnrm.toml:6:12 [otel] exporter = "stdout": add artifacts.collect')
    expect(parse(readFileSync(join(dir, 'tests', 'one.clnrm.toml'), 'utf8'))).toMatchObject({ scenario: [{ name: 'only', artifacts: { collect: ['spans:default'] } }] })
    const validated = await run(['validate', 'tests/one.clnrm.toml'], dir)
    expect(validated.code).toBe(0)
  })

  it('a plugin it cannot be sure of (no image) is left with a located TODO, and the exit code says so', async () => {
    writeFileSync(join(dir, 'tests', 'ai.clnrm.toml'), '[meta]\nname = "ai"\nversion = "1"\n\n[services.llm]\nplugin = "ollama"\n\n[[steps]]\nname = "s"\nservice = "llm"\ncommand = ["true"]\n')
    const { code, stderr } = await run(['migrate', 'tests/ai.clnrm.toml'], dir)
    expect(code).toBe(1)
    expect(stderr).toContain('TODO tests/ai.clnrm.toml:6:10 plugin "ollama" has no image here: choose the image that runs it')
    expect(readFileSync(join(dir, 'tests', 'ai.clnrm.toml'), 'utf8')).toContain('plugin = "ollama"')
  })
})

describe('clnrm migrate: cleanroom.toml', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir('clnrm-migrate-cleanroom-')))
  afterEach(() => cleanup())

  const CLEANROOM = '[project]\nname = "p"\n\n[containers]\ndefault_image = "busybox:1.36"\nreuse_enabled = true\n'

  it('becomes clnrm.toml with [containers] default_image kept, which then runs steps without a service', async () => {
    writeFileSync(join(dir, 'cleanroom.toml'), CLEANROOM)
    writeFileSync(join(dir, 'a.clnrm.toml'), '[meta]\nname = "a"\nversion = "1"\n\n[[steps]]\nname = "s"\ncommand = ["true"]\n')
    const { code, stdout } = await run(['migrate', 'cleanroom.toml'], dir)
    expect(code).toBe(0)
    expect(stdout).toContain('migrated cleanroom.toml → clnrm.toml')
    expect(snapshot(dir)[join(dir, 'cleanroom.toml')]).toBeUndefined()
    expect(parse(readFileSync(join(dir, 'clnrm.toml'), 'utf8'))).toMatchObject({ containers: { default_image: 'busybox:1.36' } })
    const validated = await run(['validate', 'a.clnrm.toml'], dir)
    expect(validated.code).toBe(0)
  })

  it('never overwrites an existing clnrm.toml', async () => {
    writeFileSync(join(dir, 'cleanroom.toml'), CLEANROOM)
    writeFileSync(join(dir, 'clnrm.toml'), '# mine\n')
    const { code, stderr } = await run(['migrate', 'cleanroom.toml'], dir)
    expect(code).toBe(1)
    expect(stderr).toContain('clnrm.toml already exists; not overwritten')
    expect(readFileSync(join(dir, 'clnrm.toml'), 'utf8')).toBe('# mine\n')
    expect(readFileSync(join(dir, 'cleanroom.toml'), 'utf8')).toBe(CLEANROOM)
  })
})
