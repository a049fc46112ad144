import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { XMLParser } from 'fast-xml-parser'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createFailureLocator, failureKeyPaths } from '../core/failure-location.ts'
import { createTestLoader } from '../core/index.ts'
import { runTest } from '../core/run.ts'
import { startRunServer } from '../plugin-vitest/server.ts'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'
import { openPool } from './pool-fixture.ts'
import { spawnCli } from './cli-process.ts'

/** The 1-based line and column of the first occurrence of `needle` in `text`. */
function at(text: string, needle: string, from = 0): { line: number; column: number } {
  const index = text.indexOf(needle, from)
  if (index === -1) throw new Error(`${needle} not in the text`)
  const before = text.slice(0, index).split('\n')
  return { line: before.length, column: before.at(-1)!.length + 1 }
}

// Each failing step fails on a different kind of key; a passing step before them shifts the lines.
const plain = `[meta]
name = "where"

[services.box]
image = "${IMAGE}"

[[steps]]
name = "passes"
run = "echo fine"

[[steps]]
name = "regex"
run = "echo hello"
  expected_output_regex = "^goodbye"
continue_on_failure = true

[[steps]]
name = "second pattern"
run = "echo hello"
expected_output_regex = [
  "hello",
  "nope",
]
continue_on_failure = true

[[steps]]
name = "explicit exit"
run = "exit 3"
expected_exit_code = 4
continue_on_failure = true

[[steps]]
name = "implicit exit"
run = "exit 5"
continue_on_failure = true

[[scenario]]
name = "inherits"
timeout = "300ms"
[[scenario.steps]]
name = "nested"
run = "sleep 5"
`

describe('a failure points at the key that failed (built CLI, real engine)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('in the human reporter, JSON and JUnit: file:line:col of the expectation, the command for an implicit exit code, the inherited key of a scenario', async () => {
    await writeFile(join(dir, 'where.clnrm.toml'), plain)
    const expected = {
      'regex': at(plain, 'expected_output_regex = "^goodbye"'),
      'second pattern': at(plain, '"nope"'),
      'explicit exit': at(plain, 'expected_exit_code = 4'),
      'implicit exit': at(plain, 'run = "exit 5"'),
      'inherits › nested': at(plain, 'timeout = "300ms"'),
    }
    const human = spawnCli(['run', '.'], dir)
    const exit = await human.exited
    expect(exit.code).toBe(1)
    const out = human.stdout()
    for (const [, { line, column }] of Object.entries(expected)) expect(out).toContain(`at where.clnrm.toml:${line}:${column}`)
    expect(out).toContain(`expected_output_regex = "^goodbye" at where.clnrm.toml:${expected.regex.line}:3`)
    // The word is the key's own: never "expected expected_…".
    expect(out).not.toMatch(/expected expected/)
    expect(clnrmContainers(human.pid)).toEqual([])

    const json = spawnCli(['run', '.', '--reporter', 'json'], dir)
    await json.exited
    const report = JSON.parse(json.stdout()) as { tests: Array<{ steps: Array<{ name: string; failure?: { key?: string; location?: { line: number; column: number } } }> }> }
    const failures = Object.fromEntries(report.tests[0]!.steps.filter(s => s.failure).map(s => [s.name, s.failure!]))
    for (const [name, location] of Object.entries(expected)) expect(failures[name]?.location, name).toEqual(location)
    expect(failures['implicit exit']?.key).toBe('expected_exit_code')
    expect(clnrmContainers(json.pid)).toEqual([])

    const junit = spawnCli(['run', '.', '--reporter', 'junit', '--output', 'junit.xml'], dir)
    await junit.exited
    const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(await readFile(join(dir, 'junit.xml'), 'utf8'))
    const cases = [xml.testsuites.testsuite.testcase].flat() as Array<{ name: string; file: string; line?: string }>
    for (const [name, { line }] of Object.entries(expected)) expect(cases.find(c => c.name === name), name).toMatchObject({ file: 'where.clnrm.toml', line: String(line) })
    expect(cases.find(c => c.name === 'passes')?.line).toBeUndefined()
    expect(clnrmContainers(junit.pid)).toEqual([])
  })

  it('maps a template\'s failing key back to the template line', async () => {
    const template = `[meta]\nname = "templated"\n<% const greeting = "hello" %>\n[services.box]\nimage = "${IMAGE}"\n\n<% for (const word of ["a", "b"]) { %>\n[[steps]]\nname = "step <%= word %>"\nrun = "echo <%= greeting %>"\n<% } %>\n[[steps]]\nname = "checks"\nrun = "echo <%= greeting %>"\nexpected_output_regex = "^<%= greeting %> there"\n`
    await writeFile(join(dir, 'templated.clnrm.toml.eta'), template)
    const cli = spawnCli(['run', '.', '--reporter', 'json'], dir)
    expect((await cli.exited).code).toBe(1)
    const report = JSON.parse(cli.stdout())
    const failing = report.tests[0].steps.find((s: { failure?: unknown }) => s.failure)
    expect(failing.name).toBe('checks')
    expect(failing.failure.location).toEqual(at(template, 'expected_output_regex'))
    expect(clnrmContainers(cli.pid)).toEqual([])
  })

  it('locates each [matrix] combination\'s failure in its own rendered text, not the first combination\'s', async () => {
    await writeFile(join(dir, 'matrix.clnrm.toml.eta'), perCombination)
    const cli = spawnCli(['run', '.', '--reporter', 'json'], dir)
    expect((await cli.exited).code).toBe(1)
    const report = JSON.parse(cli.stdout()) as { tests: Array<{ name: string; steps: Array<{ name: string; failure?: { location?: { line: number; column: number } } }> }> }
    const failures = Object.fromEntries(report.tests.map(t => [t.name, t.steps.filter(s => s.failure).map(s => [s.name, s.failure!.location])]))
    expect(failures).toEqual({
      'per combination [word=alpha]': [['alpha only', at(perCombination, 'expected_output_regex = "^nope"')]],
      // In alpha's text the first step's pattern is alpha's own, four lines up.
      'per combination [word=beta]': [['echoes', at(perCombination, 'expected_output_regex = "^gamma"')]],
    })
    expect(clnrmContainers(cli.pid)).toEqual([])
  })
})

