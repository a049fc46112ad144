import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'smol-toml'
import { afterAll, describe, expect, it } from 'vitest'
import { renameTeraFile, translateTera } from '../core/migrate/tera.ts'
import { createTemplateRenderer } from '../core/format/template.ts'
import { createTemplateHelpers } from '../core/format/template-helpers.ts'

const dir = mkdtempSync(join(tmpdir(), 'clnrm-migrate-unit-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Translates Tera, then renders the Eta with clnrm's own renderer: the rule is proven by the output. */
function migrateAndRender(tera: string, vars: Record<string, unknown> = {}, env: Record<string, string> = {}, files: Record<string, string> = {}): string {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, renameTeraFile(name)), translateTera(text).output)
  const { output, todos } = translateTera(tera)
  expect(todos).toEqual([])
  const renderer = createTemplateRenderer({ root: dir })
  return renderer.render({ file: join(dir, 't.clnrm.toml.eta'), source: output, vars, env, determinism: { seed: 7, freezeClock: '2025-01-01T00:00:00.000Z' } }).output
}

describe('Tera → Eta translation', () => {
  it('translates {{ x }}, vars.x, default(value=…) and env(name=…)', () => {
    const tera = 'a = "{{ svc }}"\nb = "{{ vars.port | default(value=8080) }}"\nc = "{{ env(name="HOME") }}"\nd = "{{ env(name=\'NOPE\') | default(value=\'u\') }}"\ne = "{{ missing | default(value="dflt") }}"\nf = "{{ env(name=\'NOPE\', default=\'dev\') }}"\n'
    expect(translateTera(tera).output).toContain('<%= it.svc %>')
    expect(parse(migrateAndRender(tera, { svc: 'api', port: 1 }, { HOME: '/h' }))).toEqual({ a: 'api', b: '1', c: '/h', d: 'u', e: 'dflt', f: 'dev' })
  })

  it('translates if / elif / else with and, or, not, ==, !=', () => {
    const tera = '{% if env == "prod" and not debug %}x = 1{% elif env != "dev" or debug %}x = 2{% else %}x = 3{% endif %}\n'
    expect(parse(migrateAndRender(tera, { env: 'prod', debug: false }))).toEqual({ x: 1 })
    expect(parse(migrateAndRender(tera, { env: 'ci', debug: false }))).toEqual({ x: 2 })
    expect(parse(migrateAndRender(tera, { env: 'dev', debug: false }))).toEqual({ x: 3 })
  })

  it('translates for … in lists, range(), k, v pairs and loop.last', () => {
    const tera = 'l = [{% for s in vars.services %}"{{ s }}"{% if not loop.last %}, {% endif %}{% endfor %}]\n'
      + 'r = [{% for i in range(end=3) %}{{ i }},{% endfor %}]\n'
      + 'p = { {% for k, v in attrs %}{{ k }} = "{{ v }}"{% if not loop.last %}, {% endif %}{% endfor %} }\n'
    expect(parse(migrateAndRender(tera, { services: ['a', 'b'], attrs: { x: '1', y: '2' } }))).toEqual({ l: ['a', 'b'], r: [0, 1, 2], p: { x: '1', y: '2' } })
  })

  it('translates set, {# comments #} and whitespace control', () => {
    const tera = '{# a comment #}\n{% set who = name | upper %}\n{%- if true -%}\n\n  k = "{{ who }}"\n{%- endif %}\n'
    const out = migrateAndRender(tera, { name: 'ada' })
    expect(out).not.toContain('comment')
    expect(out).toBe('\nk = "ADA"\n')
  })

  it('turns an import with m::name(…) calls into a partial of functions, named arguments included', () => {
    const macros = '{# the library #}\n{% macro span(name, kind="internal", attrs={}) -%}\n[[expect.span]]\nname = "{{ name }}"\nkind = "{{ kind }}"\n{% if attrs | length > 0 %}attrs.all = { {% for k, v in attrs %}"{{ k }}" = "{{ v }}"{% endfor %} }\n{% endif -%}\n{%- endmacro %}\n'
      + '{% macro two(a) -%}\n{{ self::span(a) }}{{ self::span(a ~ ".child", kind="server") }}\n{%- endmacro %}\n'
    const tera = '{% import "_macros.toml.tera" as m %}\n{{ m::span("root", attrs={"k": "v"}) }}\n{{ m::two("x") }}\n'
    expect(translateTera(tera).output).toContain('include("./_macros.toml.eta"')
    const rendered = parse(migrateAndRender(tera, {}, {}, { '_macros.toml.tera': macros })) as { expect: { span: unknown[] } }
    expect(rendered.expect.span).toEqual([
      { name: 'root', kind: 'internal', attrs: { all: { k: 'v' } } },
      { name: 'x', kind: 'internal' },
      { name: 'x.child', kind: 'server' },
    ])
  })

  it('calls the migrated helpers with named arguments as an options object', () => {
    const tera = 'u = "{{ uuid_v4(seed=42) }}"\nt = "{{ now_rfc3339() }}"\nn = "{{ fake_name(seed=1) }}"\ni = {{ fake_int_range(min=3, max=3) }}\ns = "{{ "Hello World" | slugify }}"\n'
    expect(translateTera(tera).output).toContain('fake_int_range({ min: 3, max: 3 })')
    const out = parse(migrateAndRender(tera)) as Record<string, unknown>
    expect(out.u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4/)
    expect(out).toMatchObject({ t: '2025-01-01T00:00:00.000Z', i: 3, s: 'hello-world' })
  })

  it('leaves what it cannot translate behind a TODO with line and column, and keeps blocks balanced', () => {
    const tera = 'a = 1\nb = "{{ x | frobnicate }}"\n{% if x is odd %}\nc = 2\n{% endif %}\n{% raw %}\n'
    const { output, todos } = translateTera(tera)
    expect(todos.map(t => [t.line, t.column])).toEqual([[2, 6], [3, 1], [5, 1], [6, 1]])
    expect(todos[0]!.message).toMatch(/frobnicate/)
    expect(output).toContain('TODO(clnrm migrate) 2:6')
    // The output still compiles: a TODO is a comment, never half a block.
    expect(() => createTemplateRenderer({ root: dir }).render({ file: join(dir, 'x.eta'), source: output })).not.toThrow()
  })

  it('renames files', () => {
    expect(renameTeraFile('a.clnrm.toml.tera')).toBe('a.clnrm.toml.eta')
    expect(renameTeraFile('_macros.toml.tera')).toBe('_macros.toml.eta')
  })
})

