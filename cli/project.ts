import { existsSync, statSync } from 'node:fs'
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import { createTestLoader, discoverTestFiles, findProjectRoot, globTestFiles, loadProject, parseDuration, parseVarArgs, PROJECT_FILE } from '../core/index.ts'
import type { LoadedTestFile, Project } from '../core/index.ts'
import type { CommandArgs } from './command.ts'
import type { CommandContext } from './context.ts'
import { UsageError } from './errors.ts'

/** Loads the project for a command: `--root`, `--var`, and `clnrm.toml`. A broken project file throws (exit 2). */
export async function openProject(args: CommandArgs, ctx: CommandContext): Promise<Project> {
  return loadProject({ root: projectRootFor(args, ctx), vars: varsFrom(args), renderTimeoutMs: renderTimeoutFrom(args) })
}

/** `--render-timeout 5s`; a malformed one is a usage error. */
export function renderTimeoutFrom(args: CommandArgs): number | undefined {
  const raw = args.options['render-timeout'] as string | undefined
  if (raw === undefined) return undefined
  const ms = parseDuration(raw)
  if (ms === undefined || ms < 1) throw new UsageError(`--render-timeout expects a duration, got "${raw}"`, 'Example: --render-timeout 5s (or 500ms).')
  return ms
}

/** `--var key=value` arguments; a malformed one is a usage error. */
export function varsFrom(args: CommandArgs): Record<string, string> {
  try {
    return parseVarArgs((args.options.var as string[] | undefined) ?? [])
  }
  catch (error) {
    throw new UsageError((error as Error).message, 'Write --var name=value.')
  }
}

/**
 * The project root for a command: `--root`, else the nearest directory holding clnrm.toml above
 * the first path (`clnrm validate examples/` picks up examples/clnrm.toml from anywhere), else
 * above the working directory. Without clnrm.toml it is the working directory, as upstream's;
 * only a first path outside the working directory makes its own directory the root.
 */
export function projectRootFor(args: CommandArgs, ctx: Pick<CommandContext, 'cwd'>): string {
  if (args.options.root !== undefined) return resolve(ctx.cwd, args.options.root as string)
  const cwd = resolve(ctx.cwd)
  const first = args.positionals[0]
  const start = first ? searchStart(resolve(cwd, first)) : cwd
  const found = findProjectRoot(start)
  if (existsSync(join(found, PROJECT_FILE))) return found
  // `clnrm run tests/a.clnrm.toml` from the project: volumes and includes may reach `../data`,
  // beside tests/, as they do when every test runs. A path elsewhere cannot have cwd as its root.
  const rel = relative(cwd, start)
  return rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel) ? start : cwd
}

function searchStart(path: string): string {
  try {
    return statSync(path).isDirectory() ? path : dirname(path)
  }
  catch {
    return dirname(path)
  }
}

/** The test files a command works on: its paths, or the project's test globs when none are given. */
export async function resolveTestFiles(paths: readonly string[], project: Project, ctx: CommandContext): Promise<string[]> {
  if (paths.length === 0) {
    const files = await globTestFiles(project.tests, project.root)
    if (files.length === 0) throw new UsageError(`No test files under ${project.root}`, 'Name files or directories, or create one with `clnrm init`.')
    return files
  }
  const { files, unmatched } = await discoverTestFiles(paths, ctx.cwd)
  if (unmatched.length) {
    throw new UsageError(`No test files match: ${unmatched.join(', ')}`, 'Pass *.clnrm.toml or *.clnrm.toml.eta files, directories holding them, or globs.')
  }
  return files
}

/** Opens the project and loads every test file a command names (or the project's, without paths). */
export async function loadTestFiles(args: CommandArgs, ctx: CommandContext): Promise<{ project: Project; results: LoadedTestFile[] }> {
  const project = await openProject(args, ctx)
  const files = await resolveTestFiles(args.positionals, project, ctx)
  const loader = createTestLoader({ project, env: ctx.env })
  return { project, results: await Promise.all(files.map(file => loader.load(file))) }
}
