import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { createTemplateRenderer, isTemplateFile, TestFileError } from '../../core/index.ts'
import type { CommandDef } from '../command.ts'
import { REPORTER_OPTION, VAR_OPTION } from '../command.ts'
import { EXIT, UsageError } from '../errors.ts'
import { formatDiagnostic } from '../output.ts'
import { openProject } from '../project.ts'

/** `clnrm render`: print a template's TOML. */
export const renderCommand: CommandDef = {
  name: 'render',
  args: '<file>',
  summary: 'Print the TOML a *.clnrm.toml.eta template renders to.',
  details: 'Templates see the project\'s [vars], then the template\'s own [vars] table (both overridden by --var) as it.<name>, and the helpers env(), now(),\nsha256(), toml(), uuid() and fake.{name,email,int,word}. With --reporter json, the inputs the render\nread (partials, env vars) are printed too.',
  examples: ['clnrm render tests/api.clnrm.toml.eta --var port=8080'],
  options: { ...REPORTER_OPTION, ...VAR_OPTION },
  async run(args, ctx) {
    if (args.positionals.length !== 1) throw new UsageError('render takes exactly one file', 'Example: clnrm render tests/api.clnrm.toml.eta')
    const file = resolve(ctx.cwd, args.positionals[0]!)
    const project = await openProject(args, ctx)
    let source: string
    try {
      source = await readFile(file, 'utf8')
    }
    catch {
      throw new UsageError(`Cannot read ${file}`, 'Check the path.')
    }
    const json = args.options.reporter === 'json'
    if (!isTemplateFile(file)) {
      ctx.stdout(json ? `${JSON.stringify({ file, output: source, inputs: { template: file, partials: [], env: [] } }, null, 2)}\n` : source)
      return EXIT.ok
    }
    try {
      const { output, inputs } = createTemplateRenderer({ root: project.root, timeoutMs: project.renderTimeoutMs })
        .render({ file, source, vars: project.vars, overrides: project.varOverrides, determinism: project.determinism, env: ctx.env })
      const envNames = inputs.env.map(read => ({ name: read.name, set: read.value !== undefined }))
      ctx.stdout(json ? `${JSON.stringify({ file, output, inputs: { ...inputs, env: envNames } }, null, 2)}\n` : output)
      return EXIT.ok
    }
    catch (error) {
      if (!(error instanceof TestFileError)) throw error
      if (json) ctx.stdout(`${JSON.stringify({ file, diagnostics: error.diagnostics }, null, 2)}\n`)
      else for (const d of error.diagnostics) ctx.stderr(formatDiagnostic(ctx, d))
      return EXIT.failure
    }
  },
}
