import { CAPABILITIES, CAPABILITY_MEANING, connectDocker, EngineUnavailableError, probeEngine } from '../../core/index.ts'
import type { EngineProbe, EngineSource } from '../../core/index.ts'
import type { CommandDef } from '../command.ts'
import type { CommandContext } from '../context.ts'
import { EXIT } from '../errors.ts'
import { formatEngineError } from '../output.ts'

/** `clnrm doctor`: which engine clnrm finds, and what it can do there. */
export const doctorCommand: CommandDef = {
  name: 'doctor',
  args: '',
  summary: 'Show the container engine clnrm uses, where it was found, and what it can do there.',
  details: [
    'Runs the capability probe: one throwaway busybox container (local images only, nothing is pulled)',
    'on a network of its own. Each capability says what it gives you and what clnrm does without it.',
    'CLNRM_ENGINE_CAPS=-attach-stdin,-exec-env,... forces capabilities off (a diagnostic aid: clnrm then',
    'runs steps as it would on an engine without them); doctor marks those "forced".',
    'Exit code 0 when an engine answers, 2 when none does.',
  ].join('\n'),
  examples: ['clnrm doctor', 'clnrm doctor --json', 'DOCKER_HOST=tcp://127.0.0.1:2375 clnrm doctor'],
  options: {
    json: { type: 'boolean', description: 'Print the probe as JSON' },
  },
  async run(args, ctx) {
    let probe: EngineProbe
    try {
      probe = await probeEngine(await connectDocker())
    }
    catch (error) {
      if (!(error instanceof EngineUnavailableError)) throw error
      if (args.options.json) ctx.stdout(`${JSON.stringify({ engine: null, error: { code: error.code, message: error.message, hint: error.hint } }, null, 2)}\n`)
      else ctx.stderr(formatEngineError(ctx, error))
      return EXIT.usage
    }
    if (args.options.json) ctx.stdout(`${JSON.stringify(probe, null, 2)}\n`)
    else ctx.stdout(humanProbe(ctx, probe))
    return EXIT.ok
  },
}

/** How the engine was found, in words: the variable, the file and key, the context, or the socket. */
function foundVia(source: EngineSource): string {
  switch (source.via) {
    case 'DOCKER_HOST': return 'DOCKER_HOST'
    case 'tc.host':
    case 'docker.host': return `${source.via} in ${source.from ?? '~/.testcontainers.properties'}`
    case 'docker context': return `docker ${source.from ?? 'context'}`
    case 'socket': return `socket: ${source.from ?? 'a usual place'}`
    default: return 'testcontainers discovery: nothing answered at DOCKER_HOST, ~/.testcontainers.properties, the docker context or the usual sockets'
  }
}

function humanProbe(ctx: CommandContext, probe: EngineProbe): string {
  const { c } = ctx
  const { engine, source } = probe
  const lines = [
    `${c.bold('engine')}   ${engine.name} ${engine.version} (API ${engine.apiVersion}, ${engine.os}/${engine.arch})`,
    `${c.bold('found')}    ${source.endpoint} ${c.dim(`(${foundVia(source)})`)}`,
  ]
  if (source.propertiesFile) lines.push(`${c.bold('config')}   ${source.propertiesFile}`)
  lines.push(`${c.bold('probe')}    ${probe.image ?? 'no busybox image'} ${c.dim(`(${Math.round(probe.ms)} ms)`)}`, '')
  for (const name of CAPABILITIES) {
    const result = probe.capabilities[name]
    const meaning = CAPABILITY_MEANING[name]
    const mark = result.ok ? c.green('✓') : c.red('✗')
    lines.push(`${mark} ${name}${result.forced ? c.yellow(' (forced)') : ''}: ${result.ok ? meaning.what : meaning.without}`)
    lines.push(`    ${c.dim(result.detail)}`)
  }
  const unknown = (ctx.env.CLNRM_ENGINE_CAPS ?? '').split(',').map(w => w.trim().replace(/^[+-]/, '')).filter(w => w && !(CAPABILITIES as readonly string[]).includes(w))
  if (unknown.length) lines.push('', `${c.yellow('warning')} CLNRM_ENGINE_CAPS names no capability: ${unknown.join(', ')} (known: ${CAPABILITIES.join(', ')})`)
  const missing = CAPABILITIES.filter(n => !probe.capabilities[n].ok)
  lines.push('', missing.length ? `${missing.length} of ${CAPABILITIES.length} capabilities missing; clnrm works around what it can (see docs/engines.md).` : `Every capability clnrm uses works on this engine.`)
  return `${lines.join('\n')}\n`
}
