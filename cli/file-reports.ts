import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { formatJsonReport, formatJunitReport, summarize } from '../core/index.ts'
import type { RunReport, TestSpec } from '../core/index.ts'
import type { CommandContext } from './context.ts'
import { displayPath } from './output.ts'

/**
 * Two test files whose `[report]` names the same file would overwrite each other's results:
 * said before anything runs, as for `--output`.
 */
export function fileReportConflict(specs: readonly TestSpec[]): string | undefined {
  const owners = new Map<string, string>()
  for (const spec of specs) {
    for (const path of Object.values(spec.report ?? {})) {
      const owner = owners.get(path)
      if (owner !== undefined && owner !== spec.file) return `${path} is the [report] of both ${owner} and ${spec.file}`
      owners.set(path, spec.file)
    }
  }
  return undefined
}

/** The digest upstream writes: SHA-256 (hex) of the spans the tests were judged on, as JSON. */
export function spansDigest(report: Pick<RunReport, 'tests'>): string {
  const spans = report.tests.flatMap(test => test.spans?.spans ?? [])
  return createHash('sha256').update(JSON.stringify(spans)).digest('hex')
}

/**
 * Writes each test file's own `[report]` after `clnrm run`: its tests (every `[matrix]`
 * combination) as the json and junit reporters write them, and the spans' digest. Returns false
 * when a report could not be written (said on stderr).
 */
export async function writeFileReports(ctx: CommandContext, specs: readonly TestSpec[], report: RunReport, root: string): Promise<boolean> {
  let ok = true
  for (const spec of specs) {
    if (!spec.report) continue
    const tests = report.tests.filter(t => t.file === spec.file)
    const skipped = report.skipped.filter(s => s.file === spec.file)
    const own: RunReport = { summary: summarize(tests, { skipped: skipped.length }, tests.reduce((ms, t) => ms + t.durationMs, 0)), tests, invalid: [], skipped }
    const contents: Array<[string | undefined, () => string]> = [
      [spec.report.json, () => formatJsonReport(own, { root })],
      [spec.report.junit, () => formatJunitReport(own, { root })],
      [spec.report.digest, () => `${spansDigest(own)}\n`],
    ]
    for (const [path, text] of contents) {
      if (path === undefined) continue
      try {
        await mkdir(dirname(path), { recursive: true })
        await writeFile(path, text())
        ctx.stderr(ctx.c.dim(`[report] wrote ${displayPath(ctx, path)}\n`))
      }
      catch (error) {
        ctx.stderr(`${ctx.c.red('error')} could not write the [report] of ${displayPath(ctx, spec.file)} to ${displayPath(ctx, path)}: ${(error as Error).message}\n`)
        ok = false
      }
    }
  }
  return ok
}
