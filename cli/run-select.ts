import { sep } from 'node:path'
import { createTestLoader } from '../core/index.ts'
import type { LoadedTestFile, Project } from '../core/index.ts'
import { affectedByModules, affectedTests, changedFiles } from './changed.ts'
import type { CommandArgs } from './command.ts'
import type { CommandContext } from './context.ts'
import { filterPath, matchFileFilters, splitPositionals } from './filters.ts'
import { LAST_FAILED_FILE, readLastFailed } from './last-failed.ts'
import { openProject, resolveTestFiles } from './project.ts'

/** The test files a run picked, or why it picked none. */
export type Selected =
  | { project: Project; results: LoadedTestFile[]; notes: string[] }
  | { project: Project; none: string; code: number }

/**
 * The test files `clnrm run` runs, chosen as Vitest chooses: paths (or the project's globs),
 * narrowed by substring filters, then by `--changed` and `--last-failed`. Loads them.
 */
export async function selectTestFiles(args: CommandArgs, ctx: CommandContext): Promise<Selected> {
  const { paths, filters } = splitPositionals(args.positionals, ctx.cwd)
  const pathArgs = { ...args, positionals: paths }
  const project = await openProject(pathArgs, ctx)
  const all = await resolveTestFiles(paths, project, ctx)
  let files = matchFileFilters(all, filters, project.root)
  const notes: string[] = []
  if (!files.length) {
    const shown = [`filter: ${filters.join(', ')}`, paths.length ? `paths: ${paths.join(', ')}` : `include: ${[project.tests].flat().join(', ')}`]
    return { project, none: `No test files found, exiting with code 1\n\n${shown.join('\n')}\n`, code: 1 }
  }

  const lastFailed = args.options['last-failed'] === true
  if (lastFailed) {
    const recorded = new Set(await readLastFailed(project.root) ?? [])
    const failed = files.filter(f => recorded.has(f))
    if (failed.length) files = failed
    else if (recorded.size) notes.push(`--last-failed: none of the ${recorded.size} failed test file${recorded.size === 1 ? '' : 's'} recorded in ${LAST_FAILED_FILE} is among these; running all ${files.length}`)
    else notes.push(`--last-failed: no failed test files recorded in ${LAST_FAILED_FILE}; running all ${files.length}`)
  }

  const loader = createTestLoader({ project, env: ctx.env })
  let results = await Promise.all(files.map(file => loader.load(file)))
  const changed = args.options.changed as string | undefined
  if (changed !== undefined) {
    const ref = changed || 'HEAD'
    const changedPaths = await changedFiles(project.root, ref)
    const touched = affectedTests(results, changedPaths, project.root)
    await affectedByModules(results, changedPaths, project.root, touched)
    results = results.filter(r => touched.has(r.file))
    if (!results.length) return { project, none: `No test files changed since ${ref}: nothing to run\n`, code: 0 }
    const indirect = results.filter(r => touched.get(r.file) !== 'changed')
    // The graph names inputs by absolute path: shown relative to the root, as the tests are.
    for (const r of indirect) notes.push(`--changed: ${filterPath(r.file, project.root)} (${touched.get(r.file)!.split(`${project.root}${sep}`).join('')})`)
  }
  return { project, results, notes }
}
