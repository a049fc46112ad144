import type { EngineAdapter, EngineContainer } from '../adapter.ts'
import { drain } from './engine-exec.ts'
import { createDemuxer } from './demux.ts'
import { createExecRunner } from './exec-runner.ts'
import { startShellRunner } from './shell-runner.ts'
import type { CommandRunner } from './types.ts'

/** What an engine can do, as the capability probe measures it (see `probe.ts`). */
export type Capability = 'attach-stdin' | 'exec-env' | 'exec-workdir' | 'network-aliases' | 'published-ports' | 'host-reachable'

/** Every capability, in the order `clnrm doctor` prints them. */
export const CAPABILITIES: readonly Capability[] = ['attach-stdin', 'exec-env', 'exec-workdir', 'network-aliases', 'published-ports', 'host-reachable']

/**
 * Capabilities forced off (or on) by `CLNRM_ENGINE_CAPS`, a diagnostic aid: `-attach-stdin,-exec-env`
 * makes clnrm behave as it would on an engine without them (kubedock, say), on the engine at hand.
 * Unknown names are ignored here; `clnrm doctor` warns about them.
 */
export function forcedCapabilities(value: string | undefined = process.env.CLNRM_ENGINE_CAPS): Partial<Record<Capability, boolean>> {
  const forced: Partial<Record<Capability, boolean>> = {}
  for (const raw of (value ?? '').split(',')) {
    const word = raw.trim()
    if (!word) continue
    const on = !word.startsWith('-')
    const name = word.replace(/^[+-]/, '')
    if ((CAPABILITIES as readonly string[]).includes(name)) forced[name as Capability] = on
  }
  return forced
}

/** Whether execs on an engine keep their `Env` and `WorkingDir`; measured once per engine per process. */
interface ExecCaps {
  env: boolean
  workdir: boolean
}

const measured = new WeakMap<EngineAdapter, Promise<ExecCaps>>()

/**
 * One exec that says whether the engine passed its env and working directory through (some
 * Docker-API engines drop them: kubedock). An image without `sh` cannot tell, and could not use
 * a wrapped command either: it counts as passing them.
 */
async function measureExecCaps(container: EngineContainer): Promise<ExecCaps> {
  try {
    const exec = await container.exec({ Cmd: ['sh', '-c', 'printf "%s|%s" "${CLNRM_PROBE-}" "$PWD"'], Env: ['CLNRM_PROBE=1'], WorkingDir: '/', AttachStdout: true, AttachStderr: true, Tty: false })
    const stream = await exec.start({ stdin: false })
    const out: Buffer[] = []
    stream.on('data', createDemuxer((which, chunk) => which === 'stdout' && out.push(chunk)))
    await drain(stream, 5000)
    const [env, pwd] = Buffer.concat(out).toString('utf8').split('|')
    if ((await exec.inspect()).exitCode !== 0 || pwd === undefined) return { env: true, workdir: true }
    return { env: env === '1', workdir: pwd === '/' }
  }
  catch {
    return { env: true, workdir: true }
  }
}

/**
 * The executor strategy, from what the engine can do:
 * - attach with stdin: one long-lived shell per container, a command costs a write and a read;
 * - without it (or without `sh`): one exec per command;
 * - and when the engine drops an exec's env or working directory, both are wrapped into the
 *   command (`sh -c 'cd … && export … && exec "$@"'`).
 * `CLNRM_ENGINE_CAPS` forces capabilities off, to exercise each strategy on any engine.
 */
export async function startRunner(engine: EngineAdapter, container: EngineContainer): Promise<CommandRunner> {
  const forced = forcedCapabilities()
  const shell = forced['attach-stdin'] === false ? undefined : await startShellRunner(container)
  if (shell) return shell
  let caps = measured.get(engine)
  if (!caps) {
    caps = measureExecCaps(container)
    measured.set(engine, caps)
  }
  const { env, workdir } = await caps
  return createExecRunner(container, { wrap: forced['exec-env'] === false || forced['exec-workdir'] === false || !env || !workdir })
}
