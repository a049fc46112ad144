import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { TestCase, TestModule, Vitest } from 'vitest/node'
import { createVitest, startVitest } from 'vitest/node'
import { spawnCli, waitUntil } from './cli-process.ts'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir, writeFiles } from './helpers.ts'
import { startRunServer } from '../plugin-vitest/server.ts'

const root = resolve(import.meta.dirname, '..')
const vitestCli = join(root, 'node_modules/vitest/vitest.mjs')

// A user's project: `clnrm/vitest` resolves to this checkout's build (the package exports), Vitest
// to the one installed here. Vitest's own testTimeout is 1 s, so steps longer than that pass only
// when their timeout comes from the TOML.
const files: Record<string, string> = {
  'package.json': '{ "name": "vitest-user", "private": true, "type": "module" }\n',
  'vitest.config.ts': `import { defineConfig } from 'vitest/config'
import { clnrm } from 'clnrm/vitest'

export default defineConfig({ plugins: [clnrm()], test: { testTimeout: 1000 } })
`,
  'tests/plain.test.ts': `import { expect, test } from 'vitest'
test('plain', () => expect(1 + 1).toBe(2))
`,
  'tests/pass.clnrm.toml': `[meta]
name = "passing"

[services.box]
image = "${IMAGE}"

[[steps]]
name = "say hello"
run = "echo hello"
expected_output_regex = "^hello"

[[steps]]
name = "longer than Vitest's testTimeout"
run = "sleep 1.5; echo done"
timeout = "10s"

[assertions]
all_steps_should_succeed = true

[watch]
files = ["nothing/*.txt"]
`,
  'tests/fail.clnrm.toml': `[meta]
name = "failing"

[services.box]
image = "${IMAGE}"

[[steps]]
name = "first"
run = "echo one"

[[steps]]
name = "wrong output"
run = "echo two"
expected_output_regex = "^three"

[[steps]]
name = "after failure"
run = "echo never"

[assertions]
all_steps_should_succeed = true
`,
  'tests/slow.clnrm.toml': `[meta]
name = "slow"

[services.box]
image = "${IMAGE}"

[[steps]]
name = "sleeps past its timeout"
run = "sleep 30"
timeout = "1500ms"
`,
  'tests/_greeting.eta': 'expected_output_regex = "^<%= it.word %>"\n',
  'tests/greet.clnrm.toml.eta': `[meta]
name = "templated"

[services.box]
image = "${IMAGE}"

[[steps]]
name = "greets"
run = "echo hi there"
<%~ include('./_greeting.eta', { word: 'hi' }) %>
`,
  'tests/watched.clnrm.toml': `[meta]
name = "watched"

[services.box]
image = "${IMAGE}"

[watch]
files = ["data/*.txt"]
modules = ["../src/main.js"]

[[steps]]
name = "runs"
run = "echo ok"
`,
  'tests/data/input.txt': 'one\n',
  'src/main.js': 'import { word } from \'./word.js\'\nexport const greeting = `hi ${word}`\n',
  'src/word.js': 'export const word = \'there\'\n',
  'clnrm.toml': '[vars]\n',
  'tests/matrix.clnrm.toml.eta': `[meta]
name = "matrix"

[matrix]
word = ["one", "two"]

[services.box]
image = "${IMAGE}"

[[steps]]
name = "echoes"
run = "echo <%= it.matrix.word %>"
expected_output_regex = "^one"
`,
  'tests/spans.clnrm.toml': `[meta]
name = "traced"

[services.box]
image = "${IMAGE}"

[[steps]]
name = "prints a span"
run = '''echo '{"name":"checkout","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","kind":"internal","start_time_unix_nano":"1700000000000000000","end_time_unix_nano":"1700000000050000000"}' '''
artifacts.collect = ["spans:default"]

[[expect.span]]
name = "checkout"

[[expect.span]]
name = "payment"
`,
  'tests/invalid.clnrm.toml': `[meta]
name = "invalid"

[services.box]
image = "${IMAGE}"

[[steps]]
name = "typo"
run = "echo"
expected_exit_cod = 0
`,
}

