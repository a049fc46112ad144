import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { spawnCli } from './cli-process.ts'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'

interface ProbeJson {
  engine: { name: string; version: string; apiVersion: string }
  source: { via: string; endpoint: string }
  image: string
  capabilities: Record<string, { ok: boolean; detail: string; forced?: boolean }>
}

const CAPS = ['attach-stdin', 'exec-env', 'exec-workdir', 'network-aliases', 'published-ports', 'host-reachable']

describe('clnrm doctor', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('prints the engine, its version, where it was found and every capability measured on the local engine (✓ each, with its meaning); --json the same; the probe leaves nothing behind', async () => {
    const human = spawnCli(['doctor'], dir)
    const exit = await human.exited
    expect(exit.code, human.output()).toBe(0)
    expect(exit.ms).toBeLessThan(30_000)
    expect(human.stdout()).toMatch(/^engine {3}Docker \S+ \(API 1\.\d+, linux\/\w+\)$/m)
    expect(human.stdout()).toMatch(/^found {4}(unix|tcp):\/\/\S+ \((DOCKER_HOST|socket: the default socket|docker\.host in |tc\.host in |docker context |testcontainers discovery)/m)
    expect(human.stdout()).toMatch(new RegExp(`^probe {4}${IMAGE.replace(/[./]/g, '\\$&')} \\(\\d+ ms\\)$`, 'm'))
    for (const cap of CAPS) expect(human.stdout()).toMatch(new RegExp(`^✓ ${cap}: .+\\n {4}\\S`, 'm'))
    expect(human.stdout()).toMatch(/published-ports: .*\n.*127\.0\.0\.1:\d+ answered, bound on loopback only/)
    expect(human.stdout()).toContain('Every capability clnrm uses works on this engine.')
    expect(clnrmContainers(human.pid)).toEqual([])

    const json = spawnCli(['doctor', '--json'], dir)
    expect((await json.exited).code, json.output()).toBe(0)
    const probe = JSON.parse(json.stdout()) as ProbeJson
    expect(probe.engine.name).toBe('Docker')
    expect(Object.keys(probe.capabilities)).toEqual(CAPS)
    for (const cap of CAPS) expect(probe.capabilities[cap], cap).toMatchObject({ ok: true })
    expect(clnrmContainers(json.pid)).toEqual([])
  })

  it('exits 2 naming DOCKER_HOST when no engine answers (human and --json)', async () => {
    const env = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' }
    const human = spawnCli(['doctor'], dir, { env })
    const exit = await human.exited
    expect(exit.code).toBe(2)
    expect(exit.ms).toBeLessThan(10_000)
    expect(human.stderr()).toMatch(/^error No Docker engine is reachable at DOCKER_HOST=unix:\/\/\/nonexistent\/docker\.sock\nhint: Start Docker/)
    const json = spawnCli(['doctor', '--json'], dir, { env })
    expect((await json.exited).code).toBe(2)
    expect(JSON.parse(json.stdout())).toMatchObject({ engine: null, error: { code: 'CLNRM_ENGINE_UNAVAILABLE' } })
  })

  it('CLNRM_ENGINE_CAPS forces capabilities off: doctor says "forced" and what clnrm does instead, and clnrm run then runs steps per exec with env and workdir wrapped into the command, on the real engine', async () => {
    const env = { CLNRM_ENGINE_CAPS: '-attach-stdin,-exec-env,-exec-workdir' }
    const doctor = spawnCli(['doctor', '--json'], dir, { env })
    expect((await doctor.exited).code, doctor.output()).toBe(0)
    const probe = JSON.parse(doctor.stdout()) as ProbeJson
    for (const cap of ['attach-stdin', 'exec-env', 'exec-workdir']) expect(probe.capabilities[cap]).toMatchObject({ ok: false, forced: true, detail: expect.stringMatching(/^forced by CLNRM_ENGINE_CAPS \(measured: yes/) })
    expect(probe.capabilities['published-ports']).toMatchObject({ ok: true })
    const human = spawnCli(['doctor'], dir, { env: { CLNRM_ENGINE_CAPS: `${env.CLNRM_ENGINE_CAPS},-exec-envv` } })
    expect((await human.exited).code).toBe(0)
    expect(human.stdout()).toMatch(/^✗ exec-env \(forced\): clnrm exports the env inside the command/m)
    expect(human.stdout()).toMatch(/^warning CLNRM_ENGINE_CAPS names no capability: exec-envv \(known: attach-stdin, /m)

    await writeFile(join(dir, 'wrapped.clnrm.toml'), [
      '[meta]', 'name = "wrapped"',
      '[services.box]', `image = "${IMAGE}"`, 'env = { FROM_SERVICE = "svc" }',
      '[[steps]]', 'name = "env and workdir"', 'run = "echo \\"$FROM_SERVICE $FROM_STEP $(pwd)\\""', 'env = { FROM_STEP = "it\'s $HOME" }', 'workdir = "/etc"',
      'expected_output_regex = "^svc it\'s \\\\$HOME /etc\\n$"',
      '[[steps]]', 'name = "fresh run directory"', 'run = "pwd"', 'expected_output_regex = "^/tmp/clnrm-run-"',
      // An exec's process has no parent inside the container; a step of the long-lived shell has the shell.
      '[[steps]]', 'name = "its own exec"', 'run = "echo ppid=$PPID"', 'expected_output_regex = "^ppid=0\\n$"',
      '[[steps]]', 'name = "missing workdir"', 'run = "true"', 'workdir = "/nonexistent"', 'expected_exit_code = 125',
      '',
    ].join('\n'))
    const run = spawnCli(['run', 'wrapped.clnrm.toml'], dir, { env })
    const exit = await run.exited
    expect(exit.code, run.output()).toBe(0)
    expect(run.output()).toMatch(/1 passed/)
    expect(clnrmContainers(run.pid)).toEqual([])
    // The same file without the override: the long-lived shell runs the steps (so the ppid step fails).
    const shell = spawnCli(['run', 'wrapped.clnrm.toml'], dir)
    expect((await shell.exited).code, shell.output()).toBe(1)
    expect(shell.output()).toMatch(/its own exec/)
    expect(shell.output()).toMatch(/1 failed/)
  })
})
