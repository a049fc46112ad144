import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnCli } from './cli-process.ts'
import type { CliProcess } from './cli-process.ts'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'

/** A test file: a named test with steps `[name, run]`. */
const testFile = (name: string, steps: Array<[string, string]>): string =>
  `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\n${steps.map(([step, run]) => `\n[[steps]]\nname = "${step}"\nrun = "${run}"\n`).join('')}`

/** Runs the built CLI to its end; checks it removed every container it started. */
async function cli(dir: string, args: string[]): Promise<CliProcess & { code: number | null }> {
  // Outside GitHub Actions: the github reporter would join the default one.
  const child = spawnCli(args, dir, { env: { GITHUB_ACTIONS: '', GITHUB_STEP_SUMMARY: '' } })
  const exit = await child.exited
  expect(exit.ms).toBeLessThan(60_000)
  expect(clnrmContainers(child.pid)).toEqual([])
  return Object.assign(child, { code: exit.code })
}

interface JsonReport {
  version: number
  shard?: { index: number; total: number }
  summary: { total: number; passed: number; failed: number; errors: number; skipped: number; invalid: number; durationMs: number }
  tests: Array<{ file: string; name: string; status: string }>
  merged?: { reports: Array<{ file: string; shard?: { index: number; total: number }; durationMs: number }>; wallMs: number; totalMs: number }
}
const readJson = async (path: string): Promise<JsonReport> => JSON.parse(await readFile(path, 'utf8')) as JsonReport