describe('Tera helpers', () => {
  const make = (seed?: number) => createTemplateHelpers({ seed, freezeClock: '2025-01-01T00:00:00.000Z', env: {}, onEnvRead: () => {} })
  it('are seeded and clock-frozen under [determinism]', () => {
    const sample = (h: ReturnType<typeof make>) => [h.uuid_v4(), h.uuid_v7(), h.ulid(), h.traceparent(), h.pick(['a', 'b', 'c']), h.fake_email(), h.fake_ipv4()]
    expect(sample(make(1))).toEqual(sample(make(1)))
    expect(sample(make(1))).not.toEqual(sample(make(2)))
    const h = make(1)
    expect(h.now_rfc3339()).toBe('2025-01-01T00:00:00.000Z')
    expect(h.now_plus(90)).toBe('2025-01-01T00:01:30.000Z')
    expect(h.now_unix()).toBe(1735689600)
    expect(h.uuid_v7().slice(0, 13)).toBe('01941f29-7c00')
    expect(h.ulid().slice(0, 10)).toBe('01JGFJJZ00')
    expect(h.traceparent()).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
    // A seed argument gives a value of its own, whatever the render's seed.
    expect(make(1).uuid_v4(42)).toBe(make(2).uuid_v4(42))
    expect(make(1).fake_name({ seed: 5 })).toBe(make(9).fake_name({ seed: 5 }))
  })
  it('filters', () => {
    const { filter } = make()
    expect(filter.slug('Hello, World!')).toBe('hello-world')
    expect(filter.kebab('myServiceName')).toBe('my-service-name')
    expect(filter.snake('My Service')).toBe('my_service')
    expect(filter.upper('a')).toBe('A')
    expect(filter.lower('A')).toBe('a')
    expect(filter.length({ a: 1, b: 2 })).toBe(2)
    expect(filter.length([1])).toBe(1)
    expect(filter.join(['a', 'b'], ',')).toBe('a,b')
    expect(filter.truncate('abcdef', 3)).toBe('abc…')
    expect(filter.default(undefined, 'x')).toBe('x')
    expect(filter.default('', 'x')).toBe('')
    expect(make().toml_encode({ a: 1 })).toContain('a = 1')
  })
})

