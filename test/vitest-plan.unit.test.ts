import { writeFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { FilePlan } from '../plugin-vitest/generate.ts'
import { encodeMappings, generateModule, literal } from '../plugin-vitest/generate.ts'
import { planFile, startAllowanceMs } from '../plugin-vitest/plan.ts'
import { createTestLoader } from '../core/index.ts'
import { tempDir } from './helpers.ts'

// The generated module's map, read back by Node's own source map reader (0-based lines and columns there).
describe('generateModule', () => {
  const plan: FilePlan = {
    file: '/p/tests/a.clnrm.toml',
    suites: [
      { name: 'a', at: { line: 1, column: 1 }, tests: [
        { name: 'late', kind: 'step', timeoutMs: 1, at: { line: 30, column: 1 } },
        // Written above the one before (a partial's step, a reordered template): deltas go back.
        { name: 'early', kind: 'step', timeoutMs: 1, at: { line: 12, column: 3 } },
        { name: 'spans', kind: 'spans', timeoutMs: 1, at: { line: 40, column: 1 } },
      ] },
      { name: 'a [x=2]', at: { line: 1, column: 1 }, variant: 1, tests: [{ name: 'late', kind: 'step', timeoutMs: 1, at: { line: 30, column: 1 } }] },
    ],
  }
  const generated = generateModule(plan, '/runtime.ts', 'source')
  const lines = generated.code.split('\n')
  const map = new SourceMap({ ...generated.map, sourceRoot: '' })
  const original = (needle: string): { line: number; column: number } => {
    const line = lines.findIndex(l => l.includes(needle))
    const entry = map.findEntry(line, lines[line]!.indexOf(needle)) as { originalLine: number; originalColumn: number }
    return { line: entry.originalLine + 1, column: entry.originalColumn + 1 }
  }

  it('maps every describe and test call to its TOML line and column', () => {
    expect(original('describe("a", 0,')).toEqual({ line: 1, column: 1 })
    expect(original('test("late", 0, 0)')).toEqual({ line: 30, column: 1 })
    expect(original('test("early", 0, 1)')).toEqual({ line: 12, column: 3 })
    expect(original('test("spans", 0, 2)')).toEqual({ line: 40, column: 1 })
    expect(original('describe("a [x=2]", 1,')).toEqual({ line: 1, column: 1 })
    expect(original('test("late", 1, 0)')).toEqual({ line: 30, column: 1 })
  })

  it('imports the runtime and embeds the plan as data', () => {
    expect(lines[0]).toBe('import { defineClnrmFile } from "/runtime.ts";')
    expect(generated.map.sources).toEqual([plan.file])
    expect(generated.map.sourcesContent).toEqual(['source'])
    expect(JSON.parse(lines[1]!.replace(/^const \{ describe, test, invalidTest \} = defineClnrmFile\((.*)\);$/, '$1'))).toEqual(plan)
  })

  it('writes names as literals that read as the name (Vitest\'s static collector lists them as written), escaping only where it must', () => {
    expect(literal('say hello')).toBe('"say hello"')
    expect(literal('say "bye"')).toBe('\'say "bye"\'')
    expect(literal('it\'s "both"')).toBe('"it\'s \\"both\\""')
    expect(literal('a\\b')).toBe('"a\\\\b"')
    expect(literal('line\nbreak')).toBe('"line\\nbreak"')
    // Each is a JavaScript literal of the name itself.
    for (const name of ['say hello', 'say "bye"', 'it\'s "both"', 'a\\b', 'line\nbreak', 'tab\there', '\u2028']) {
      expect(new Function(`return ${literal(name)}`)()).toBe(name)
    }
  })

  it('encodes large and negative deltas as base64 VLQ', () => {
    // Line 1000 (a delta of several VLQ digits), an unmapped line, then back to line 1.
    const mappings = encodeMappings([{ line: 1000, column: 7 }, undefined, { line: 1, column: 1 }])
    const decoded = new SourceMap({ version: 3, file: 'x', sources: ['x'], sourcesContent: [''], sourceRoot: '', names: [], mappings })
    expect(decoded.findEntry(0, 0)).toMatchObject({ originalLine: 999, originalColumn: 6 })
    expect(decoded.findEntry(2, 0)).toMatchObject({ originalLine: 0, originalColumn: 0 })
  })
})

describe('planFile', () => {
  const loader = createTestLoader({ project: { root: '/p', vars: {}, determinism: {} } })
  const toml = `[meta]
name = "t"

[services.box]
image = "busybox:1.36"

[[steps]]
name = "slow"
run = "sleep 5"
timeout = "10s"

[[steps]]
name = "quick"
run = "true"
timeout = "1s"

[assertions]
all_steps_should_succeed = true
`

  it('gives each test a Vitest timeout covering the start and every step up to it, from the TOML', async () => {
    const loaded = loader.loadSource('/p/tests/t.clnrm.toml', toml)
    const plan = await planFile(loaded, '/p')
    const start = startAllowanceMs(loaded.spec!)
    // Filtered to "quick" alone, its test still waits for "slow" first: its timer must allow for it.
    expect(plan.suites[0]!.tests.map(t => [t.name, t.kind, t.timeoutMs - start, t.at.line])).toEqual([
      ['slow', 'step', 2_000 + 10_000, 7],
      ['quick', 'step', 2_000 + 11_000, 12],
      ['assertions', 'assertions', 2_000 + 11_000, 17],
    ])
    expect(plan.suites[0]).toMatchObject({ name: 't', at: { line: 1, column: 1 } })
    expect(plan.invalid).toBeUndefined()
  })

  it('turns an invalid file into one located problem message', async () => {
    const plan = await planFile(loader.loadSource('/p/tests/t.clnrm.toml', toml.replace('timeout = "1s"', 'timeout = "soon"')), '/p')
    expect(plan.invalid).toMatchObject({ at: { line: 15, column: 11 }, message: expect.stringMatching(/^tests\/t\.clnrm\.toml:15:11 CLNRM_INVALID_DURATION/) })
    expect(plan.suites).toEqual([{ name: 't.clnrm.toml', at: { line: 15, column: 11 }, tests: [] }])
  })

  it('places each [matrix] combination\'s steps at their lines in the template, from the text that combination rendered to', async () => {
    // Alpha renders one step more: beta's first step is the template's second [[steps]].
    const template = `[meta]
name = "m"

[matrix]
word = ["alpha", "beta"]

[services.box]
image = "busybox:1.36"
<% if (it.matrix.word === 'alpha') { %>
[[steps]]
name = "alpha only"
run = "true"
<% } %>

[[steps]]
name = "echoes"
run = "echo <%= it.matrix.word %>"
`
    const { dir, cleanup } = await tempDir('clnrm-plan-')
    try {
      // The template is read again from the file to trace lines back.
      const file = join(dir, 'm.clnrm.toml.eta')
      writeFileSync(file, template)
      const loaded = createTestLoader({ project: { root: dir, vars: {}, determinism: {} } }).loadSource(file, template)
      const plan = await planFile(loaded, dir)
      const stepLines = template.split('\n').flatMap((line, i) => (line === '[[steps]]' ? [i + 1] : []))
      expect(plan.suites.map(s => [s.name, s.tests.map(t => [t.name, t.at.line])])).toEqual([
        ['m [word=alpha]', [['alpha only', stepLines[0]], ['echoes', stepLines[1]]]],
        ['m [word=beta]', [['echoes', stepLines[1]]]],
      ])
    }
    finally {
      await cleanup()
    }
  })
})
