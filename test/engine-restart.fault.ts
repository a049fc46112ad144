import { execFileSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'
import { node, startDev, startHumanDev } from './runtimes/contract.ts'

// The engine going away and coming back under a running `clnrm dev`. Run only by
// scripts/engine-restart.sh, which points DOCKER_HOST at a second engine of its own: the tests
// stop and start THAT daemon, never the one everybody else uses.

const SOCKET = 'unix:///var/run/clnrm-docker2.sock'
const script = resolve(import.meta.dirname, '../scripts/engine-restart.sh')
if (process.env.DOCKER_HOST !== SOCKET) throw new Error(`run through scripts/engine-restart.sh (DOCKER_HOST must be ${SOCKET})`)

const engine = (action: 'start' | 'stop'): void => void execFileSync('bash', [script, action], { stdio: 'inherit' })
const docker = (...args: string[]): string => execFileSync('docker', args, { encoding: 'utf8' }).trim()
const containersOf = (pid: number): string[] => docker('ps', '-aq', '--filter', `label=clnrm.pid=${pid}`).split('\n').filter(Boolean)
const runs = (container: string, pattern: RegExp): boolean => {
  try {
    return pattern.test(docker('top', container))
  }
  catch {
    return false
  }
}
const test = (name: string, run: string): string =>
  `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "work"\nrun = "${run}"\ntimeout = "90s"\n`

// Whatever happens in a test, the engine is up for the next one.
afterEach(() => engine('start'))
afterAll(() => engine('start'))

describe('clnrm dev while the Docker engine stops and starts again', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let file: string
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('clnrm-engine-'))
    await mkdir(join(dir, 'tests'))
    file = join(dir, 'tests/work.clnrm.toml')
  })
  afterEach(() => cleanup())

  it('between saves: a clear error per test while it is down, normal results once it is back', async () => {
    await writeFile(file, test('v1', 'echo v1'))
    const dev = startDev(node, ['tests'], dir)
    await dev.waitFor(line => line.type === 'ready')
    engine('stop')

    await writeFile(file, test('v2', 'echo v2'))
    // The deadline only proves it answers instead of hanging.
    const down = await dev.waitFor(line => line.type === 'test' && line.name === 'v2', 30_000)
    expect(down).toMatchObject({ status: 'error', error: { code: 'CLNRM_ENGINE_UNAVAILABLE', message: expect.stringMatching(/No Docker engine is reachable at DOCKER_HOST=/), hint: expect.stringMatching(/Start Docker/) } })
    // Still down, still alive: a second save gets the same clear answer.
    await writeFile(file, test('v3', 'echo v3'))
    expect(await dev.waitFor(line => line.type === 'test' && line.name === 'v3', 30_000)).toMatchObject({ status: 'error', error: { code: 'CLNRM_ENGINE_UNAVAILABLE' } })

    engine('start')
    await writeFile(file, test('v4', 'echo v4'))
    expect(await dev.waitFor(line => line.type === 'test' && line.name === 'v4', 60_000)).toMatchObject({ status: 'pass' })
    expect(dev.lines().filter(l => l.type === 'session-error')).toEqual([])
    expect(containersOf(dev.pid)).toHaveLength(1)
    dev.send('q\n')
    expect(await dev.exited).toBe(0)
    expect(containersOf(dev.pid)).toEqual([])
  })

  it('in the terminal: the error and its next step while it is down, a pass once it is back', async () => {
    await writeFile(file, test('v1', 'echo v1'))
    const dev = startHumanDev(node, ['tests'], dir)
    await dev.until(/ready: 1 test/)
    engine('stop')
    let mark = dev.output().length
    await writeFile(file, test('v2', 'echo v2'))
    const shown = await dev.until(/✗ v2 [^\n]*\n[\s\S]*hint:[^\n]*\n/, mark, 30_000)
    expect(shown).toMatch(/error No Docker engine is reachable at DOCKER_HOST=unix:\/\/\/var\/run\/clnrm-docker2\.sock/)
    expect(shown).toMatch(/hint: Start Docker/)

    engine('start')
    mark = dev.output().length
    await writeFile(file, test('v3', 'echo v3'))
    await dev.until(/✓ v3 /, mark)
    expect(await dev.quit()).toBe(0)
    expect(containersOf(dev.pid)).toEqual([])
  })

  it('during a step: the step ends with an error naming the engine and the service, and the next save after the restart passes', async () => {
    await writeFile(file, test('v1', 'echo v1'))
    const dev = startDev(node, ['tests'], dir)
    await dev.waitFor(line => line.type === 'ready')
    const [container] = containersOf(dev.pid)
    await writeFile(file, test('long', 'sleep 60; echo long'))
    const deadline = Date.now() + 30_000
    while (!runs(container!, /sleep 60/) && Date.now() < deadline) await new Promise(r => setTimeout(r, 50))
    engine('stop')
    const failed = await dev.waitFor(line => line.type === 'test' && line.name === 'long', 30_000)
    expect(failed).toMatchObject({ status: 'error', error: { code: 'CLNRM_ENGINE_UNAVAILABLE', message: expect.stringMatching(/the Docker engine went away during step "work" of service "box"/) } })

    engine('start')
    await writeFile(file, test('after', 'echo after'))
    expect(await dev.waitFor(line => line.type === 'test' && line.name === 'after', 60_000)).toMatchObject({ status: 'pass' })
    dev.send('q\n')
    expect(await dev.exited).toBe(0)
    expect(containersOf(dev.pid)).toEqual([])
  })
})
