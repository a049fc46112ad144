import { hostname } from 'node:os'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDocker, LABELS } from '../core/index.ts'
import type { EngineAdapter, EngineContainer } from '../core/index.ts'
import { versionOf } from '../core/engine/docker-adapter.ts'
import { createExecRunner, wrapCommand } from '../core/engine/exec/exec-runner.ts'
import { forcedCapabilities, startRunner } from '../core/engine/exec/strategy.ts'
import { IMAGE } from './engine.ts'

/**
 * An engine that drops an exec's Env and WorkingDir, as kubedock does (the Kubernetes exec API has
 * neither): the real engine behind an adapter that strips both fields. The strategy must notice
 * (its one measuring exec) and wrap env and workdir into the command.
 */
function droppingExecFields(engine: EngineAdapter): EngineAdapter {
  const strip = (container: EngineContainer): EngineContainer => ({
    ...container,
    id: container.id,
    exec: ({ Env: _env, WorkingDir: _dir, ...body }) => container.exec(body),
  })
  return { ...engine, createContainer: async body => strip(await engine.createContainer(body)), container: id => strip(engine.container(id)) }
}

describe('the executor strategy on an engine that drops exec env and workdir (the real engine behind a field-stripping adapter)', () => {
  let engine: EngineAdapter
  let container: EngineContainer
  const saved = process.env.CLNRM_ENGINE_CAPS
  beforeAll(async () => {
    engine = droppingExecFields((await connectDocker()).engine)
    container = await engine.createContainer({
      Image: IMAGE, Cmd: ['sleep', '300'],
      Labels: { [LABELS.managed]: 'true', [LABELS.pid]: String(process.pid), [LABELS.host]: hostname(), [LABELS.service]: 'strategy' },
    })
    await container.start()
  }, 60_000)
  afterAll(async () => {
    if (saved === undefined) delete process.env.CLNRM_ENGINE_CAPS
    else process.env.CLNRM_ENGINE_CAPS = saved
    await container?.remove()
  })

  it('really drops them: an unwrapped exec runner loses the step env and workdir there', async () => {
    const plain = createExecRunner(container)
    const result = await plain.exec({ argv: ['sh', '-c', 'echo "[$STEP] $(pwd)"'], env: { STEP: 'two' }, workdir: '/etc', timeoutMs: 10_000 })
    expect(result.stdout).toBe('[] /\n')
  })

  it('measures the drop with one exec and wraps env and workdir into the command: the step sees both, a missing workdir exits 125', async () => {
    // Without attach (as kubedock may be), so the per-exec path and its measurement are taken.
    process.env.CLNRM_ENGINE_CAPS = '-attach-stdin'
    const runner = await startRunner(engine, container)
    expect(runner.kind).toBe('exec')
    const result = await runner.exec({ argv: ['sh', '-c', 'echo "[$STEP] $(pwd)"'], env: { STEP: 'it\'s $two' }, workdir: '/etc', timeoutMs: 10_000 })
    expect(result).toMatchObject({ exitCode: 0, stdout: '[it\'s $two] /etc\n' })
    const missing = await runner.exec({ argv: ['true'], env: {}, workdir: '/nonexistent', timeoutMs: 10_000 })
    expect(missing.exitCode).toBe(125)
    expect((await runner.exec({ argv: ['nope-not-here'], env: {}, workdir: '/', timeoutMs: 10_000 })).exitCode).toBe(127)
  })
})

describe('engine adapter, pure logic', () => {
  it('reads CLNRM_ENGINE_CAPS: -name off, +name or name on, unknown names ignored', () => {
    expect(forcedCapabilities('-attach-stdin, +exec-env,exec-workdir,-bogus,')).toEqual({ 'attach-stdin': false, 'exec-env': true, 'exec-workdir': true })
    expect(forcedCapabilities(undefined)).toEqual({})
  })

  it('wraps a command so sh sets its workdir and env, quoting values', () => {
    expect(wrapCommand(['echo', 'a b'], [['K', 'it\'s']], '/my dir')).toEqual(['sh', '-c', 'cd \'/my dir\' || exit 125; export K=\'it\'\\\'\'s\'; exec "$@"', 'sh', 'echo', 'a b'])
    expect(wrapCommand(['true'], [], undefined)).toEqual(['sh', '-c', 'exec "$@"', 'sh', 'true'])
  })

  it('names the product from /version: Podman by its component, Docker by "Engine"', () => {
    expect(versionOf({ Version: '4.3.1', ApiVersion: '1.41', Os: 'linux', Arch: 'amd64', Components: [{ Name: 'Podman Engine', Version: '4.3.1' }] })).toMatchObject({ name: 'Podman', version: '4.3.1' })
    expect(versionOf({ Version: '20.10.24', ApiVersion: '1.41', Components: [{ Name: 'Engine', Version: '20.10.24' }, { Name: 'containerd' }] })).toMatchObject({ name: 'Docker', version: '20.10.24' })
  })
})
