import { execFileSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ContainerPool } from '../core/index.ts'
import type { Lease, TestSpec } from '../core/index.ts'
import { waitUntil } from './cli-process.ts'
import { IMAGE, run, specFrom } from './engine.ts'
import { tempDir } from './helpers.ts'

const docker = (...args: string[]): string => execFileSync('docker', args, { encoding: 'utf8' })
const lines = (text: string): string[] => text.split('\n').filter(Boolean)
const sessionContainers = (pool: ContainerPool): string[] => lines(docker('ps', '-aq', '--filter', `label=clnrm.session=${pool.sessionId}`))
const sessionNetworks = (pool: ContainerPool): string[] => lines(docker('network', 'ls', '--format', '{{.Name}}', '--filter', `label=clnrm.session=${pool.sessionId}`)).sort()
/** The networks a container is attached to, with its aliases on each, as the engine sees them. */
function networksOf(id: string): Record<string, string[]> {
  const [info] = JSON.parse(docker('inspect', id)) as Array<{ NetworkSettings: { Networks: Record<string, { Aliases: string[] | null }> } }>
  return Object.fromEntries(Object.entries(info!.NetworkSettings.Networks).map(([name, n]) => [name, n.Aliases ?? []]))
}

/** A test of three services (`a`, `b`, `c`) whose step in `a` reaches `b` and `c` by name. */
const trio = (name: string, extra = ''): string =>
  `[meta]\nname = "${name}"\n${['a', 'b', 'c'].map(id => `[services.${id}]\nimage = "${IMAGE}"\n${extra}\n`).join('')}[[steps]]\nservice = "a"\nrun = "ping -c1 -W2 b >/dev/null && ping -c1 -W2 c >/dev/null && echo reached"\nexpected_output_regex = "reached"\n`

describe('multi-service networks: a spare kept ready for the plan', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeAll(async () => ({ dir, cleanup } = await tempDir()))
  afterAll(() => cleanup())

  it('makes a labelled network as soon as the plan has a multi-service test, starts the test on it, keeps one ready for the next, and removes every one at close', async () => {
    const pool = await ContainerPool.create()
    const first = specFrom(dir, 'planned-1', trio('planned 1', 'env = { PLAN = "1" }'))
    const second = specFrom(dir, 'planned-2', trio('planned 2', 'env = { PLAN = "2" }'))
    const leases: Lease[] = []
    try {
      void pool.prepareImages([first, second])
      // Before any test asked for it: the plan alone made it.
      await waitUntil(() => sessionNetworks(pool).length === 1, 'the spare network of the plan')
      const [spare] = sessionNetworks(pool)
      expect(sessionContainers(pool)).toEqual([])

      leases.push(await pool.acquire(first))
      const ids = ['a', 'b', 'c'].map(id => leases[0]!.services[id]!.containerId)
      // Every service on the spare network and on no other, each under its service id.
      expect(ids.map(networksOf)).toEqual(['a', 'b', 'c'].map(id => ({ [spare!]: expect.arrayContaining([id]) })))
      // The plan expects another multi-service test: a new spare is made once these started.
      await waitUntil(() => sessionNetworks(pool).length === 2, 'a new spare for the second test')

      // Two tests at once never share a network.
      leases.push(await pool.acquire(second))
      const otherNetworks = Object.values(leases[1]!.services).map(s => Object.keys(networksOf(s.containerId)))
      expect(new Set(otherNetworks.flat()).size).toBe(1)
      expect(otherNetworks[0]).not.toContain(spare)
      expect(sessionNetworks(pool)).toContain(otherNetworks[0]![0])
    }
    finally {
      await Promise.all(leases.map(lease => lease.release()))
      await pool.close()
    }
    expect(sessionContainers(pool)).toEqual([])
    expect(sessionNetworks(pool)).toEqual([])
  })

  it('runs the planned tests by service name through the spare, and leaves nothing', async () => {
    const pool = await ContainerPool.create()
    const specs: TestSpec[] = [1, 2, 3].map(i => specFrom(dir, `named-${i}`, trio(`named ${i}`, `env = { NAMED = "${i}" }\nreuse = false`)))
    try {
      void pool.prepareImages(specs)
      for (const spec of specs) expect((await run(pool, spec)).status).toBe('pass')
    }
    finally {
      await pool.close()
    }
    expect(sessionContainers(pool)).toEqual([])
    expect(sessionNetworks(pool)).toEqual([])
  })
})
