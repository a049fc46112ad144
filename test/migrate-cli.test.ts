import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'smol-toml'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { spawnCli } from './cli-process.ts'
import { tempDir } from './helpers.ts'

// `clnrm migrate` as a user meets it: the built CLI spawned on a temp project holding Tera files
// of our own (same constructs as upstream's), its exit codes, its diff, the files it writes and
// refuses to write, and the migrated template rendered and validated by the same CLI.

const MACROS = `{# span(name, kind="internal"): one expected span #}
{% macro span(name, kind="internal") -%}
[[expect.span]]
name = "{{ name }}"
kind = "{{ kind }}"
{%- endmacro %}
`

const API = `{% import "_macros.toml.tera" as m %}
[meta]
name = "{{ svc }}_api"

[services.box]
image = "{{ vars.image | default(value="busybox:1.36") }}"

{% for step in vars.steps %}
[[steps]]
name = "{{ step }}"
run = "echo {{ step | upper }}"
artifacts.collect = ["spans:default"]
{% endfor %}
{% if env == "ci" %}
[otel]
exporter = "stdout"
{{ m::span("clnrm.run", kind="server") }}
{% endif %}
`

const PROJECT = `[vars]
svc = "shop"
env = "ci"
steps = ["build", "check"]
`

async function run(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = spawnCli(args, cwd)
  const exit = await cli.exited
  expect(exit.ms).toBeLessThan(10_000)
  return { code: exit.code, stdout: cli.stdout(), stderr: cli.stderr() }
}

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) out[join(entry.parentPath, entry.name)] = readFileSync(join(entry.parentPath, entry.name), 'utf8')
  }
  return out
}

describe('clnrm migrate', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('clnrm-migrate-'))
    mkdirSync(join(dir, 'tests'))
    writeFileSync(join(dir, 'clnrm.toml'), PROJECT)
    writeFileSync(join(dir, 'tests', '_macros.toml.tera'), MACROS)
    writeFileSync(join(dir, 'tests', 'api.clnrm.toml.tera'), API)
    writeFileSync(join(dir, 'tests', 'plain.clnrm.toml'), '[meta]\nname = "{{ svc }}"\n[services.box]\nimage = "busybox:1.36"\n[[steps]]\nname = "s"\nrun = "true"\n')
    writeFileSync(join(dir, 'tests', 'odd.clnrm.toml.tera'), '[meta]\nname = "{{ svc | frobnicate }}"\n')
    writeFileSync(join(dir, 'tests', 'clash.clnrm.toml.tera'), '[meta]\nname = "{{ svc }}"\n')
    writeFileSync(join(dir, 'tests', 'clash.clnrm.toml.eta'), 'mine, not to be overwritten\n')
  })
  afterEach(() => cleanup())

  it('shows its help, and exits 2 without paths or with a missing one', async () => {
    const help = await run(['migrate', '--help'], dir)
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('--dry-run')
    const none = await run(['migrate'], dir)
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/migrate needs the files or directories/)
    const missing = await run(['migrate', 'nope/'], dir)
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('nope/')
  })

  it('--dry-run prints a unified diff and writes nothing', async () => {
    const before = snapshot(dir)
    const { code, stdout, stderr } = await run(['migrate', '--dry-run', 'tests'], dir)
    expect(code).toBe(1) // a TODO is left and a file is refused
    expect(stdout).toContain('--- a/tests/api.clnrm.toml.tera\n+++ b/tests/api.clnrm.toml.eta\n')
    expect(stdout).toContain('-name = "{{ svc }}_api"\n+name = "<%= it.svc %>_api"\n')
    expect(stdout).toContain('+++ b/tests/plain.clnrm.toml.eta')
    expect(stderr).toContain('TODO tests/odd.clnrm.toml.tera:2:9 unknown filter "frobnicate"')
    expect(snapshot(dir)).toEqual(before)
  })

  it('writes the renamed files, never over another file, and the result renders and validates', async () => {
    const { code, stdout, stderr } = await run(['migrate', 'tests'], dir)
    expect(code).toBe(1)
    expect(stdout).toContain('migrated tests/api.clnrm.toml.tera → tests/api.clnrm.toml.eta')
    expect(stderr).toContain('tests/clash.clnrm.toml.eta already exists; not overwritten')
    expect(readFileSync(join(dir, 'tests', 'clash.clnrm.toml.eta'), 'utf8')).toBe('mine, not to be overwritten\n')
    expect(existsSync(join(dir, 'tests', 'clash.clnrm.toml.tera'))).toBe(true)
    expect(existsSync(join(dir, 'tests', 'api.clnrm.toml.tera'))).toBe(false)
    expect(existsSync(join(dir, 'tests', '_macros.toml.eta'))).toBe(true)
    expect(readFileSync(join(dir, 'tests', 'odd.clnrm.toml.eta'), 'utf8')).toContain('TODO(clnrm migrate) 2:9')

    const rendered = await run(['render', 'tests/api.clnrm.toml.eta'], dir)
    expect(rendered.stderr).toBe('')
    expect(rendered.code).toBe(0)
    expect(parse(rendered.stdout)).toMatchObject({
      meta: { name: 'shop_api' },
      services: { box: { image: 'busybox:1.36' } },
      steps: [{ name: 'build', run: 'echo BUILD' }, { name: 'check', run: 'echo CHECK' }],
      otel: { exporter: 'stdout' },
      expect: { span: [{ name: 'clnrm.run', kind: 'server' }] },
    })
    const validated = await run(['validate', 'tests/api.clnrm.toml.eta', 'tests/plain.clnrm.toml.eta'], dir)
    expect(validated.stdout).toContain('2 files: 2 valid, 0 invalid (0 errors, 0 warnings)')
    expect(validated.code).toBe(0)

    // Once migrated, there is nothing left to do in that file.
    const again = await run(['migrate', 'tests/api.clnrm.toml.eta'], dir)
    expect(again.code).toBe(0)
    expect(again.stdout).toMatch(/Nothing to migrate/)
  })
})
