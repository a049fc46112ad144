import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { XMLValidator } from 'fast-xml-parser'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { spawnCli } from './cli-process.ts'
import type { CliProcess } from './cli-process.ts'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'

/** A test file: a named test with steps `[name, run]`. */
const testFile = (name: string, steps: Array<[string, string]>): string =>
  `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\n${steps.map(([step, run]) => `\n[[steps]]\nname = "${step}"\nrun = "${run}"\n`).join('')}`

/** Runs the built CLI to its end; checks it removed every container it started. */
async function run(dir: string, args: string[], env: Record<string, string> = {}): Promise<CliProcess & { code: number | null }> {
  // Outside GitHub Actions unless a test says otherwise: the github reporter would join the default.
  const cli = spawnCli(['run', ...args], dir, { env: { GITHUB_ACTIONS: '', GITHUB_STEP_SUMMARY: '', ...env } })
  const exit = await cli.exited
  expect(exit.ms).toBeLessThan(60_000)
  expect(clnrmContainers(cli.pid)).toEqual([])
  return Object.assign(cli, { code: exit.code })
}

describe('clnrm run: filters, --bail, --changed, --last-failed, reporters (built CLI, real engine)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('a positional that is not a path filters test files by substring of their path (several OR\'ed); none matching exits 1 showing the filters', async () => {
    await mkdir(join(dir, 'tests/api'), { recursive: true })
    await mkdir(join(dir, 'tests/web'), { recursive: true })
    await writeFile(join(dir, 'tests/api/login.clnrm.toml'), testFile('login', [['s', 'true']]))
    await writeFile(join(dir, 'tests/api/logout.clnrm.toml'), testFile('logout', [['s', 'true']]))
    await writeFile(join(dir, 'tests/web/home.clnrm.toml'), testFile('home', [['s', 'true']]))

    const some = await run(dir, ['login', 'web/'])
    expect(some.code).toBe(0)
    expect(some.stdout()).toMatch(/✓ login tests\/api\/login\.clnrm\.toml/)
    expect(some.stdout()).toMatch(/✓ home tests\/web\/home\.clnrm\.toml/)
    expect(some.stdout()).not.toMatch(/logout/)
    expect(some.stdout()).toMatch(/Tests: 2 passed \(2\)/)

    // A path and a filter together: the filter narrows the path's files.
    const narrowed = await run(dir, ['tests/api', 'out'])
    expect(narrowed.stdout()).toMatch(/✓ logout/)
    expect(narrowed.stdout()).toMatch(/Tests: 1 passed \(1\)/)

    const none = await run(dir, ['nothing', 'nowhere'])
    expect(none.code).toBe(1)
    expect(none.stderr()).toMatch(/^No test files found, exiting with code 1\n\nfilter: nothing, nowhere\ninclude: /m)
    expect(none.stdout()).toBe('')
  }, 120_000)

  it('-t runs only the steps whose name matches: the others are reported skipped (filtered out), never passed, and the summary says so', async () => {
    await writeFile(join(dir, 'api.clnrm.toml'), testFile('api', [['setup', 'echo ready'], ['check', 'exit 4']]))
    await writeFile(join(dir, 'web.clnrm.toml'), testFile('web', [['render', 'true']]))

    const partial = await run(dir, ['-t', 'set.p', '--reporter', 'default', '--reporter', 'json', '--reporter', 'junit', '--output', 'json=r.json', '--output', 'junit=j.xml'])
    expect(partial.code).toBe(0)
    expect(partial.stdout()).toMatch(/✓ api api\.clnrm\.toml .*\(1 of 2 steps ran; 1 filtered out by -t\)/)
    expect(partial.stdout()).toMatch(/Tests: 1 passed, 1 skipped \(2\)/)
    expect(partial.stdout()).toMatch(/1 test and 1 step filtered out by -t \(not run, not counted as passed\)/)
    const report = JSON.parse(await readFile(join(dir, 'r.json'), 'utf8'))
    expect(report.tests[0].steps.map((s: { name: string; status: string; filtered?: boolean }) => [s.name, s.status, s.filtered ?? false])).toEqual([['setup', 'pass', false], ['check', 'skipped', true]])
    expect(report.skipped).toEqual([expect.objectContaining({ file: 'web.clnrm.toml', name: 'web', reason: 'filtered' })])
    const xml = await readFile(join(dir, 'j.xml'), 'utf8')
    expect(XMLValidator.validate(xml)).toBe(true)
    expect(xml).toMatch(/<testcase name="check"[^>]*>\n {6}<skipped message="filtered out by -t"\/>/)

    // The failing step matched: the verdict is red, as without -t. A test's name selects every step.
    const red = await run(dir, ['-t', '^api'])
    expect(red.code).toBe(1)
    expect(red.stdout()).toMatch(/✗ api/)
    expect(red.stdout()).toMatch(/step "check" in box: exited with 4/)
    expect(red.stdout()).toMatch(/Tests: 1 failed, 1 skipped \(2\)/)

    const none = await run(dir, ['-t', 'zzz'])
    expect(none.code).toBe(1)
    expect(none.stderr()).toMatch(/No test found for -t "zzz" in 2 test files, exiting with code 1/)

    const bad = await run(dir, ['-t', '(unclosed'])
    expect(bad.code).toBe(2)
    expect(bad.stderr()).toMatch(/-t "\(unclosed" is not a valid regular expression/)
  }, 120_000)

  it('--bail N stops after N failed tests and --fail-fast after one; the summary says how many files never ran', async () => {
    await writeFile(join(dir, 'a.clnrm.toml'), testFile('a', [['s', 'exit 1']]))
    await writeFile(join(dir, 'b.clnrm.toml'), testFile('b', [['s', 'exit 1']]))
    for (const name of ['c', 'd', 'e']) await writeFile(join(dir, `${name}.clnrm.toml`), testFile(name, [['s', 'true']]))

    const bail = await run(dir, ['-j', '1', '--bail', '2'])
    expect(bail.code).toBe(1)
    expect(bail.stdout()).toMatch(/Tests: 2 failed, 3 skipped \(5\)/)
    expect(bail.stdout()).toMatch(/3 files not run \(--bail 2\)/)
    expect(bail.stdout()).not.toMatch(/✓/)

    const failFast = await run(dir, ['-j', '1', '--fail-fast'])
    expect(failFast.code).toBe(1)
    expect(failFast.stdout()).toMatch(/Tests: 1 failed, 4 skipped \(5\)/)
    expect(failFast.stdout()).toMatch(/4 files not run \(--fail-fast\)/)

    const usage = await run(dir, ['--bail', '0'])
    expect(usage.code).toBe(2)
    expect(usage.stderr()).toMatch(/--bail expects a positive integer, got "0"/)
  }, 120_000)

  it('--changed runs test files changed against HEAD, untracked ones, tests whose partial changed and tests whose [watch] modules import a changed file; --changed=<ref> diffs against a ref', async () => {
    const git = (...args: string[]): string => execFileSync('git', args, { cwd: dir, encoding: 'utf8' })
    git('init', '-q')
    git('config', 'user.email', 'test@example.com')
    git('config', 'user.name', 'test')
    await writeFile(join(dir, 'a.clnrm.toml'), testFile('a', [['s', 'true']]))
    await writeFile(join(dir, 'b.clnrm.toml'), testFile('b', [['s', 'true']]))
    await writeFile(join(dir, '_step.eta'), '[[steps]]\nname = "from partial"\nrun = "true"\n')
    await writeFile(join(dir, 't.clnrm.toml.eta'), `[meta]\nname = "templated"\n[services.box]\nimage = "${IMAGE}"\n<%~ include('./_step.eta') %>\n`)
    git('add', '.')
    git('commit', '-qm', 'first')

    const nothing = await run(dir, ['--changed'])
    expect(nothing.code).toBe(0)
    expect(nothing.stderr()).toMatch(/No test files changed since HEAD: nothing to run/)

    await writeFile(join(dir, 'a.clnrm.toml'), testFile('a', [['s', 'echo edited']]))
    await writeFile(join(dir, 'new.clnrm.toml'), testFile('new', [['s', 'true']]))
    const changed = await run(dir, ['--changed'])
    expect(changed.code).toBe(0)
    expect(changed.stdout()).toMatch(/✓ a a\.clnrm\.toml/)
    expect(changed.stdout()).toMatch(/✓ new new\.clnrm\.toml/)
    expect(changed.stdout()).toMatch(/Tests: 2 passed \(2\)/)

    git('add', '.')
    git('commit', '-qm', 'second')
    await writeFile(join(dir, '_step.eta'), '[[steps]]\nname = "from partial, edited"\nrun = "true"\n')
    const partial = await run(dir, ['--changed'])
    expect(partial.stdout()).toMatch(/✓ templated t\.clnrm\.toml\.eta/)
    expect(partial.stdout()).toMatch(/Tests: 1 passed \(1\)/)
    expect(partial.stderr()).toMatch(/--changed: t\.clnrm\.toml\.eta \(includes _step\.eta\)/)

    // Against the first commit: a and new changed since, and the partial is edited.
    const since = await run(dir, ['--changed=HEAD~1'])
    expect(since.stdout()).toMatch(/Tests: 3 passed \(3\)/)
    expect(since.stdout()).not.toMatch(/✓ b /)

    // [watch] modules: a change to a file the entry imports (not the entry itself) selects the test.
    await mkdir(join(dir, 'src'))
    await writeFile(join(dir, 'src/app.ts'), 'import { x } from \'./util.ts\'\nexport const app = x\n')
    await writeFile(join(dir, 'src/util.ts'), 'export const x = 1\n')
    await writeFile(join(dir, 'm.clnrm.toml'), `${testFile('modules', [['s', 'true']])}\n[watch]\nmodules = ["src/app.ts"]\n`)
    git('add', '.')
    git('commit', '-qm', 'third')
    await writeFile(join(dir, 'src/util.ts'), 'export const x = 2\n')
    const imported = await run(dir, ['--changed'])
    expect(imported.stdout()).toMatch(/✓ modules m\.clnrm\.toml/)
    expect(imported.stdout()).toMatch(/Tests: 1 passed \(1\)/)
    expect(imported.stderr()).toMatch(/--changed: m\.clnrm\.toml \(imports src\/util\.ts\)/)

    const badRef = await run(dir, ['--changed=no-such-ref'])
    expect(badRef.code).toBe(2)
    expect(badRef.stderr()).toMatch(/--changed: git diff --name-only no-such-ref -- failed/)
  }, 120_000)

  it('--last-failed runs only the files that failed last time, and all of them with a note when none are recorded', async () => {
    await writeFile(join(dir, 'ok.clnrm.toml'), testFile('ok', [['s', 'true']]))
    await writeFile(join(dir, 'flaky.clnrm.toml'), testFile('flaky', [['s', 'test -e /nonexistent-marker']]))

    const first = await run(dir, ['--last-failed'])
    expect(first.stderr()).toMatch(/--last-failed: no failed test files recorded in \.clnrm\/last-failed\.json; running all 2/)
    expect(first.stdout()).toMatch(/Tests: 1 passed, 1 failed \(2\)/)
    expect(JSON.parse(await readFile(join(dir, '.clnrm/last-failed.json'), 'utf8')).failed).toEqual(['flaky.clnrm.toml'])
    expect(await readFile(join(dir, '.clnrm/.gitignore'), 'utf8')).toMatch(/^\*$/m)

    const again = await run(dir, ['--last-failed'])
    expect(again.code).toBe(1)
    expect(again.stdout()).toMatch(/✗ flaky/)
    expect(again.stdout()).not.toMatch(/✓ ok/)
    expect(again.stdout()).toMatch(/Tests: 1 failed \(1\)/)

    // A partial pass (-t left a step out) does not clear the record.
    await writeFile(join(dir, 'flaky.clnrm.toml'), testFile('flaky', [['s', 'true'], ['other', 'true']]))
    await run(dir, ['--last-failed', '-t', 'flaky s$'])
    expect(JSON.parse(await readFile(join(dir, '.clnrm/last-failed.json'), 'utf8')).failed).toEqual(['flaky.clnrm.toml'])

    const fixed = await run(dir, ['--last-failed'])
    expect(fixed.code).toBe(0)
    expect(fixed.stdout()).toMatch(/Tests: 1 passed \(1\)/)
    expect(JSON.parse(await readFile(join(dir, '.clnrm/last-failed.json'), 'utf8')).failed).toEqual([])
    const all = await run(dir, ['--last-failed'])
    expect(all.stdout()).toMatch(/Tests: 2 passed \(2\)/)
  }, 120_000)

  it('under GITHUB_ACTIONS=true the github reporter joins the default: ::error on the failing step\'s line (escaped), ::warning, and a job summary', async () => {
    await writeFile(join(dir, 'ok.clnrm.toml'), testFile('ok', [['s', 'true']]))
    // A name with a colon, a comma and a percent sign: they would end the property unescaped.
    await writeFile(join(dir, 'bad.clnrm.toml'), testFile('bad: 100%, really', [['first', 'true'], ['fails', 'exit 3']]))
    // An unknown [meta] key is a warning: annotated, and the test still runs.
    await writeFile(join(dir, 'warn.clnrm.toml'), testFile('warn', [['s', 'true']]).replace('name = "warn"', 'name = "warn"\nowner = "me"'))
    const summaryFile = join(dir, 'summary.md')
    await writeFile(summaryFile, '# earlier step\n')

    const cli = await run(dir, [], { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summaryFile })
    expect(cli.code).toBe(1)
    expect(cli.stdout()).toMatch(/✗ bad: 100%, really bad\.clnrm\.toml/)
    expect(cli.stdout()).toMatch(/^::error file=bad\.clnrm\.toml,line=12,col=1,title=bad%3A 100%25%2C really › fails::expected_exit_code = 0: exited with 3$/m)
    expect(cli.stdout().match(/^::error /gm)).toHaveLength(1)
    expect(cli.stdout()).toMatch(/^::warning file=warn\.clnrm\.toml,line=3,col=1,title=CLNRM_\w+::.*owner/m)
    const summary = await readFile(summaryFile, 'utf8')
    expect(summary).toMatch(/^# earlier step\n## clnrm ❌ 2 passed, 1 failed \(3\)/)
    expect(summary).toContain('| bad: 100%, really › fails | `bad.clnrm.toml:12` | expected_exit_code = 0: exited with 3 |')

    // Asked for by name outside Actions; JSON on stdout keeps stdout to itself.
    const named = await run(dir, ['--reporter', 'github', '--reporter', 'default'])
    expect(named.stdout()).toMatch(/^::error file=bad\.clnrm\.toml,line=12/m)
    const json = await run(dir, ['--reporter', 'json'], { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: '' })
    expect(JSON.parse(json.stdout()).summary).toMatchObject({ passed: 2, failed: 1 })
  }, 120_000)

  it('several reporters at once: the default on the terminal, JSON and JUnit to files with relative paths and the failing step\'s line; clashes on stdout are usage errors', async () => {
    await mkdir(join(dir, 'tests'))
    await mkdir(join(dir, 'out'))
    await writeFile(join(dir, 'tests/bad.clnrm.toml'), testFile('bad', [['first', 'true'], ['fails', 'exit 3']]))
    const cli = await run(dir, ['--reporter', 'default', '--reporter', 'junit', '--reporter', 'json', '--output', 'junit=out/junit.xml', '-o', 'json=out/report.json'])
    expect(cli.code).toBe(1)
    expect(cli.stdout()).toMatch(/✗ bad tests\/bad\.clnrm\.toml/)
    const report = JSON.parse(await readFile(join(dir, 'out/report.json'), 'utf8'))
    expect(report.root).toBe(dir)
    expect(report.tests[0].file).toBe('tests/bad.clnrm.toml')
    expect(report.tests[0].steps[1]).toMatchObject({ name: 'fails', status: 'fail', failure: { location: { line: 12, column: 1 } } })
    const xml = await readFile(join(dir, 'out/junit.xml'), 'utf8')
    expect(XMLValidator.validate(xml)).toBe(true)
    expect(xml).toMatch(/<testcase name="fails" classname="bad" file="tests\/bad\.clnrm\.toml" line="12" /)

    // The old single-reporter form still works: -o goes to the one machine reporter.
    const single = await run(dir, ['--reporter', 'junit', '-o', 'out/single.xml'])
    expect(single.stdout()).toMatch(/✗ bad/)
    expect(existsSync(join(dir, 'out/single.xml'))).toBe(true)

    const clash = await run(dir, ['--reporter', 'json', '--reporter', 'default'])
    expect(clash.code).toBe(2)
    expect(clash.stderr()).toMatch(/--reporter json writes to stdout, and so would the default reporter/)
    expect(clash.stderr()).toMatch(/hint: Give it a file: --output json=report\.json/)
    const off = await run(dir, ['--output', 'junit=out/x.xml'])
    expect(off.code).toBe(2)
    expect(off.stderr()).toMatch(/--output junit=out\/x\.xml names the junit reporter, which is not on/)
    const unknown = await run(dir, ['--reporter', 'tap'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr()).toMatch(/Unknown reporter "tap"/)
  }, 120_000)
})
