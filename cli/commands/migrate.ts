import { readFile, rm, stat, writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { glob } from 'tinyglobby'
import { unifiedDiff } from '../../core/migrate/diff.ts'
import { createTestLoader } from '../../core/index.ts'
import type { MigrationInput, MigrationStep } from '../../core/migrate/plan.ts'
import { planMigration } from '../../core/migrate/plan.ts'
import type { SchemaChange, SchemaChecker } from '../../core/migrate/schema.ts'
import { migrateSchema } from '../../core/migrate/schema.ts'
import type { CommandDef } from '../command.ts'
import type { CommandContext } from '../context.ts'
import { EXIT, UsageError } from '../errors.ts'
import { displayPath, plural } from '../output.ts'
import { openProject } from '../project.ts'

/** `clnrm migrate`: upstream clnrm's Tera templates → Eta, once. */
export const migrateCommand: CommandDef = {
  name: 'migrate',
  args: '<paths...>',
  summary: 'Rewrite upstream clnrm\'s test files: Tera templates as Eta (*.tera → *.eta, .toml with Tera → .toml.eta), cleanroom.toml → clnrm.toml, and the schema fixes.',
  details: [
    'Schema fixes, driven by `clnrm validate`: a service\'s `environment` becomes `env`; a plugin label clnrm',
    'refuses becomes plugin = "generic_container" when the service has an image; every key refused as unknown',
    'or not supported (a claim upstream dropped without checking it) becomes a `# not checked: key = value`',
    'comment, listed with file:line. A test file without Tera is rewritten in place.',
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
    const check = await schemaChecker(args, ctx)
    const steps = planMigration(inputs, { check })
    if (steps.length === 0) {
      ctx.stdout(`Nothing to migrate: no Tera and nothing clnrm would not check in ${plural(inputs.length, 'file')} read.\n`)
      return EXIT.ok
    }
    let todos = 0
    let refused = 0
    let written = 0
    for (const step of steps) {
      const from = displayPath(ctx, step.from)
      const to = displayPath(ctx, step.to)
      const inPlace = step.to === step.from
      if (!inPlace && await exists(step.to)) {
        refused++
        ctx.stderr(`${c.red('✗')} ${from}: ${to} already exists; not overwritten. Move it away and run again.\n`)
        continue
      }
      if (dryRun) ctx.stdout(unifiedDiff(inputs.find(i => i.path === step.from)!.text, step.output, `a/${from}`, `b/${to}`))
      else if (inPlace) {
        await writeFile(step.to, step.output)
        written++
        ctx.stdout(`${c.green('migrated')} ${from} (in place)\n`)
      }
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
    if (!dryRun) await recheckTemplates(steps, check)
    let notChecked = 0
    for (const step of steps) {
      for (const change of step.changes) {
        if (change.kind === 'not-checked') notChecked++
        ctx.stderr(`${change.kind === 'not-checked' ? c.yellow('not checked') : c.cyan('rewrote')} ${displayPath(ctx, step.to)}:${change.line}:${change.column} ${change.text}\n`)
      }
    }
    if (notChecked) ctx.stderr(`${plural(notChecked, 'claim')} upstream never checked ${notChecked === 1 ? 'is' : 'are'} now a \`# not checked:\` comment: write a step that checks ${notChecked === 1 ? 'it' : 'them'}, or delete the comment.\n`)
    const verb = dryRun ? 'would migrate' : 'migrated'
    ctx.stdout(`${plural(steps.length - refused, 'file')} ${dryRun ? verb : `${verb} (${written} written)`}${todos ? `, ${plural(todos, 'TODO')} left` : ''}${refused ? `, ${refused} refused` : ''}\n`)
    return todos || refused ? EXIT.failure : EXIT.ok
  },
}

// The real validator, with the project's vars and default image, as `clnrm validate` checks.
async function schemaChecker(args: Parameters<CommandDef['run']>[0], ctx: CommandContext): Promise<SchemaChecker> {
  const project = await openProject(args, ctx)
  const loader = createTestLoader({ project })
  return (file, text) => loader.loadSource(file, text).diagnostics
}

// A migrated template can import a partial migrated in the same run, which did not exist while
// planning: once everything is written, its schema fixes are made on the files themselves.
async function recheckTemplates(steps: MigrationStep[], check: SchemaChecker): Promise<void> {
  for (const step of steps) {
    if (step.reason !== 'tera-file' && step.reason !== 'tera-in-toml') continue
    if (!/\.toml\.eta$/.test(step.to) || /(?:^|[\\/])_[^\\/]*$/.test(step.to)) continue
    const text = await readFile(step.to, 'utf8').catch(() => undefined)
    if (text === undefined) continue
    const schema = migrateSchema(step.to, text, check)
    if (schema.output === text) continue
    await writeFile(step.to, schema.output)
    step.output = schema.output
    const seen = new Set(step.changes.map(key))
    step.changes.push(...schema.changes.filter(change => !seen.has(key(change))))
    step.todos.push(...schema.todos)
  }
}

function key(change: SchemaChange): string {
  return `${change.line}:${change.column}:${change.text}`
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