async function userProject(only?: string[]): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const made = await tempDir('clnrm-vitest-')
  writeFiles(made.dir, Object.fromEntries(Object.entries(files).filter(([path]) => {
    if (only && path.startsWith('tests/') && !only.some(o => path.startsWith(o))) return false
    if (only && (path === 'clnrm.toml' || path.startsWith('src/')) && !only.some(o => path.startsWith(o))) return false
    return true
  })))
  linkModules(made.dir)
  return made
}

/** `vitest` from this checkout's node_modules, `clnrm` as this checkout (its package exports: the build). */
function linkModules(dir: string): void {
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(join(root, 'node_modules/vitest'), join(dir, 'node_modules/vitest'))
  symlinkSync(root, join(dir, 'node_modules/clnrm'))
}

interface Reported {
  name: string
  state: string
  line?: number
  timeout?: number
  error?: { name?: string; message: string; frame?: number }
}

const byFile = (modules: readonly TestModule[]): Record<string, Reported[]> => Object.fromEntries(modules.map(m => [
  m.relativeModuleId,
  [...m.children.allTests()].map((t: TestCase) => {
    const result = t.result()
    const error = result.errors?.[0]
    return {
      name: t.fullName,
      state: result.state,
      line: t.location?.line,
      timeout: t.options.timeout,
      // The first stack frame: where Vitest's code frame points.
      ...(error && { error: { name: error.name, message: error.message, frame: error.stacks?.[0]?.line } }),
    }
  }),
]))

// Silences Vitest's default reporter; the tasks are read from the instance.
const quiet = { onInit() {} }

