import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { checkLiteralMatrix, combinationLabel, createTemplateRenderer, isTemplateFile, matrixCombinations, TestFileError } from '../../core/index.ts'
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
  details: 'Templates see the project\'s [vars], then the template\'s own [vars] table (both overridden by --var) as it.<name>, and the helpers env(), now(),\nsha256(), toml(), uuid() and fake.{name,email,int,word}. With --reporter json, the inputs the render\nread (partials, env vars) are printed too. A [matrix] template renders once per combination, each under a\n# [key=value] comment (with --reporter json, in renders).',
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
      const renderer = createTemplateRenderer({ root: project.root, timeoutMs: project.renderTimeoutMs })
      const request = { file, source, vars: project.vars, overrides: project.varOverrides, determinism: project.determinism, env: ctx.env }
      // A [matrix] template renders once per combination: each is shown under a comment naming it.
      const literal = renderer.readTable(request, 'matrix')
      const matrix = literal?.value === undefined ? undefined : checkLiteralMatrix(file, literal)
      if (matrix && !matrix.values) throw new TestFileError(matrix.diagnostics)
      const renders = (matrix?.values ? matrixCombinations(matrix.values) : [undefined]).map((combination) => {
        const rendered = renderer.render(combination ? { ...request, matrix: combination } : request)
        return { ...(combination && { matrix: combination }), output: rendered.output, inputs: rendered.inputs }
      })
      const output = renders.map(r => (r.matrix ? `# ${combinationLabel(r.matrix)}\n${r.output}` : r.output)).join('\n')
      const inputs = renders[0]!.inputs
      const envNames = [...new Map(renders.flatMap(r => r.inputs.env).map(read => [read.name, { name: read.name, set: read.value !== undefined }])).values()]
      const partials = [...new Set(renders.flatMap(r => r.inputs.partials))]
      const matrixRenders = matrix ? { renders: renders.map(r => ({ matrix: r.matrix, output: r.output })) } : {}
      ctx.stdout(json ? `${JSON.stringify({ file, output, ...matrixRenders, inputs: { ...inputs, partials, env: envNames } }, null, 2)}\n` : output)
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
