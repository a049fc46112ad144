import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { TemplateRenderer } from '../core/index.ts'
import { createTemplateRenderer, TemplateRenderError } from '../core/index.ts'

// Templates whose tags cannot run long skip the render deadline (a vm call per render, seconds at
// thousands of tests); an include is judged by the partial it reaches, not by the word `include`.
describe('render deadline through includes', () => {
  let root: string
  let renderer: TemplateRenderer
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'clnrm-deadline-'))
    renderer = createTemplateRenderer({ root, timeoutMs: 200 })
  })
  afterEach(() => rmSync(root, { recursive: true, force: true }))
  const write = (name: string, text: string): string => {
    const path = join(root, name)
    writeFileSync(path, text)
    return path
  }
  const timeoutOf = (file: string): { code: string; file?: string; line: number } => {
    try {
      renderer.render({ file })
    }
    catch (error) {
      expect(error).toBeInstanceOf(TemplateRenderError)
      const d = (error as TemplateRenderError).diagnostics[0]!
      return { code: d.code, file: d.file, line: d.line }
    }
    throw new Error('the render did not fail')
  }

  it('a partial that loops forever is stopped by the deadline and located in the partial', () => {
    write('_spin.eta', '# spin\n\n<% while (true) {} %>\n')
    const file = write('t.clnrm.toml.eta', '[meta]\nname = "t"\n<%~ include("./_spin") %>\n')
    expect(timeoutOf(file)).toEqual({ code: 'CLNRM_TEMPLATE_TIMEOUT', file: join(root, '_spin.eta'), line: 3 })
  })

  it('a tag\'s own try/catch around the include does not let a looping partial run without the deadline', () => {
    write('_spin.eta', '<% while (true) {} %>\n')
    const file = write('t.clnrm.toml.eta', '[meta]\nname = "t"\n<% try { %><%~ include("./_spin") %><% } catch {} %>\n')
    expect(timeoutOf(file).code).toBe('CLNRM_TEMPLATE_TIMEOUT')
  })

  it('a partial reached through another partial is judged too', () => {
    write('_spin.eta', '<% while (true) {} %>\n')
    write('_mid.eta', 'x = 1\n<%~ include("./_spin") %>\n')
    const file = write('t.clnrm.toml.eta', '[meta]\nname = "t"\n<%~ include("./_mid") %>\n')
    expect(timeoutOf(file)).toMatchObject({ code: 'CLNRM_TEMPLATE_TIMEOUT', file: join(root, '_spin.eta') })
  })

  it('a render started again under the deadline gives the same seeded values and inputs as one that began there', () => {
    write('_loop.eta', '<% for (let i = 0; i < 2; i++) { %>v<%= i %> = <%~ toml(fake.word()) %>\n<% } %>')
    const plain = write('plain.clnrm.toml.eta', '[meta]\nname = <%~ toml(fake.word()) %>\n<%~ include("./_loop") %>\n[determinism]\nseed = 7\n')
    // The same text with a loop of its own: rendered under the deadline from the start.
    const risky = write('risky.clnrm.toml.eta', '[meta]\nname = <%~ toml(fake.word()) %>\n<%~ include("./_loop") %>\n[determinism]\nseed = 7\n<% for (const x of []) {} %>')
    const a = renderer.render({ file: plain })
    const b = renderer.render({ file: risky })
    expect(a.output.trimEnd()).toBe(b.output.trimEnd())
    expect(a.output).toMatch(/v0 = "\w+"\nv1 = "\w+"/)
    expect(a.inputs.partials).toEqual([join(root, '_loop.eta')])
    expect(renderer.render({ file: plain }).output).toBe(a.output)
  })

  it('renders one after another each get their own helpers: seeded values start again, a tag\'s assignment to a helper stays in its render', () => {
    const seeded = write('seeded.clnrm.toml.eta', '[meta]\nname = <%~ toml(fake.word() + uuid()) %>\n[determinism]\nseed = 3\n')
    const first = renderer.render({ file: seeded }).output
    // A template overwriting helpers, at the top and in `fake`.
    const tampering = write('tamper.clnrm.toml.eta', '<% it.__clnrm.uuid = () => "x"; it.__clnrm.fake.word = () => "y" %>[meta]\nname = <%~ toml(it.__clnrm.fake.word() + it.__clnrm.uuid()) %>\n')
    expect(renderer.render({ file: tampering }).output).toContain('name = "yx"')
    // The helpers are the render's own properties, as they always were.
    const keys = write('keys.clnrm.toml.eta', '[meta]\nname = "<%= Object.keys(fake).join(\',\') %>"\ncount = <%= Object.keys(it.__clnrm).length > 40 %>\n')
    expect(renderer.render({ file: keys }).output).toContain('name = "name,email,int,word"\ncount = true')
    expect(renderer.render({ file: seeded }).output).toBe(first)
    expect(first).toMatch(/name = "\w+[0-9a-f]{8}-/)
    // A different seed gives other values, the same seed the same ones again.
    const other = write('other.clnrm.toml.eta', '[meta]\nname = <%~ toml(fake.word() + uuid()) %>\n[determinism]\nseed = 4\n')
    expect(renderer.render({ file: other }).output).not.toBe(first)
    expect(renderer.render({ file: seeded }).output).toBe(first)
  })

  it('a changed partial renders its new text in the test that includes it, short or long; the same text compiles once', () => {
    for (const pad of ['', `# ${'x'.repeat(5000)}\n`]) {
      const partial = write('_svc.eta', `${pad}[services.app]\nimage = "a:1"\n`)
      const file = write('t.clnrm.toml.eta', '[meta]\nname = "t"\n<%~ include("./_svc.eta") %>\n')
      expect(renderer.render({ file }).output).toContain('image = "a:1"')
      const misses = renderer.cache.stats().misses
      expect(renderer.render({ file }).output).toContain('image = "a:1"')
      expect(renderer.cache.stats().misses).toBe(misses)
      // The same length, one character changed.
      writeFileSync(partial, `${pad}[services.app]\nimage = "b:1"\n`)
      expect(renderer.render({ file }).output).toContain('image = "b:1"')
      expect(renderer.cache.stats().misses).toBe(misses + 1)
    }
  })
})