describe('migration plan', () => {
  it('points an import at the nearest macro library that defines the macros called', async () => {
    const { planMigration } = await import('../core/migrate/plan.ts')
    const steps = planMigration([
      { path: '/p/tests/a/t.clnrm.toml.tera', text: '{% import "_macros.toml.tera" as m %}\n{{ m::service("x") }}\n{{ slug(s="A B") }} {{ toml_encode(s="q") }}\n' },
      { path: '/p/tests/_macros.toml.tera', text: '{% macro span(n) %}{% endmacro %}' },
      { path: '/p/lib/deep/_macros.toml.tera', text: '{% macro span(n) %}{% endmacro %}{% macro service(n) %}{% endmacro %}' },
      { path: '/p/plain.clnrm.toml', text: '[meta]\nname = "no tera"\n' },
      { path: '/p/cleanroom.toml', text: '[project]\nname = "x"\n' },
    ])
    expect(steps.map(s => s.to)).toEqual(['/p/tests/a/t.clnrm.toml.eta', '/p/tests/_macros.toml.eta', '/p/lib/deep/_macros.toml.eta', '/p/clnrm.toml'])
    expect(steps[0]!.output).toContain('include("../../lib/deep/_macros.toml.eta"')
    expect(steps[0]!.output).toContain('filter.slug("A B")')
    expect(steps[0]!.output).toContain('toml_encode("q")')
    expect(steps[0]!.todos).toEqual([])
  })
  it('leaves a located TODO for an import of a file it does not migrate', async () => {
    const { planMigration } = await import('../core/migrate/plan.ts')
    const [step] = planMigration([{ path: '/p/t.clnrm.toml.tera', text: 'a = 1\n{% import "_lib.toml.tera" as m %}\n' }])
    expect(step!.todos).toMatchObject([{ line: 2, column: 12, message: expect.stringMatching(/not among the migrated files/) }])
    const [other] = planMigration([
      { path: '/p/t.clnrm.toml.tera', text: '{% import "_lib.toml.tera" as m %}\n{{ m::gone() }}\n' },
      { path: '/p/_lib.toml.tera', text: '{% macro here() %}{% endmacro %}' },
    ])
    expect(other!.todos).toMatchObject([{ line: 1, column: 12, message: 'no migrated "_lib.toml.tera" defines gone: those calls fail when rendered' }])
  })
})

describe('a Tera file\'s own [vars]', () => {
  it('become defaults of the template (clnrm.toml [vars] win), and the table a comment on the same lines', async () => {
    const { planMigration } = await import('../core/migrate/plan.ts')
    const tera = '[meta]\nname = "{{ vars.svc }}-{{ port }}-{{ vars.db.host }}"\n\n[vars]\n# data\nsvc = "api"\nport = 8080\n[vars.db]\nhost = "h"\n\n[services.box]\nimage = "{{ image }}"\n'
    const [step] = planMigration([{ path: join(dir, 'v.clnrm.toml.tera'), text: tera }])
    expect(step!.output.split('\n')).toHaveLength(tera.split('\n').length)
    const renderer = createTemplateRenderer({ root: dir })
    const render = (vars: Record<string, unknown>) => parse(renderer.render({ file: join(dir, 'v.clnrm.toml.eta'), source: step!.output, vars }).output)
    expect(render({ image: 'busybox' })).toEqual({ meta: { name: 'api-8080-h' }, services: { box: { image: 'busybox' } } })
    expect(render({ svc: 'web', image: 'b' })).toMatchObject({ meta: { name: 'web-8080-h' } })
  })
})

describe('unifiedDiff', () => {
  it('prints hunks with line ranges, deletions before additions, and nothing for equal texts', async () => {
    const { unifiedDiff } = await import('../core/migrate/diff.ts')
    const before = 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n'
    const after = 'a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\n'
    expect(unifiedDiff(before, after, 'a/x', 'b/x', 1)).toBe('--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n@@ -10,1 +10,2 @@\n j\n+k\n')
    expect(unifiedDiff(before, before, 'a/x', 'b/x')).toBe('')
  })
})
