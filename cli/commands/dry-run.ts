import { createPlan, formatDuration, hasErrors } from '../../core/index.ts'
import type { TestPlan } from '../../core/index.ts'
import type { CommandDef } from '../command.ts'
import { REPORTER_OPTION, VAR_OPTION } from '../command.ts'
import type { CommandContext } from '../context.ts'
import { EXIT } from '../errors.ts'
import { displayPath, formatDiagnostic, printable } from '../output.ts'
import { loadTestFiles } from '../project.ts'

/** `clnrm dry-run`: everything `run` does before starting a container. */
export const dryRunCommand: CommandDef = {
  name: 'dry-run',
  args: '[paths...]',
  summary: 'Validate test files and print what `clnrm run` would start and execute, without starting containers.',
  examples: ['clnrm dry-run tests/api.clnrm.toml', 'clnrm dry-run tests/ --reporter json'],
  options: { ...REPORTER_OPTION, ...VAR_OPTION },
  async run(args, ctx) {
    const { results } = await loadTestFiles(args, ctx)
    const plans = results.flatMap(r => (r.spec ? (r.spec.variants ?? [r.spec]).map(createPlan) : []))
    const failed = results.some(r => hasErrors(r.diagnostics))
    if (args.options.reporter === 'json') {
      ctx.stdout(`${JSON.stringify({ plans, diagnostics: results.flatMap(r => r.diagnostics) }, null, 2)}\n`)
    }
    else {
      for (const result of results) for (const d of result.diagnostics) ctx.stderr(formatDiagnostic(ctx, d))
      for (const plan of plans) ctx.stdout(formatPlan(ctx, plan))
    }
    return failed ? EXIT.failure : EXIT.ok
  },
}

function formatPlan(ctx: CommandContext, plan: TestPlan): string {
  const { c } = ctx
  const lines = [`${c.bold(printable(plan.name))} ${c.dim(displayPath(ctx, plan.file))}${plan.timeoutMs ? c.dim(` (budget ${formatDuration(plan.timeoutMs)})`) : ''}`]
  lines.push(`  services ${c.dim('(started in parallel, on one private network; ids are host names)')}`)
  for (const s of plan.services) {
    lines.push(`    ${c.cyan(s.id)}  ${s.image}${s.command ? `  ${c.dim('command')} ${shellQuote(s.command)}` : ''}  ${c.dim(s.reuse ? 'reusable' : 'fresh each run')}`)
    if (s.description) lines.push(`      ${c.dim(printable(s.description))}`)
    if (s.label !== undefined) lines.push(`      ${c.dim(`plugin "${printable(s.label)}" is a label: started as a generic container from its image`)}`)
    for (const port of s.ports) lines.push(`      port ${port.container} → host port in $${port.env}`)
    for (const v of s.volumes) lines.push(`      volume ${displayPath(ctx, v.host)} → ${v.container}${v.readOnly ? ' (read-only)' : ''}`)
    for (const [k, v] of Object.entries(s.env)) lines.push(`      env ${k}=${v}`)
    lines.push(`      ready when: ${s.ready}`)
  }
  if (plan.vars) {
    lines.push(`  vars ${c.dim('(template data of this file)')}`)
    for (const [k, v] of Object.entries(plan.vars)) lines.push(`    ${printable(k)} = ${printable(JSON.stringify(v) ?? String(v))}`)
  }
  if (plan.report) {
    lines.push(`  reports ${c.dim('(written after clnrm run)')}`)
    for (const [kind, path] of Object.entries(plan.report)) lines.push(`    ${kind} ${displayPath(ctx, path)}`)
  }
  lines.push('  steps')
  plan.steps.forEach((step, i) => {
    lines.push(`    ${i + 1}. ${printable(step.name)} ${c.dim(`in ${step.service}`)}: ${printable(shellQuote(step.argv))}`)
    if (step.description) lines.push(`       ${c.dim(printable(step.description))}`)
    lines.push(`       ${c.dim(`expect ${step.expect.join(', ')}; timeout ${formatDuration(step.timeoutMs)}${step.continueOnFailure ? '; continues on failure' : ''}${step.collectSpans ? '; stdout read as NDJSON spans' : ''}`)}`)
  })
  if (plan.otel) {
    const o = plan.otel
    const how = o.exporter === 'otlp'
      ? `OTLP ${o.protocol} to ${o.endpoint ?? 'clnrm\'s receiver'}`
      : o.exporter === 'stdout' ? 'spans printed on stdout' : 'no export'
    lines.push(`  spans ${c.dim(`(${how}; ${o.sampleRatio === 1 ? 'every trace sampled' : `${o.sampleRatio * 100}% of traces sampled`}; settled after ${formatDuration(o.quietWindowMs)} quiet, at most ${formatDuration(o.settleTimeoutMs)})`)}`)
    const resources = Object.entries(o.resources)
    if (resources.length) lines.push(`    resource ${printable(resources.map(([k, v]) => `${k}=${v}`).join(', '))}`)
    if (o.headers.length) lines.push(`    headers ${printable(o.headers.join(', '))} ${c.dim('(values not shown)')}`)
    lines.push(`    propagators ${o.propagators.join(', ')}`)
    if (plan.expectations.length === 0) lines.push(`    ${c.dim('no span expectations')}`)
    for (const e of plan.expectations) lines.push(`    ${c.cyan(printable(e.rule))}  ${printable(e.expected)}`)
  }
  return `${lines.join('\n')}\n\n`
}

function shellQuote(argv: readonly string[]): string {
  return argv.map(arg => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll('\'', '\'\\\'\'')}'`)).join(' ')
}
