import { readdir, readFile, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { formatDuration, mergeReports, parseJsonReport, ReportReadError } from '../../core/index.ts'
import type { ReportInput } from '../../core/index.ts'
import type { CommandDef } from '../command.ts'
import type { CommandContext } from '../context.ts'
import { EXIT, UsageError } from '../errors.ts'
import { displayPath, plural } from '../output.ts'
import { projectRootFor } from '../project.ts'
import { checkOutputPaths, planReporters, writeReports } from '../reporters.ts'
import { formatInvalidFile, formatSkippedTest, formatSummary, formatTestResult } from '../run-output.ts'

/** Every `.json` file under a directory (artifact downloads nest one directory per shard), sorted. */
async function jsonFilesUnder(dir: string): Promise<string[]> {
  const files: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) files.push(...await jsonFilesUnder(path))
    else if (entry.isFile() && entry.name.endsWith('.json')) files.push(path)
  }
  return files.sort()
}

/** The report files the arguments name: files as given, directories searched. A path that does not exist is a usage error. */
async function reportFiles(ctx: CommandContext, positionals: readonly string[]): Promise<string[]> {
  const files: string[] = []
  for (const raw of positionals) {
    const path = resolve(ctx.cwd, raw)
    const info = await stat(path).catch(() => undefined)
    if (!info) throw new UsageError(`${raw} does not exist`, 'Name the JSON reports of every shard, or the directory they were downloaded to.')
    if (!info.isDirectory()) files.push(path)
    else {
      const found = await jsonFilesUnder(path)
      if (!found.length) throw new UsageError(`No .json report under ${displayPath(ctx, path)}`, 'Run each shard with --reporter json --output json=<file> and collect the files there.')
      files.push(...found)
    }
  }
  return [...new Set(files)]
}

/** `clnrm merge-reports`: the JSON reports of a sharded run → one JSON, JUnit, GitHub and human report. */
export const mergeReportsCommand: CommandDef = {
  name: 'merge-reports',
  args: '<dir|files...>',
  summary: 'Merge the JSON reports of sharded runs (--shard i/n) into one report: JSON, JUnit, GitHub, summary.',
  details: [
    'Reads the JSON reports `clnrm run --shard i/n --reporter json --output json=<file>` wrote, on one',
    'machine or many; a directory is searched for .json files (an artifact download holds one folder per',
    'shard). Tests, counts and durations are merged: the duration is the longest shard\'s (the wall time),',
    'and the summary also gives the sum of all shards. It warns when a test file is in two reports, when a',
    'shard is missing or repeated, and when the reports come from different shard counts.',
    'Paths in the reports are relative to the project root they ran under, and are read relative to this',
    'project\'s root (--root, else the nearest clnrm.toml, else the working directory).',
    'Exit code 1 when a merged test failed, could not run, or a file was invalid; 2 when a report cannot be read.',
  ].join('\n'),
  examples: [
    'clnrm merge-reports reports/',
    'clnrm merge-reports shard-1.json shard-2.json --reporter json --output merged.json',
    'clnrm merge-reports reports/ --reporter default --reporter junit --output junit=junit.xml',
  ],
  options: {
    reporter: { type: 'string', multiple: true, value: '<name>', description: 'default, json, junit or github; repeatable (default: default)' },
    output: { type: 'string', short: 'o', multiple: true, value: '<file>', description: 'Write the json/junit report to a file; with several reporters, name one: junit=path (repeatable); its directory must exist' },
  },
  async run(args, ctx) {
    if (!args.positionals.length) throw new UsageError('merge-reports needs the JSON reports to merge', 'Example: clnrm merge-reports reports/ (a directory of shard reports) or shard-1.json shard-2.json.')
    const reporters = planReporters(args, ctx)
    await checkOutputPaths(ctx, reporters)
    const root = projectRootFor({ ...args, positionals: [] }, ctx)
    // A merged report written into the directory it merges is not a shard of the next merge.
    const outputs = new Set(reporters.machine.map(r => r.output).filter(Boolean))
    const files = (await reportFiles(ctx, args.positionals)).filter(file => !outputs.has(file))
    if (!files.length) throw new UsageError('No report to merge: the only .json files named are this merge\'s own --output', 'Write the merged report outside the directory of shard reports.')
    const inputs: ReportInput[] = []
    for (const file of files) {
      try {
        const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
          throw new ReportReadError(file, `cannot be read: ${error.code ?? error.message}`, 'Check the path and its permissions.')
        })
        inputs.push(parseJsonReport(file, text, root))
      }
      catch (error) {
        if (!(error instanceof ReportReadError)) throw error
        ctx.stderr(`${ctx.c.red('error')} ${displayPath(ctx, error.file)}: ${error.message}\n${ctx.c.cyan('hint:')} ${error.hint}\n`)
        return EXIT.usage
      }
    }
    const merged = mergeReports(inputs, file => displayPath(ctx, file))
    for (const warning of merged.warnings) ctx.stderr(`${ctx.c.yellow('warning')} ${warning}\n`)
    const { report } = merged

    if (reporters.human) {
      for (const test of report.tests) ctx.stdout(formatTestResult(ctx, test))
      for (const invalid of report.invalid) ctx.stdout(formatInvalidFile(ctx, invalid.file, invalid.diagnostics))
      for (const skipped of report.skipped) ctx.stdout(formatSkippedTest(ctx, skipped))
      const shards = merged.shards.map(s => (s.shard ? `${s.shard.index}/${s.shard.total}` : displayPath(ctx, s.file)))
      const note = `merged ${plural(inputs.length, 'report')} (${shards.join(', ')}); wall ${formatDuration(merged.wallMs)}, ${formatDuration(merged.totalMs)} across shards`
      ctx.stdout(formatSummary(ctx, report.summary, [note]))
    }
    if (reporters.machine.length && !await writeReports(ctx, reporters, report, { root, warnings: [] })) return EXIT.usage
    const { summary } = report
    return summary.failed || summary.errors || summary.invalid ? EXIT.failure : EXIT.ok
  },
}
