import { readFile, rm, stat, writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { glob } from 'tinyglobby'
import { unifiedDiff } from '../../core/migrate/diff.ts'
import type { MigrationInput } from '../../core/migrate/plan.ts'
import { planMigration } from '../../core/migrate/plan.ts'
import type { CommandDef } from '../command.ts'
import type { CommandContext } from '../context.ts'
import { EXIT, UsageError } from '../errors.ts'
import { displayPath, plural } from '../output.ts'

/** `clnrm migrate`: upstream clnrm's Tera templates → Eta, once. */
export const migrateCommand: CommandDef = {
  name: 'migrate',
  args: '<paths...>',
  summary: 'Rewrite upstream clnrm\'s Tera templates as Eta (*.tera → *.eta, .toml with Tera → .toml.eta, cleanroom.toml → clnrm.toml).',
  details: [
    'Translates {{ x }}, filters (default, upper, slugify…), env(name=…), if/elif/else, for … in (range(),',
    'k, v pairs, loop.*), set, {# comments #}, whitespace control, and {% import "…" as m %} with m::name(…)',
    'calls (the macro file becomes a partial of functions). What it cannot translate is kept behind a',
    '`TODO(clnrm migrate) line:col` comment and listed. The original is replaced by the renamed file; a file',
    'already at the new name is never overwritten. With --dry-run, a diff is printed and nothing is written.',
    'Exits 1 when a TODO was left or a file was refused, so a script notices.',
  ].join('\n'),
  examples: ['clnrm migrate tests/', 'clnrm migrate --dry-run tests/api.clnrm.toml.tera'],
  options: {
    'dry-run': { type: 'boolean', description: 'Print a unified diff of every change; write nothing' },
  },
  async run(args, ctx) {
    const { c } = ctx
    if (args.positionals.length === 0) throw new UsageError('migrate needs the files or directories to migrate', 'Example: clnrm migrate tests/')
    const dryRun = args.options['dry-run'] === true
    const inputs = await collect(args.positionals, ctx)
    const steps = planMigration(inputs)
    if (steps.length === 0) {
      ctx.stdout(`Nothing to migrate: no Tera in ${plural(inputs.length, 'file')} read.\n`)
      return EXIT.ok
    }
    let todos = 0
    let refused = 0
    let written = 0
    for (const step of steps) {
      const from = displayPath(ctx, step.from)
      const to = displayPath(ctx, step.to)
      if (await exists(step.to)) {
        refused++
        ctx.stderr(`${c.red('✗')} ${from}: ${to} already exists; not overwritten. Move it away and run again.\n`)
        continue
      }
      if (dryRun) ctx.stdout(unifiedDiff(inputs.find(i => i.path === step.from)!.text, step.output, `a/${from}`, `b/${to}`))
      else {
        // `wx`: fails instead of replacing a file that appeared since the check above.
        await writeFile(step.to, step.output, { flag: 'wx', mode: (await stat(step.from)).mode })
        await rm(step.from)
        written++
        ctx.stdout(`${c.green('migrated')} ${from} → ${to}\n`)
      }
      for (const todo of step.todos) {
        todos++
        ctx.stderr(`${c.yellow('TODO')} ${from}:${todo.line}:${todo.column} ${todo.message}${todo.source ? `: ${todo.source.split('\n')[0]}` : ''}\n`)
      }
    }
    const verb = dryRun ? 'would migrate' : 'migrated'
    ctx.stdout(`${plural(steps.length - refused, 'file')} ${dryRun ? verb : `${verb} (${written} written)`}${todos ? `, ${plural(todos, 'TODO')} left` : ''}${refused ? `, ${refused} refused` : ''}\n`)
    return todos || refused ? EXIT.failure : EXIT.ok
  },
}

async function collect(paths: readonly string[], ctx: CommandContext): Promise<MigrationInput[]> {
  const files = new Set<string>()
  for (const path of paths) {
    const absolute = resolve(ctx.cwd, path)
    const info = await stat(absolute).catch(() => undefined)
    if (!info) throw new UsageError(`No such file or directory: ${path}`, 'Name Tera files (*.tera, *.toml) or directories holding them.')
    if (info.isDirectory()) {
      for (const file of await glob(['**/*.tera', '**/*.toml'], { cwd: absolute, absolute: true, ignore: ['**/node_modules/**', '**/.git/**'] })) files.add(file)
    }
    else files.add(absolute)
  }
  return Promise.all([...files].sort().map(async path => ({ path, text: await readFile(path, 'utf8') })))
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false)
}
