import { execFileSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTestLoader } from '../core/index.ts'
import { containerCreateOptions } from '../core/engine/container.ts'
import { serviceDefinitionHash } from '../core/format/plan.ts'
import { clnrmContainers, IMAGE, specFrom } from './engine.ts'
import { spawnCli, waitUntil } from './cli-process.ts'
import { tempDir } from './helpers.ts'

const file = (limits: string, step = 'true'): string =>
  `[meta]\nname = "limited"\n[services.box]\nimage = "${IMAGE}"\n[services.db]\nimage = "${IMAGE}"\n[[steps]]\nservice = "box"\nrun = "${step}"\n[limits]\n${limits}\n`

describe('[limits]', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('applies cpu_millicores and memory_mb to every service container definition, and changes its reuse key', () => {
    const spec = specFrom(dir, 'limited', file('cpu_millicores = 500\nmemory_mb = 64'))
    const unlimited = specFrom(dir, 'unlimited', file('').replace('[limits]\n', ''))
    for (const id of ['box', 'db']) {
      expect(spec.services[id]!.limits).toEqual({ cpuMillicores: 500, memoryMb: 64 })
      const host = containerCreateOptions(spec.services[id]!, { labels: {} }).HostConfig!
      expect(host).toMatchObject({ NanoCpus: 500_000_000, Memory: 64 * 1024 * 1024, MemorySwap: 64 * 1024 * 1024 })
      expect(serviceDefinitionHash(spec.services[id]!)).not.toBe(serviceDefinitionHash(unlimited.services[id]!))
    }
    const host = containerCreateOptions(unlimited.services.box!, { labels: {} }).HostConfig!
    expect(host.NanoCpus).toBeUndefined()
    expect(host.Memory).toBeUndefined()
  })

  it('reports the keys it cannot enforce, and bad values, located', () => {
    const loader = createTestLoader({ project: { root: dir, vars: {}, determinism: {} } })
    const path = join(dir, 'x.clnrm.toml')
    const { spec, diagnostics } = loader.loadSource(path, file('cpu_millicores = 500\nmax_containers = 5\nmemory_mb = 2'))
    expect(spec).toBeUndefined()
    expect(diagnostics).toContainEqual(expect.objectContaining({ code: 'CLNRM_NOT_SUPPORTED', line: 12, column: 1, message: expect.stringContaining('limits.max_containers') }))
    expect(diagnostics).toContainEqual(expect.objectContaining({ code: 'CLNRM_INVALID_VALUE', line: 13 }))
  })

  it('clnrm run creates the containers with the limits on the engine (docker inspect), passes and leaves nothing', async () => {
    await writeFile(join(dir, 'limited.clnrm.toml'), file('cpu_millicores = 500\nmemory_mb = 64', 'sleep 4'))
    const cli = spawnCli(['run', '.'], dir)
    await waitUntil(() => clnrmContainers(cli.pid).length === 2, 'both service containers exist')
    const inspected = JSON.parse(execFileSync('docker', ['inspect', ...clnrmContainers(cli.pid)], { encoding: 'utf8' })) as Array<{ HostConfig: { NanoCpus: number; Memory: number; MemorySwap: number } }>
    expect(inspected.map(c => c.HostConfig)).toEqual([0, 1].map(() => expect.objectContaining({ NanoCpus: 500_000_000, Memory: 67_108_864, MemorySwap: 67_108_864 })))
    const exit = await cli.exited
    expect(cli.stdout()).toMatch(/✓ limited/)
    expect(exit.code).toBe(0)
    expect(exit.ms).toBeLessThan(60_000)
    expect(clnrmContainers(cli.pid)).toEqual([])
  })

  it('a CPU limit beyond the engine\'s CPUs is the engine\'s refusal, pointed at [limits]; exit 1, nothing left', async () => {
    await writeFile(join(dir, 'greedy.clnrm.toml'), file('cpu_millicores = 1000000'))
    const cli = spawnCli(['run', '.'], dir)
    const exit = await cli.exited
    expect(exit.code).toBe(1)
    expect(cli.stdout()).toMatch(/error The engine refused to create service "(box|db)" \(check \[limits\]\): Range of CPUs/)
    expect(cli.stdout()).toMatch(/hint: Fix \[limits\] in the test file/)
    expect(clnrmContainers(cli.pid)).toEqual([])
  })
})
