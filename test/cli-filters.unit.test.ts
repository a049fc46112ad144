import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { escapeGithubData, escapeGithubProperty, formatGithubAnnotations, formatGithubSummary, githubCommand, githubPath } from '../core/index.ts'
import type { LoadedTestFile, RunReport, TestFilter, TestResult } from '../core/index.ts'
import { createColors } from 'picocolors'
import { createDevKeys, describeFilter } from '../cli/dev-keys.ts'
import { affectedTests } from '../cli/changed.ts'
import { compileNamePattern, matchFileFilters, selectSteps, splitPositionals } from '../cli/filters.ts'
import { planReporters } from '../cli/reporters.ts'
import { UsageError } from '../cli/errors.ts'
import { tempDir } from './helpers.ts'

describe('github workflow commands', () => {
  it('escapes %, CR and LF in messages, and also : and , in properties, as the runner reads them back', () => {
    expect(escapeGithubData('100% done\r\nnext: a, b')).toBe('100%25 done%0D%0Anext: a, b')
    expect(escapeGithubProperty('100% done\r\nnext: a, b')).toBe('100%25 done%0D%0Anext%3A a%2C b')
    // % first: an escape sequence is never escaped twice.
    expect(escapeGithubData('%0A')).toBe('%250A')
    // Other control characters from names and output are shown escaped, never raw in the log.
    expect(escapeGithubData('a\u001B[32mb\u0000c\td')).toBe('a\\x1b[32mb\\0c\td')
  })

  it('writes ::kind props::message, leaving out properties without a value', () => {
    expect(githubCommand('error', { file: 'a.toml', line: 3, col: undefined, title: 't › s' }, 'line 1\nline 2')).toBe('::error file=a.toml,line=3,title=t › s::line 1%0Aline 2\n')
    expect(githubCommand('warning', {}, 'plain')).toBe('::warning::plain\n')
  })

  it('annotates paths relative to GITHUB_WORKSPACE when the file is inside it, else to the project root', () => {
    expect(githubPath('/repo/sub/tests/a.clnrm.toml', '/repo/sub', '/repo')).toBe('sub/tests/a.clnrm.toml')
    expect(githubPath('/repo/sub/tests/a.clnrm.toml', '/repo/sub', '/elsewhere')).toBe('tests/a.clnrm.toml')
    expect(githubPath('/repo/sub/tests/a.clnrm.toml', '/repo/sub')).toBe('tests/a.clnrm.toml')
  })
})

describe('filters', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('tells paths (existing, or globs) from substring filters', async () => {
    await mkdir(join(dir, 'tests'))
    expect(splitPositionals(['tests', 'hello', '**/*.clnrm.toml', 'tests/x'], dir)).toEqual({ paths: ['tests', '**/*.clnrm.toml'], filters: ['hello', 'tests/x'] })
  })

  it('matches filters as substrings of the path relative to the root, OR\'ed; no filter keeps every file', () => {
    const files = ['/p/tests/api/login.clnrm.toml', '/p/tests/web/home.clnrm.toml', '/p/other.clnrm.toml']
    expect(matchFileFilters(files, ['login', 'web/'], '/p')).toEqual(files.slice(0, 2))
    // The root's own name is not part of the relative path.
    expect(matchFileFilters(files, ['p/'], '/p')).toEqual([])
    expect(matchFileFilters(files, ['tests\\api'], '/p')).toEqual([files[0]])
    expect(matchFileFilters(files, [], '/p')).toEqual(files)
  })

  it('selects steps by their full name (test name, space, step name) as Vitest matches describe + test', () => {
    const spec = { name: 'api', steps: [{ name: 'setup' }, { name: 'check login' }, { name: 'teardown' }] } as Parameters<typeof selectSteps>[0]
    expect(selectSteps(spec, undefined)).toEqual([0, 1, 2])
    expect(selectSteps(spec, compileNamePattern('login'))).toEqual([1])
    expect(selectSteps(spec, compileNamePattern('^api'))).toEqual([0, 1, 2])
    expect(selectSteps(spec, compileNamePattern('api setup|down$'))).toEqual([0, 2])
    expect(selectSteps(spec, compileNamePattern('nothing'))).toEqual([])
    expect(() => compileNamePattern('(')).toThrow(UsageError)
  })

  it('--changed: a changed partial or [watch] file selects the tests that use it; a changed clnrm.toml selects all', () => {
    const loaded = (file: string, partials: string[], watch: string[] = []): LoadedTestFile => ({
      file,
      diagnostics: [],
      inputs: { template: file, partials, env: [] },
      spec: { watch: { files: watch, modules: [] }, services: {} } as unknown as LoadedTestFile['spec'],
      cache: { config: 'miss' },
      timings: { renderMs: 0, parseMs: 0 },
    })
    const tests = [loaded('/p/a.clnrm.toml.eta', ['/p/_box.eta']), loaded('/p/b.clnrm.toml', [], ['/p/src/**/*.sh']), loaded('/p/c.clnrm.toml', [])]
    expect([...affectedTests(tests, ['/p/_box.eta'], '/p')]).toEqual([['/p/a.clnrm.toml.eta', 'includes /p/_box.eta']])
    expect([...affectedTests(tests, ['/p/src/deep/run.sh', '/p/c.clnrm.toml', '/p/README.md'], '/p').keys()]).toEqual(['/p/b.clnrm.toml', '/p/c.clnrm.toml'])
    expect(affectedTests(tests, ['/p/clnrm.toml'], '/p').size).toBe(3)
  })
})

