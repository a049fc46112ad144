import { XMLValidator } from 'fast-xml-parser'
import { describe, expect, it } from 'vitest'
import { formatJsonReport, formatJunitReport, printable, summarize } from '../core/index.ts'
import type { RunReport, TestResult } from '../core/index.ts'

const result = (name: string, status: TestResult['status']): TestResult => ({
  file: `/p/${name}.clnrm.toml`,
  name,
  status,
  durationMs: 5,
  aborted: false,
  steps: [{ name: 's', service: 'box', status: status === 'pass' ? 'pass' : 'fail', stdout: '', stderr: '', truncated: { stdout: false, stderr: false }, durationMs: 1, timedOut: false, ...(status === 'fail' && { failure: { expectation: 'expected_exit_code = 0', message: 'exited with 1', excerpt: '' } }) }],
  timings: { acquireMs: 1, reused: {}, steps: [], totalMs: 5 },
})

describe('printable', () => {
  it('escapes control characters so text cannot move the cursor or recolor the terminal', () => {
    expect(printable('a\rb\u001B[31mc\u0000d\te\nf\u0085g\u2028')).toBe('a\\rb\\x1b[31mc\\0d\\te\\nf\\x85g\\u2028')
    expect(printable('line\ttab\nnext\r', true)).toBe('line\ttab\nnext\\r')
    expect(printable('plain ✓ text')).toBe('plain ✓ text')
  })
})

describe('run reports', () => {
  it('count skipped and invalid files apart from failures, in the summary, JSON and JUnit', () => {
    const tests = [result('a', 'fail')]
    const summary = summarize(tests, { invalid: 1, skipped: 2 }, 10)
    expect(summary).toEqual({ total: 4, passed: 0, failed: 1, errors: 0, skipped: 2, invalid: 1, durationMs: 10 })
    const report: RunReport = {
      summary,
      tests,
      invalid: [{ file: '/p/broken.clnrm.toml', diagnostics: [{ code: 'CLNRM_INVALID_TYPE', severity: 'error', message: 'meta.name must be string', file: '/p/broken.clnrm.toml', line: 2, column: 8 }] }],
      skipped: [
        { file: '/p/b.clnrm.toml', name: 'b', reason: 'cancelled', message: 'cancelled by --fail-fast ("a" failed)' },
        { file: '/p/c.clnrm.toml', name: 'c', reason: 'not-run', message: 'not started: the run was stopped by --fail-fast ("a" failed)' },
      ],
    }
    const xml = formatJunitReport(report, '/p')
    expect(XMLValidator.validate(xml)).toBe(true)
    expect(xml).toMatch(/<testsuites name="clnrm" tests="4" failures="1" errors="1" skipped="2"/)
    expect(xml.match(/<failure /g)).toHaveLength(1)
    expect(xml.match(/<skipped message=/g)).toHaveLength(2)
    expect(xml).toContain('<error message="2:8 meta.name must be string" type="CLNRM_INVALID_TYPE">')
    expect(JSON.parse(formatJsonReport(report)).skipped.map((s: { reason: string }) => s.reason)).toEqual(['cancelled', 'not-run'])
  })
})