// Alpha renders one step more than beta: the same key path ([[steps]] 0's pattern) is on another
// line in each combination's text.
const perCombination = `[meta]
name = "per combination"

[matrix]
word = ["alpha", "beta"]

[services.box]
image = "${IMAGE}"
<% if (it.matrix.word === 'alpha') { %>
[[steps]]
name = "alpha only"
run = "echo alpha"
expected_output_regex = "^nope"
<% } %>

[[steps]]
name = "echoes"
run = "echo <%= it.matrix.word %>"
expected_output_regex = "^gamma"
`

describe('a [matrix] file run as one result (the dev loop, the Vite and Vitest plugins), real engine', () => {
  it('locates each combination\'s failure in its own rendered text', async () => {
    const { pool, dir, close } = await openPool()
    try {
      const file = join(dir, 'matrix.clnrm.toml.eta')
      await writeFile(file, perCombination)
      const loaded = await createTestLoader({ project: { root: dir, vars: {}, determinism: {} } }).load(file)
      expect(loaded.spec?.variants).toHaveLength(2)
      const result = await runTest(loaded.spec!, { pool, source: { toml: loaded.toml!, template: perCombination } })
      expect(result.steps.filter(s => s.failure).map(s => [s.name, s.failure!.location])).toEqual([
        ['[word=alpha] alpha only', at(perCombination, 'expected_output_regex = "^nope"')],
        ['[word=beta] echoes', at(perCombination, 'expected_output_regex = "^gamma"')],
      ])
    }
    finally {
      await close()
    }
  })

  it('locates a combination\'s failure in its own rendered text when the Vitest plugin\'s run server runs it alone', async () => {
    const { dir, cleanup } = await tempDir()
    const server = await startRunServer({ root: dir })
    try {
      await writeFile(join(dir, 'clnrm.toml'), '[vars]\n')
      const file = join(dir, 'matrix.clnrm.toml.eta')
      await writeFile(file, perCombination)
      // As a Vitest worker asks for beta, the second combination (its steps as Vitest collected them).
      const answer = await fetch(`${server.info.url}/run`, { method: 'POST', headers: { authorization: `Bearer ${server.info.token}` }, body: JSON.stringify({ file, variant: 1, steps: ['echoes'] }) })
      const messages = (await answer.text()).trim().split('\n').map(line => JSON.parse(line) as { type: string; result?: { steps: Array<{ name: string; failure?: { location?: unknown } }> } })
      const done = messages.find(m => m.type === 'done')
      expect(done, JSON.stringify(messages)).toBeDefined()
      expect(done!.result!.steps.map(s => [s.name, s.failure?.location])).toEqual([['echoes', at(perCombination, 'expected_output_regex = "^gamma"')]])
    }
    finally {
      await server.close()
      await cleanup()
    }
  })
})

describe('failure locations (pure)', () => {
  it('falls back from the key to the command, then to the step', async () => {
    const toml = '[[steps]]\nname = "a"\ncommand = ["false"]\n'
    const locate = createFailureLocator('/x/a.clnrm.toml', { toml })
    expect(await locate(failureKeyPaths({ source: ['steps', 0] }, { key: 'expected_exit_code' }))).toEqual({ line: 3, column: 1 })
    expect(await locate(failureKeyPaths({ source: ['steps', 0] }, { key: 'timeout' }))).toEqual({ line: 3, column: 1 })
    expect(await locate([['steps', 1, 'run'], ['steps', 0]])).toEqual({ line: 1, column: 3 })
  })
})