describe('planReporters', () => {
  const plan = (options: Record<string, string | string[] | undefined>, env: Record<string, string> = {}) => planReporters({ options }, { cwd: '/w', env })

  it('defaults to the human reporter; json or junit alone own stdout; human is an old name of default', () => {
    expect(plan({})).toEqual({ machine: [], human: true, autoGithub: false })
    expect(plan({ reporter: ['json'] })).toEqual({ machine: [{ name: 'json' }], human: false, autoGithub: false })
    expect(plan({ reporter: 'human' })).toEqual({ machine: [], human: true, autoGithub: false })
  })

  it('routes --output name=path per reporter and a bare path to the single machine reporter', () => {
    expect(plan({ reporter: ['default', 'junit', 'json'], output: ['junit=out/j.xml', 'json=/abs/r.json'] }).machine).toEqual([{ name: 'junit', output: '/w/out/j.xml' }, { name: 'json', output: '/abs/r.json' }])
    expect(plan({ reporter: ['junit'], output: ['j.xml'] })).toEqual({ machine: [{ name: 'junit', output: '/w/j.xml' }], human: true, autoGithub: false })
    expect(() => plan({ reporter: ['junit', 'json'], output: ['j.xml'] })).toThrow(/several reporters could write it/)
    expect(() => plan({ output: ['j.xml'] })).toThrow(/no reporter writes a file/)
  })

  it('refuses two reporters on stdout', () => {
    expect(() => plan({ reporter: ['json', 'junit'] })).toThrow(/--reporter json writes to stdout, and so would junit/)
    expect(() => plan({ reporter: ['junit', 'github'] })).toThrow(/and so would github/)
    expect(plan({ reporter: ['github', 'default'] }).human).toBe(true)
  })

  it('adds github next to the default under GITHUB_ACTIONS=true, never next to a report on stdout', () => {
    expect(plan({}, { GITHUB_ACTIONS: 'true' })).toEqual({ machine: [{ name: 'github' }], human: true, autoGithub: true })
    expect(plan({ reporter: ['json'] }, { GITHUB_ACTIONS: 'true' }).machine).toEqual([{ name: 'json' }])
    expect(plan({ reporter: ['github'] }, { GITHUB_ACTIONS: 'true' }).machine).toEqual([{ name: 'github' }])
  })
})

