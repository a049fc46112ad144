import { randomBytes } from 'node:crypto'
import { chmod, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { formatTestFile, isTemplateFile, PROJECT_FILE } from '../../core/index.ts'
import type { CommandDef } from '../command.ts'
import { EXIT } from '../errors.ts'
import { displayPath, plural } from '../output.ts'
import { openProject, resolveTestFiles } from '../project.ts'

/** `clnrm fmt`: canonical key order within tables, comments kept. */
export const fmtCommand: CommandDef = {
  name: 'fmt',
  args: '[paths...]',
  summary: 'Put the keys of every table in the format\'s order (name, service, run, expectations…), keeping comments.',
  details: 'Templates (*.eta) are left alone, since their text is not TOML yet. With --check, nothing is written and\nthe command exits 1 when a file would change.',
  examples: ['clnrm fmt', 'clnrm fmt --check tests/'],
  options: {
    check: { type: 'boolean', description: 'Only report files that are not formatted; exit 1 if any' },
  },
  async run(args, ctx) {
    const { c } = ctx
    const project = await openProject(args, ctx)
    const files = await resolveTestFiles(args.positionals, project, ctx)
    const check = args.options.check === true
    let unformatted = 0
    let failed = 0
    let skipped = 0
    for (const file of files) {
      const shown = displayPath(ctx, file)
      if (isTemplateFile(file)) {
        skipped++
        continue
      }
      const source = await readFile(file, 'utf8')
      const result = formatTestFile(source, basename(file) === PROJECT_FILE ? 'project' : 'test')
      if ('error' in result) {
        failed++
        ctx.stderr(`${c.red('✗')} ${shown}:${result.error.line}:${result.error.column} ${result.error.message}; not formatted\n`)
        continue
      }
      if (!result.changed) continue
      unformatted++
      if (check) ctx.stdout(`${c.yellow('would format')} ${shown}\n`)
      else {
        await writeAtomically(file, result.output)
        ctx.stdout(`${c.green('formatted')} ${shown}\n`)
      }
    }
    if (skipped) ctx.stderr(c.dim(`note: ${plural(skipped, 'template')} left alone (fmt formats TOML, not Eta)\n`))
    const verb = check ? 'need formatting' : 'formatted'
    ctx.stdout(`${plural(files.length - skipped, 'file')} checked, ${unformatted} ${verb}${failed ? `, ${failed} with syntax errors` : ''}\n`)
    return failed || (check && unformatted) ? EXIT.failure : EXIT.ok
  },
}

// Write beside the file and rename over it, so a crash mid-write never loses the user's file.
async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.${randomBytes(4).toString('hex')}.tmp`
  try {
    await writeFile(temp, text)
    await chmod(temp, (await stat(file)).mode)
    await rename(temp, file)
  }
  catch (error) {
    await rm(temp, { force: true })
    throw error
  }
}