describe('clnrm/vitest through Vitest\'s node API', () => {
  let vitest: Vitest | undefined
  let cleanup: (() => Promise<void>) | undefined
  afterEach(async () => {
    await vitest?.close()
    await cleanup?.()
    vitest = cleanup = undefined
    // Vitest sets it when the run it was given fails; that run is the fixture's, not this file's.
    process.exitCode = undefined
  })

  it('makes each clnrm test a describe and each step a test at its TOML line, with TOML timeouts, in containers of the main process removed on close', async () => {
    const project = await userProject()
    cleanup = project.cleanup
    // createVitest + start, not startVitest: that one closes Vitest (and the pool) when the run ends.
    vitest = await createVitest('test', { root: project.dir, watch: false, reporters: [quiet] })
    await vitest.start()
    const reported = byFile(vitest.state.getTestModules())

    expect(reported['tests/pass.clnrm.toml']).toEqual([
      { name: 'passing > say hello', state: 'passed', line: 7, timeout: expect.any(Number) },
      { name: 'passing > longer than Vitest\'s testTimeout', state: 'passed', line: 12, timeout: expect.any(Number) },
      { name: 'passing > assertions', state: 'passed', line: 17, timeout: expect.any(Number) },
    ])
    // A warning clnrm run would print is an annotation of the file's first test.
    const [hello] = vitest.state.getTestModules().find(m => m.relativeModuleId === 'tests/pass.clnrm.toml')!.children.allTests()
    expect(hello!.annotations().map(a => [a.type, a.message])).toEqual([['warning', expect.stringMatching(/^tests\/pass\.clnrm\.toml:21:\d+ CLNRM_WATCH_NO_MATCH /)]])
    // The TOML's 10 s, not the config's 1 s.
    expect(reported['tests/pass.clnrm.toml']![1]!.timeout).toBeGreaterThanOrEqual(10_000)

    const failing = reported['tests/fail.clnrm.toml']!
    expect(failing.map(t => [t.name, t.state, t.line])).toEqual([
      ['failing > first', 'passed', 7],
      ['failing > wrong output', 'failed', 11],
      ['failing > after failure', 'skipped', 16],
      ['failing > assertions', 'failed', 20],
    ])
    // The code frame points at the failing key, not only at its step.
    expect(failing[1]!.error).toMatchObject({ name: 'StepFailure', message: expect.stringContaining('expected_output_regex = "^three"'), frame: 14 })
    expect(failing[3]!.error!.message).toContain('all_steps_should_succeed = true does not hold')

    // Each [matrix] combination is a describe of its own.
    expect(reported['tests/matrix.clnrm.toml.eta']!.map(t => [t.name, t.state, t.line])).toEqual([
      ['matrix [word=one] > echoes', 'passed', 10],
      ['matrix [word=two] > echoes', 'failed', 10],
    ])

    // The span verdict is a test after the steps, failing with the rule that did not hold.
    const spans = reported['tests/spans.clnrm.toml']!
    expect(spans.map(t => [t.name, t.state, t.line])).toEqual([['traced > prints a span', 'passed', 7], ['traced > spans', 'failed', 12]])
    expect(spans[1]!.error).toMatchObject({ name: 'SpanRuleFailure', message: expect.stringContaining('expect.span[payment]') })

    // clnrm kills the step at the TOML's timeout and says so; Vitest's timer never fires first.
    const [slow] = reported['tests/slow.clnrm.toml']!
    expect(slow).toMatchObject({ name: 'slow > sleeps past its timeout', state: 'failed', line: 7, error: { name: 'StepFailure', message: expect.stringContaining('timeout = 1500ms') } })
    expect(slow!.error!.message).not.toMatch(/Test timed out/)

    // A template's step is located in the template; the partial supplied its expectation.
    expect(reported['tests/greet.clnrm.toml.eta']).toEqual([{ name: 'templated > greets', state: 'passed', line: 7, timeout: expect.any(Number) }])

    // An invalid file is one failing test at the problem, with clnrm's located diagnostic.
    const [invalid] = reported['tests/invalid.clnrm.toml']!
    expect(invalid).toMatchObject({ name: 'invalid.clnrm.toml > is a valid clnrm test', state: 'failed', line: 10 })
    expect(invalid!.error!.message).toContain('tests/invalid.clnrm.toml:10:1 CLNRM_UNKNOWN_KEY')

    // Vitest's own test files still run beside them (the plugin adds to the default include).
    expect(reported['tests/plain.test.ts']).toEqual([{ name: 'plain', state: 'passed', line: 2, timeout: 1000 }])
    expect(Object.keys(reported)).not.toContain('tests/_greeting.eta')

    // Containers were started by this process (Vitest's main process here), not by its workers, and stay warm until close.
    expect(clnrmContainers(process.pid).length).toBeGreaterThan(0)
    await vitest.close()
    vitest = undefined
    expect(clnrmContainers(process.pid)).toEqual([])
  }, 120_000)

  it('Vitest\'s static collector (VS Code\'s Vitest extension lists tests with it before a run) finds every step at its TOML line, with the ids collecting gives them', async () => {
    const project = await userProject(['tests/fail', 'tests/greet', 'tests/_greeting', 'tests/matrix', 'tests/invalid'])
    cleanup = project.cleanup
    // A name with quotes is listed as written, not with the escapes of a JavaScript string.
    writeFileSync(join(project.dir, 'tests/quoted.clnrm.toml'), `[meta]\nname = 'says "hi"'\n\n[services.box]\nimage = "${IMAGE}"\n\n[[steps]]\nname = 'say "bye"'\nrun = "echo hi"\n`)
    vitest = await createVitest('test', { root: project.dir, watch: false, reporters: [quiet] })
    const tree = (modules: readonly TestModule[]): Record<string, Array<[string, string, number | undefined]>> => Object.fromEntries(
      modules.map(m => [m.relativeModuleId, [...m.children.allSuites(), ...m.children.allTests()].map(t => [t.id, t.fullName, t.location?.line] as [string, string, number | undefined])]))
    // What the extension calls (experimental_parseSpecifications): no worker, no engine, the module's code read as written.
    const parsed = tree((await vitest.collect([], { staticParse: true })).testModules)
    expect(Object.fromEntries(Object.entries(parsed).map(([file, tasks]) => [file, tasks.map(([, name, line]) => [name, line])]))).toEqual({
      'tests/fail.clnrm.toml': [['failing', 1], ['failing > first', 7], ['failing > wrong output', 11], ['failing > after failure', 16], ['failing > assertions', 20]],
      'tests/greet.clnrm.toml.eta': [['templated', 1], ['templated > greets', 7]],
      'tests/matrix.clnrm.toml.eta': [['matrix [word=one]', 1], ['matrix [word=two]', 1], ['matrix [word=one] > echoes', 10], ['matrix [word=two] > echoes', 10]],
      'tests/invalid.clnrm.toml': [['invalid.clnrm.toml', 10], ['invalid.clnrm.toml > is a valid clnrm test', 10]],
      'tests/quoted.clnrm.toml': [['says "hi"', 1], ['says "hi" > say "bye"', 7]],
    })
    // The same tasks as Vitest's collection in a worker gives (what a run reports): the extension
    // matches a run's results to the tests it listed by these ids.
    expect(tree((await vitest.collect([])).testModules)).toEqual(parsed)
  }, 60_000)

  it('collects the files clnrm.toml\'s tests globs name, or those of the include option, beside Vitest\'s own', async () => {
    const made = await tempDir('clnrm-vitest-globs-')
    cleanup = made.cleanup
    linkModules(made.dir)
    const write = (path: string, text: string): void => {
      mkdirSync(join(made.dir, path, '..'), { recursive: true })
      writeFileSync(join(made.dir, path), text)
    }
    write('package.json', '{ "private": true, "type": "module" }\n')
    write('clnrm.toml', 'tests = ["e2e/**/*.clnrm.toml"]\n')
    for (const path of ['e2e/a.clnrm.toml', 'tests/b.clnrm.toml', 'e2e/_partial.clnrm.toml']) write(path, files['tests/pass.clnrm.toml']!)
    write('tests/plain.test.ts', files['tests/plain.test.ts']!)
    const collected = async (options: string): Promise<string[]> => {
      write('vitest.config.ts', `import { clnrm } from 'clnrm/vitest'\nexport default { plugins: [clnrm(${options})] }\n`)
      const instance = await createVitest('test', { root: made.dir, watch: false, reporters: [quiet] })
      try {
        return (await instance.globTestSpecifications()).map(spec => spec.moduleId.slice(made.dir.length + 1)).sort()
      }
      finally {
        await instance.close()
      }
    }
    expect(await collected('')).toEqual(['e2e/a.clnrm.toml', 'tests/plain.test.ts'])
    expect(await collected('{ include: \'tests/**/*.clnrm.toml\' }')).toEqual(['tests/b.clnrm.toml', 'tests/plain.test.ts'])
  })

  it('reruns a clnrm file in watch mode when it, its partial, a [watch] files input, a module its [watch] modules import, or clnrm.toml is saved', async () => {
    const project = await userProject(['tests/greet', 'tests/_greeting', 'tests/watched', 'tests/data', 'clnrm.toml', 'src/'])
    cleanup = project.cleanup
    const runs: Array<Record<string, Reported[]>> = []
    const reporter = { onTestRunEnd: (modules: readonly TestModule[]) => void runs.push(byFile(modules)) }
    vitest = await startVitest('test', [], { root: project.dir, watch: true, reporters: [reporter] })
    await expect.poll(() => runs.length, { timeout: 60_000 }).toBe(1)
    expect(runs[0]!['tests/greet.clnrm.toml.eta']![0]!.state).toBe('passed')
    const warm = clnrmContainers(process.pid).sort()
    expect(warm.length).toBeGreaterThan(0)

    // The partial: the step now expects another word and fails.
    writeFileSync(join(project.dir, 'tests/_greeting.eta'), 'expected_output_regex = "^bye"\n')
    await expect.poll(() => runs.at(-1)?.['tests/greet.clnrm.toml.eta']?.[0]?.state, { timeout: 30_000 }).toBe('failed')
    expect(Object.keys(runs.at(-1)!)).toEqual(['tests/greet.clnrm.toml.eta'])

    // The test file itself: fixed.
    const greet = join(project.dir, 'tests/greet.clnrm.toml.eta')
    writeFileSync(greet, readFileSync(greet, 'utf8').replace('word: \'hi\'', 'word: \'hi there\''))
    writeFileSync(join(project.dir, 'tests/_greeting.eta'), files['tests/_greeting.eta']!)
    await expect.poll(() => runs.at(-1)?.['tests/greet.clnrm.toml.eta']?.[0]?.state, { timeout: 30_000 }).toBe('passed')
    // Each rerun is a new worker; the containers are the same ones, kept warm by the main process.
    expect(clnrmContainers(process.pid).sort()).toEqual(warm)

    // An input named by [watch] files reruns only the file that watches it.
    const before = runs.length
    writeFileSync(join(project.dir, 'tests/data/input.txt'), 'two\n')
    await expect.poll(() => runs.length, { timeout: 30_000 }).toBeGreaterThan(before)
    expect(Object.keys(runs.at(-1)!)).toEqual(['tests/watched.clnrm.toml'])

    // A module that a [watch] modules entry imports (not the entry itself) reruns the file that names it.
    const beforeModule = runs.length
    writeFileSync(join(project.dir, 'src/word.js'), 'export const word = \'you\'\n')
    await expect.poll(() => runs.length, { timeout: 30_000 }).toBeGreaterThan(beforeModule)
    expect(Object.keys(runs.at(-1)!)).toEqual(['tests/watched.clnrm.toml'])

    // clnrm.toml (vars, the default image) reruns every clnrm file, with its new values.
    const afterWatched = runs.length
    writeFileSync(join(project.dir, 'clnrm.toml'), '[vars]\nunused = "1"\n')
    await expect.poll(() => runs.slice(afterWatched).flatMap(r => Object.keys(r)).sort(), { timeout: 30_000 }).toEqual(expect.arrayContaining(['tests/greet.clnrm.toml.eta', 'tests/watched.clnrm.toml']))

    await vitest.close()
    vitest = undefined
    expect(clnrmContainers(process.pid)).toEqual([])
  }, 120_000)
})