describe('dev keys', () => {
  const setup = (failed = 0) => {
    const out: string[] = []
    const calls: string[] = []
    let filter: TestFilter = {}
    const ctx = { cwd: '/p', env: {}, isTTY: false, stdout: (t: string) => void out.push(t), stderr: (t: string) => void out.push(t), c: createColors(false) }
    const keys = createDevKeys(ctx, {
      session: { rerun: (which) => { calls.push(String(which)); return which === 'failed' ? failed : 2 }, setFilter: (f) => { filter = f }, filter: () => filter },
      quit: () => calls.push('quit'),
      interrupt: () => calls.push('interrupt'),
    })
    return { keys, out, calls, filter: () => filter }
  }

  it('p and t prompt; Backspace edits, Esc cancels, Enter sets the filter and reruns all', () => {
    const k = setup()
    k.keys.feed('pap\u007Fpi web\r')
    expect(k.filter()).toEqual({ files: ['api', 'web'] })
    expect(k.calls).toEqual(['all'])
    k.keys.feed('tlog\u001B')
    expect(k.filter().pattern).toBeUndefined()
    k.keys.feed('tlog.n\r')
    expect(k.filter().pattern).toEqual(/log.n/)
    expect(describeFilter(k.filter())).toBe('files "api" or "web" · names /log.n/')
    k.keys.feed('c')
    expect(k.filter()).toEqual({})
  })

  it('lines: "p api" at once, "p" then a line as the answer; f says when nothing failed; q quits', () => {
    const k = setup(0)
    k.keys.line('p api')
    expect(k.filter()).toEqual({ files: ['api'] })
    k.keys.line('p')
    k.keys.line('')
    k.keys.line('p')
    k.keys.line('web')
    expect(k.filter()).toEqual({ files: ['web'] })
    k.keys.line('f')
    expect(k.out.join('')).toMatch(/No failed tests to rerun within the filters/)
    k.keys.line('t (')
    expect(k.out.join('')).toMatch(/error Invalid regular expression.*; the name filter is unchanged/)
    k.keys.line('q')
    expect(k.calls.at(-1)).toBe('quit')
  })
})

describe('github annotations of a report', () => {
  const result = (over: Partial<TestResult>): TestResult => ({ file: '/p/t/a.clnrm.toml', name: 'a', status: 'fail', durationMs: 1, steps: [], aborted: false, timings: { acquireMs: 0, reused: {}, steps: [], totalMs: 1 }, ...over })
  const report: RunReport = {
    summary: { total: 3, passed: 0, failed: 1, errors: 1, skipped: 0, invalid: 1, durationMs: 1200 },
    tests: [
      result({ status: 'error', error: { code: 'CLNRM_IMAGE_NOT_FOUND', message: 'no image x', hint: 'build it' } }),
      result({ name: 'b', file: '/p/t/b.clnrm.toml', steps: [{ name: 's', service: 'box', status: 'fail', stdout: '', stderr: '', truncated: { stdout: false, stderr: false }, durationMs: 1, timedOut: false, failure: { expectation: 'expected_output_regex = "ok"', message: 'no match', excerpt: '', location: { line: 7, column: 3 } } }] }),
    ],
    invalid: [{ file: '/p/t/c.clnrm.toml', diagnostics: [{ file: '/p/t/c.clnrm.toml', line: 2, column: 8, severity: 'error', code: 'CLNRM_INVALID_TYPE', message: 'meta.name must be string' }] }],
    skipped: [],
  }

  it('annotates a test that could not run, a failing step at its key, and each error of an invalid file', () => {
    expect(formatGithubAnnotations(report, { root: '/p' }).split('\n').filter(Boolean)).toEqual([
      '::error file=t/a.clnrm.toml,line=1,title=a::no image x%0Abuild it',
      '::error file=t/b.clnrm.toml,line=7,col=3,title=b › s::expected_output_regex = "ok": no match',
      '::error file=t/c.clnrm.toml,line=2,col=8,title=CLNRM_INVALID_TYPE::meta.name must be string',
    ])
  })

  it('summarizes counts and failures as a Markdown table', () => {
    const md = formatGithubSummary(report, { root: '/p' })
    expect(md).toMatch(/^## clnrm ❌ 1 failed, 1 errored, 1 invalid \(3\) in 1\.20s\n/)
    expect(md).toContain('| b › s | `t/b.clnrm.toml:7` | expected_output_regex = "ok": no match |')
    expect(md).toContain('| (invalid file) | `t/c.clnrm.toml:2` | CLNRM_INVALID_TYPE meta.name must be string |')
  })
})
