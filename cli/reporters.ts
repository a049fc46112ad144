import { constants } from 'node:fs'
import { access, appendFile, stat, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { formatGithubAnnotations, formatGithubSummary, formatJsonReport, formatJunitReport } from '../core/index.ts'
import type { Diagnostic, ReportOptions, RunReport } from '../core/index.ts'
import type { CommandArgs } from './command.ts'
import type { CommandContext } from './context.ts'
import { UsageError } from './errors.ts'
import { displayPath } from './output.ts'

/** The reporters of `clnrm run`. `default` is the human output (`human` is its older name). */
export const REPORTER_NAMES = ['default', 'json', 'junit', 'github'] as const
/** One of `REPORTER_NAMES`. */
export type ReporterName = typeof REPORTER_NAMES[number]

/** A reporter of this run and the file it writes (absolute), or stdout when none. */
export interface ReporterPlan {
  name: ReporterName
  output?: string
}

/** The reporters of a run, and whether the human output streams to stdout. */
export interface Reporters {
  machine: ReporterPlan[]
  human: boolean
  /** The github reporter was added because `GITHUB_ACTIONS=true`. */
  autoGithub: boolean
}

const list = (value: unknown): string[] => (value === undefined ? [] : Array.isArray(value) ? value.map(String) : [String(value)])

/**
 * Reads `--reporter` (repeatable) and `--output` (`name=path` per reporter, or a bare path for the
 * single machine reporter). At most one reporter writes to stdout: json and junit without a file
 * take it from the human output, and cannot share it. Under `GITHUB_ACTIONS=true` the github
 * reporter joins the human output.
 */
export function planReporters(args: Pick<CommandArgs, 'options'>, ctx: Pick<CommandContext, 'cwd' | 'env'>): Reporters {
  const names: ReporterName[] = []
  for (const raw of list(args.options.reporter)) {
    const name = raw === 'human' ? 'default' : raw
    if (!(REPORTER_NAMES as readonly string[]).includes(name)) throw new UsageError(`Unknown reporter "${raw}"`, 'Use default, json, junit or github; repeat --reporter for several at once.')
    if (!names.includes(name as ReporterName)) names.push(name as ReporterName)
  }
  if (!names.length) names.push('default')
  const outputs = new Map<ReporterName, string>()
  for (const raw of list(args.options.output)) {
    const named = /^([a-z]+)=(.+)$/.exec(raw)
    const name = named?.[1] === 'human' ? 'default' : named?.[1]
    if (named && (REPORTER_NAMES as readonly string[]).includes(name!)) {
      if (name === 'default') throw new UsageError(`--output ${raw}: the default reporter writes to the terminal`, 'Give a file to json, junit or github: --output junit=junit.xml.')
      if (!names.includes(name as ReporterName)) throw new UsageError(`--output ${raw} names the ${name} reporter, which is not on`, `Add --reporter ${name}.`)
      outputs.set(name as ReporterName, resolve(ctx.cwd, named[2]!))
      continue
    }
    const machine = names.filter(n => n !== 'default')
    if (machine.length !== 1) {
      throw new UsageError(`--output ${raw}: ${machine.length ? 'several reporters could write it' : 'no reporter writes a file'}`, machine.length ? `Name the reporter: --output ${machine[0]}=${raw}.` : `Add --reporter junit (or json), or name it: --output junit=${raw}.`)
    }
    outputs.set(machine[0]!, resolve(ctx.cwd, raw))
  }
  const machine: ReporterPlan[] = names.filter(n => n !== 'default').map(name => ({ name, ...(outputs.has(name) && { output: outputs.get(name) }) }))
  // json and junit on stdout own it: nothing else may write there (a report must parse).
  const onStdout = machine.filter(r => !r.output && r.name !== 'github')
  const sharing = names.filter(n => !outputs.has(n) && n !== onStdout[0]?.name)
  if (onStdout.length && sharing.length) {
    const name = onStdout[0]!.name
    throw new UsageError(`--reporter ${name} writes to stdout, and so would ${sharing.map(n => (n === 'default' ? 'the default reporter' : n)).join(' and ')}`, `Give it a file: --output ${name}=report.${name === 'junit' ? 'xml' : 'json'}.`)
  }
  const human = onStdout.length === 0
  const autoGithub = human && ctx.env.GITHUB_ACTIONS === 'true' && !names.includes('github')
  if (autoGithub) machine.push({ name: 'github' })
  return { machine, human, autoGithub }
}

/** Every `--output` file: its directory must exist and be writable, and it must not be a directory. Checked before anything runs. */
export async function checkOutputPaths(ctx: CommandContext, reporters: Reporters): Promise<void> {
  for (const { output } of reporters.machine) if (output) await checkOutputPath(ctx, output)
}

async function checkOutputPath(ctx: CommandContext, path: string): Promise<void> {
  const dir = dirname(path)
  const shown = displayPath(ctx, path)
  const info = await stat(dir).catch(() => undefined)
  if (!info?.isDirectory()) throw new UsageError(`--output ${shown}: the directory ${displayPath(ctx, dir)} does not exist`, 'Create it first (mkdir -p), or write the report elsewhere.')
  try {
    await access(dir, constants.W_OK)
  }
  catch {
    throw new UsageError(`--output ${shown}: the directory ${displayPath(ctx, dir)} is not writable`, 'Write the report elsewhere.')
  }
  if ((await stat(path).catch(() => undefined))?.isDirectory()) throw new UsageError(`--output ${shown} is a directory`, 'Name a file, e.g. --output reports/junit.xml.')
}

/**
 * Writes every machine report: to its file, or stdout. The github reporter also appends its
 * Markdown summary to `$GITHUB_STEP_SUMMARY` when set. Returns false when a file could not be written.
 */
export async function writeReports(ctx: CommandContext, reporters: Reporters, report: RunReport, options: ReportOptions & { warnings: readonly Diagnostic[] }): Promise<boolean> {
  let ok = true
  const write = async (path: string, text: string, append = false): Promise<void> => {
    try {
      await (append ? appendFile(path, text) : writeFile(path, text))
    }
    catch (error) {
      ctx.stderr(`${ctx.c.red('error')} could not write the report to ${displayPath(ctx, path)}: ${(error as Error).message}\n`)
      ok = false
    }
  }
  for (const { name, output } of reporters.machine) {
    const github = { ...options, workspace: ctx.env.GITHUB_WORKSPACE }
    const text = name === 'json' ? formatJsonReport(report, options) : name === 'junit' ? formatJunitReport(report, options) : formatGithubAnnotations(report, github)
    if (output) await write(output, text)
    else ctx.stdout(text)
    const summaryFile = ctx.env.GITHUB_STEP_SUMMARY
    if (name === 'github' && summaryFile) await write(summaryFile, formatGithubSummary(report, github), true)
  }
  return ok
}
