import { hasErrors } from '../../core/index.ts'
import type { Diagnostic, LoadedTestFile } from '../../core/index.ts'
import type { CommandDef } from '../command.ts'
import { REPORTER_OPTION, VAR_OPTION } from '../command.ts'
import type { CommandContext } from '../context.ts'
import { EXIT } from '../errors.ts'
import { displayPath, formatDiagnostic, plural, printable } from '../output.ts'
import { loadTestFiles } from '../project.ts'

/** `clnrm validate`: render, parse and check test files. */
export const validateCommand: CommandDef = {
  name: 'validate',
  args: '[paths...]',
  summary: 'Check test files (and render templates) without running anything.',
  details: 'Paths may be files, directories (searched for *.clnrm.toml and *.clnrm.toml.eta) or globs.\nWithout paths, the project\'s test files are checked. Exits 1 when any file has errors.',
  examples: ['clnrm validate tests/', 'clnrm validate "tests/**/*.clnrm.toml" --reporter json'],
  options: { ...REPORTER_OPTION, ...VAR_OPTION },
  async run(args, ctx) {
    const { project, results } = await loadTestFiles(args, ctx)
    const diagnostics = [...project.warnings, ...results.flatMap(r => r.diagnostics)]
    if (args.options.reporter === 'json') ctx.stdout(`${JSON.stringify(validationReport(results, project.warnings), null, 2)}\n`)
    else printHuman(ctx, results, project.warnings)
    return hasErrors(diagnostics) ? EXIT.failure : EXIT.ok
  },
}

/** The JSON shape of `validate --reporter json`. */
export function validationReport(results: readonly LoadedTestFile[], projectWarnings: readonly Diagnostic[] = []): object {
  const count = (severity: Diagnostic['severity']): number =>
    [...projectWarnings, ...results.flatMap(r => r.diagnostics)].filter(d => d.severity === severity).length
  return {
    files: results.map(r => ({ file: r.file, valid: !hasErrors(r.diagnostics), name: r.spec?.name, diagnostics: r.diagnostics })),
    project: { diagnostics: projectWarnings },
    summary: {
      files: results.length,
      valid: results.filter(r => !hasErrors(r.diagnostics)).length,
      invalid: results.filter(r => hasErrors(r.diagnostics)).length,
      errors: count('error'),
      warnings: count('warning'),
    },
  }
}

function printHuman(ctx: CommandContext, results: readonly LoadedTestFile[], projectWarnings: readonly Diagnostic[]): void {
  const { c } = ctx
  for (const warning of projectWarnings) ctx.stderr(formatDiagnostic(ctx, warning))
  let errors = 0
  let warnings = projectWarnings.length
  for (const result of results) {
    const failed = hasErrors(result.diagnostics)
    const combinations = result.spec?.variants ? ` (${result.spec.variants.length} [matrix] combinations)` : ''
    const label = result.spec ? c.dim(` ${printable(result.spec.name)}${combinations}`) : ''
    ctx.stdout(`${failed ? c.red('✗') : c.green('✓')} ${displayPath(ctx, result.file)}${label}\n`)
    for (const d of result.diagnostics) {
      if (d.severity === 'error') errors++
      else warnings++
      ctx.stdout(indent(formatDiagnostic(ctx, d)))
    }
  }
  const invalid = results.filter(r => hasErrors(r.diagnostics)).length
  const summary = `${plural(results.length, 'file')}: ${results.length - invalid} valid, ${invalid} invalid (${plural(errors, 'error')}, ${plural(warnings, 'warning')})`
  ctx.stdout(`\n${invalid ? c.red(summary) : c.green(summary)}\n`)
}

function indent(text: string): string {
  return text.replace(/^(?=.)/gm, '  ')
}