describe('the run server', () => {
  it('listens on 127.0.0.1 and answers only requests with its token', async () => {
    const server = await startRunServer({ root: import.meta.dirname })
    try {
      expect(new URL(server.info.url).hostname).toBe('127.0.0.1')
      const post = (headers: Record<string, string>, path = '/run'): Promise<Response> =>
        fetch(`${server.info.url}${path}`, { method: 'POST', headers, body: JSON.stringify({ file: 'x.clnrm.toml', steps: [] }) })
      expect((await post({})).status).toBe(401)
      expect((await post({ authorization: `Bearer ${server.info.token.replace(/.$/, c => (c === '0' ? '1' : '0'))}` })).status).toBe(401)
      expect((await post({ authorization: `Bearer ${server.info.token}` }, '/other')).status).toBe(404)
      // With the token: an answer in the protocol (the file does not exist), not a run.
      const answer = await (await post({ authorization: `Bearer ${server.info.token}` })).text()
      expect(JSON.parse(answer.trim())).toMatchObject({ type: 'error', code: 'CLNRM_FILE_READ' })
    }
    finally {
      await server.close()
    }
  })
})

describe('clnrm/vitest through the vitest CLI', () => {
  let cleanup: (() => Promise<void>) | undefined
  afterEach(async () => {
    await cleanup?.()
    cleanup = undefined
  })

  it('exits 1 with a failing step and 0 once it is fixed, leaving no container', async () => {
    const project = await userProject(['tests/pass', 'tests/fail'])
    cleanup = project.cleanup
    const failing = spawnCli([], project.dir, { script: [vitestCli, 'run'] })
    const failed = await failing.exited
    expect(failing.output()).toMatch(/tests\/fail\.clnrm\.toml:11:1 > failing > wrong output/)
    expect(failed.code).toBe(1)
    expect(clnrmContainers(failing.pid)).toEqual([])

    const file = join(project.dir, 'tests/fail.clnrm.toml')
    writeFileSync(file, readFileSync(file, 'utf8').replace('"^three"', '"^two"'))
    const passing = spawnCli([], project.dir, { script: [vitestCli, 'run'] })
    const passed = await passing.exited
    expect(passing.output()).toMatch(/Tests\s+7 passed \(7\)/)
    expect(passed.code).toBe(0)
    expect(passed.ms).toBeLessThan(60_000)
    expect(clnrmContainers(passing.pid)).toEqual([])
  }, 120_000)

  it('removes its containers when the vitest CLI gets Ctrl-C (SIGINT) or SIGTERM mid-step', async () => {
    const project = await userProject(['tests/slow'])
    cleanup = project.cleanup
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const vitest = spawnCli([], project.dir, { script: [vitestCli, 'run'] })
      await waitUntil(() => clnrmContainers(vitest.pid).length > 0, 'the step\'s container', 60_000)
      vitest.child.kill(signal)
      expect(await vitest.timeToExit()).toBeLessThan(10_000)
      const exit = await vitest.exited
      expect(exit.code ?? exit.signal).not.toBe(0)
      expect(clnrmContainers(vitest.pid)).toEqual([])
    }
  }, 120_000)

  it('without a Docker engine, fails each clnrm test\'s first step with the engine error and its hint, skips the rest, and exits', async () => {
    const project = await userProject(['tests/fail'])
    cleanup = project.cleanup
    const vitest = spawnCli([], project.dir, { script: [vitestCli, 'run'], env: { DOCKER_HOST: 'tcp://127.0.0.1:1' } })
    const exit = await vitest.exited
    expect(exit.code).toBe(1)
    expect(exit.ms).toBeLessThan(30_000)
    expect(vitest.output()).toMatch(/FAIL\s+tests\/fail\.clnrm\.toml:7:1 > failing > first\s+CLNRM_ENGINE_UNAVAILABLE: .*\n\s*hint: /)
    expect(vitest.output()).toMatch(/Tests\s+1 failed \| 3 skipped \(4\)/)
  }, 60_000)

  it('vitest list names every step with its TOML line, and needs no Docker engine', async () => {
    const project = await userProject(['tests/fail', 'tests/greet', 'tests/_greeting'])
    cleanup = project.cleanup
    const list = spawnCli([], project.dir, { script: [vitestCli, 'list', '--json'], env: { DOCKER_HOST: 'tcp://127.0.0.1:1' } })
    expect((await list.exited).code).toBe(0)
    const listed = (JSON.parse(list.stdout()) as Array<{ name: string; file: string; location: { line: number } }>)
      .map(t => [t.file.slice(project.dir.length + 1), t.name, t.location.line] as const)
    // Files may be collected in any order; within one, tests keep theirs.
    expect([...listed].sort((a, b) => a[0].localeCompare(b[0]))).toEqual([
      ['tests/fail.clnrm.toml', 'failing > first', 7],
      ['tests/fail.clnrm.toml', 'failing > wrong output', 11],
      ['tests/fail.clnrm.toml', 'failing > after failure', 16],
      ['tests/fail.clnrm.toml', 'failing > assertions', 20],
      ['tests/greet.clnrm.toml.eta', 'templated > greets', 7],
    ])
  }, 60_000)

  it('honours -t, file:line and --shard, as for any Vitest test', async () => {
    const project = await userProject(['tests/pass', 'tests/fail', 'tests/greet', 'tests/_greeting'])
    cleanup = project.cleanup
    const json = (name: string): { testResults: Array<{ name: string; assertionResults: Array<{ fullName: string; status: string }> }> } =>
      JSON.parse(readFileSync(join(project.dir, name), 'utf8'))
    const statuses = (name: string): Record<string, string> =>
      Object.fromEntries(json(name).testResults.flatMap(f => f.assertionResults.map(a => [a.fullName, a.status])))

    const filtered = spawnCli([], project.dir, { script: [vitestCli, 'run', '-t', 'wrong output', '--reporter=json', '--outputFile=filtered.json'] })
    expect((await filtered.exited).code).toBe(1)
    const seen = statuses('filtered.json')
    expect(seen['failing wrong output']).toBe('failed')
    expect(seen['failing first']).toBe('skipped')
    expect(seen['passing say hello']).toBe('skipped')

    // A line filter selects the step written there.
    const byLine = spawnCli([], project.dir, { script: [vitestCli, 'run', 'tests/pass.clnrm.toml:12', '--reporter=json', '--outputFile=line.json'] })
    expect((await byLine.exited).code).toBe(0)
    expect(statuses('line.json')).toEqual({ 'passing say hello': 'skipped', 'passing longer than Vitest\'s testTimeout': 'passed', 'passing assertions': 'skipped' })

    const shards = [1, 2].map(i => spawnCli([], project.dir, { script: [vitestCli, 'run', `--shard=${i}/2`, '--reporter=json', `--outputFile=shard${i}.json`] }))
    await Promise.all(shards.map(s => s.exited))
    const filesOf = (i: number): string[] => json(`shard${i}.json`).testResults.map(f => f.name.slice(project.dir.length + 1)).sort()
    expect(filesOf(1).length).toBeGreaterThan(0)
    expect(filesOf(2).length).toBeGreaterThan(0)
    expect([...filesOf(1), ...filesOf(2)].sort()).toEqual(['tests/fail.clnrm.toml', 'tests/greet.clnrm.toml.eta', 'tests/pass.clnrm.toml'])
    for (const shard of [filtered, byLine, ...shards]) expect(clnrmContainers(shard.pid)).toEqual([])
  }, 120_000)
})