describe('clnrm merge-reports (built CLI, real engine)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  /** The non-sharded run, and the two shards, all as JSON reports in dir/reports. */
  let whole: JsonReport
  let shards: JsonReport[]

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir())
    await mkdir(join(dir, 'tests'), { recursive: true })
    await writeFile(join(dir, 'clnrm.toml'), 'tests = ["tests/**/*.clnrm.toml"]\n')
    await writeFile(join(dir, 'tests/a-login.clnrm.toml'), testFile('login', [['ok', 'true']]))
    await writeFile(join(dir, 'tests/b-cart.clnrm.toml'), testFile('cart', [['ok', 'true'], ['total', 'echo total; exit 3']]))
    await writeFile(join(dir, 'tests/c-search.clnrm.toml'), testFile('search', [['ok', 'echo found']]))
    await writeFile(join(dir, 'tests/d-home.clnrm.toml'), testFile('home', [['ok', 'true']]))
    await mkdir(join(dir, 'reports/shard-1'), { recursive: true })
    await mkdir(join(dir, 'reports/shard-2'), { recursive: true })
    // As CI runs them: each shard writes its JSON (in a folder of its own, as artifact downloads do).
    const [one, two, all] = await Promise.all([
      cli(dir, ['run', '--shard', '1/2', '--reporter', 'json', '--output', 'json=reports/shard-1/a.json']),
      cli(dir, ['run', '--shard', '2/2', '--reporter', 'json', '--output', 'json=reports/shard-2/b.json']),
      cli(dir, ['run', '--reporter', 'json', '--output', 'json=whole.json']),
    ])
    // The failing test (cart, 2nd file) is in shard 2 only.
    expect([one.code, two.code, all.code]).toEqual([0, 1, 1])
    shards = await Promise.all([readJson(join(dir, 'reports/shard-1/a.json')), readJson(join(dir, 'reports/shard-2/b.json'))])
    whole = await readJson(join(dir, 'whole.json'))
  }, 120_000)
  afterAll(() => cleanup())

  it('clnrm run --shard writes its shard into the JSON report; a run without --shard does not', () => {
    expect(shards.map(s => s.shard)).toEqual([{ index: 1, total: 2 }, { index: 2, total: 2 }])
    expect(whole.shard).toBeUndefined()
  })

  it('merges the shards of a directory into one JSON whose counts equal the non-sharded run\'s, and exits 1 for the failed test', async () => {
    const merged = await cli(dir, ['merge-reports', 'reports/', '--reporter', 'json', '--output', 'json=merged.json'])
    expect(merged.code).toBe(1)
    expect(merged.stderr()).toBe('')
    const json = await readJson(join(dir, 'merged.json'))
    const { durationMs: _, ...counts } = json.summary
    const { durationMs: __, ...wholeCounts } = whole.summary
    expect(counts).toEqual(wholeCounts)
    expect(counts).toMatchObject({ total: 4, passed: 3, failed: 1 })
    const byName = (r: JsonReport): string[] => r.tests.map(t => `${t.file} ${t.name} ${t.status}`).sort()
    expect(byName(json)).toEqual(byName(whole))
    // The wall time is the longest shard's, not their sum; the sum is kept beside it.
    const wall = Math.max(...shards.map(s => s.summary.durationMs))
    expect(json.summary.durationMs).toBe(wall)
    expect(json.merged).toEqual({
      reports: [{ file: 'reports/shard-1/a.json', shard: { index: 1, total: 2 }, durationMs: shards[0]!.summary.durationMs }, { file: 'reports/shard-2/b.json', shard: { index: 2, total: 2 }, durationMs: shards[1]!.summary.durationMs }],
      wallMs: wall,
      totalMs: shards[0]!.summary.durationMs + shards[1]!.summary.durationMs,
    })
    expect(json.version).toBe(1)
  })

  it('prints the human summary with every test, the failure, the shards and both durations', async () => {
    const merged = await cli(dir, ['merge-reports', 'reports/shard-1/a.json', 'reports/shard-2/b.json'])
    expect(merged.code).toBe(1)
    const out = merged.stdout()
    expect(out).toMatch(/✓ login tests\/a-login\.clnrm\.toml/)
    expect(out).toMatch(/✗ cart tests\/b-cart\.clnrm\.toml/)
    expect(out).toMatch(/✗ step "total" in box: .*exit/)
    expect(out).toMatch(/Tests: 3 passed, 1 failed \(4\) in /)
    expect(out).toMatch(/merged 2 reports \(1\/2, 2\/2\); wall \S+, \S+ across shards/)
  })

  it('writes valid JUnit (parsed) with the merged counts, beside the human output', async () => {
    const merged = await cli(dir, ['merge-reports', 'reports/', '--reporter', 'default', '--reporter', 'junit', '--output', 'junit=junit.xml'])
    expect(merged.code).toBe(1)
    expect(merged.stdout()).toMatch(/Tests: 3 passed, 1 failed \(4\)/)
    const xml = await readFile(join(dir, 'junit.xml'), 'utf8')
    expect(XMLValidator.validate(xml)).toBe(true)
    const doc = new XMLParser({ ignoreAttributes: false }).parse(xml) as { testsuites: { '@_tests': string; '@_failures': string; 'testsuite': Array<{ '@_name': string; '@_file': string; '@_failures': string }> } }
    expect(doc.testsuites['@_tests']).toBe('4')
    expect(doc.testsuites['@_failures']).toBe('1')
    const suites = doc.testsuites.testsuite.map(s => `${s['@_file']} ${s['@_name']} ${s['@_failures']}`).sort()
    expect(suites).toEqual(['tests/a-login.clnrm.toml login 0', 'tests/b-cart.clnrm.toml cart 1', 'tests/c-search.clnrm.toml search 0', 'tests/d-home.clnrm.toml home 0'])
  })

  it('does not read its own output as a shard when it writes into the directory it merges (run twice)', async () => {
    for (let i = 0; i < 2; i++) {
      const merged = await cli(dir, ['merge-reports', 'reports/', '--reporter', 'json', '--output', 'json=reports/merged.json'])
      expect(merged.code).toBe(1)
      expect(merged.stderr()).toBe('')
      expect((await readJson(join(dir, 'reports/merged.json'))).summary).toMatchObject({ total: 4, passed: 3, failed: 1 })
    }
    await rm(join(dir, 'reports/merged.json'))
  })

  it('exits 0 when every merged test passed', async () => {
    const merged = await cli(dir, ['merge-reports', 'reports/shard-1/a.json'])
    // One shard of two: it passes, and says the other is missing.
    expect(merged.code).toBe(0)
    expect(merged.stdout()).toMatch(/Tests: 2 passed \(2\)/)
    expect(merged.stderr()).toMatch(/warning missing shard 2\/2: the merged report does not hold every test/)
  })

  it('warns about a test file in two reports and a repeated shard', async () => {
    const merged = await cli(dir, ['merge-reports', 'reports/', 'whole.json', 'reports/shard-1/a.json'])
    expect(merged.code).toBe(1)
    const err = merged.stderr()
    expect(err).toMatch(/warning test file tests\/a-login\.clnrm\.toml is in 2 reports \(reports\/shard-1\/a\.json, whole\.json\)/)
    expect(err).toMatch(/warning test file tests\/b-cart\.clnrm\.toml is in 2 reports \(reports\/shard-2\/b\.json, whole\.json\)/)
    expect(err).toMatch(/warning whole\.json is not from a sharded run/)
    // The same file named twice is read once.
    expect(err).not.toMatch(/shard 1\/2 is in 2 reports/)
    await writeFile(join(dir, 'copy.json'), await readFile(join(dir, 'reports/shard-1/a.json')))
    const twice = await cli(dir, ['merge-reports', 'reports/', 'copy.json'])
    expect(twice.stderr()).toMatch(/warning shard 1\/2 is in 2 reports \(reports\/shard-1\/a\.json, copy\.json\)/)
  })

  it('exits 2 naming the file on unreadable input: not JSON, not a report, another format version, a missing path', async () => {
    await writeFile(join(dir, 'broken.json'), '{"version": 1, "summary": ')
    await writeFile(join(dir, 'other.json'), '{"name": "not a report"}')
    await writeFile(join(dir, 'future.json'), JSON.stringify({ ...shards[0], version: 2 }))
    const broken = await cli(dir, ['merge-reports', 'reports/', 'broken.json'])
    expect(broken.code).toBe(2)
    expect(broken.stderr()).toMatch(/^error broken\.json: not JSON: /m)
    expect(broken.stdout()).toBe('')
    const other = await cli(dir, ['merge-reports', 'other.json'])
    expect(other.code).toBe(2)
    expect(other.stderr()).toMatch(/error other\.json: report format version undefined, this clnrm reads version 1/)
    const future = await cli(dir, ['merge-reports', 'future.json'])
    expect(future.code).toBe(2)
    expect(future.stderr()).toMatch(/error future\.json: report format version 2/)
    const missing = await cli(dir, ['merge-reports', 'nowhere/'])
    expect(missing.code).toBe(2)
    expect(missing.stderr()).toMatch(/error nowhere\/ does not exist/)
    const none = await cli(dir, ['merge-reports'])
    expect(none.code).toBe(2)
    expect(none.stderr()).toMatch(/merge-reports needs the JSON reports to merge/)
  })
})
