import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { EngineAdapter } from '../core/engine/adapter.ts'
import { PoolNetworks } from '../core/engine/pool-networks.ts'

/** An engine that only records network calls (the real ones are in pool-groups.test.ts). */
function recordingEngine(): { engine: () => EngineAdapter; created: string[]; removed: string[] } {
  const created: string[] = []
  const removed: string[] = []
  const engine = {
    createNetwork: async (body: { Name: string }) => {
      created.push(body.Name)
      return body.Name
    },
    removeNetwork: async (name: string) => {
      removed.push(name)
    },
  } as unknown as EngineAdapter
  return { engine: () => engine, created, removed }
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

describe('PoolNetworks: the spare kept for the plan', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('keeps one spare while tests are expected, takes it, makes the next after the starts, and lets the last one go', async () => {
    const { engine, created, removed } = recordingEngine()
    const networks = new PoolNetworks(engine, () => ({ clnrm: '1' }), 'unit')
    networks.expect(2)
    expect(created).toHaveLength(1)
    // The first test arrives: the spare is there, nothing more is made beside its starts.
    networks.prepare('g1')
    networks.hold('g1')
    networks.hold('g1')
    expect(created).toHaveLength(1)
    expect(await networks.name('g1')).toBe(created[0])
    // Its containers started: one more test expected, so one more spare, kept past SPARE_MS.
    networks.refill()
    expect(created).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(removed).toEqual([])
    // The last expected test takes it; none is made for nobody.
    networks.prepare('g2')
    networks.hold('g2')
    networks.refill()
    expect(created).toHaveLength(2)
    expect(await networks.name('g2')).toBe(created[1])
    // A freed network is a spare for 1.5 s, then removed.
    await networks.drop('g1')
    await networks.drop('g1')
    expect(networks.size).toBe(2)
    await vi.advanceTimersByTimeAsync(1600)
    await flush()
    expect(removed).toEqual([created[0]])
    await networks.close()
    expect(removed.sort()).toEqual([...created].sort())
  })

  it('lets the kept spare go 1.5 s after the last expected test arrived without needing it (a warm group took it)', async () => {
    const { engine, created, removed } = recordingEngine()
    const networks = new PoolNetworks(engine, () => ({}), 'unit')
    networks.expect(1)
    expect(created).toHaveLength(1)
    networks.prepare('warm', { spare: false })
    await vi.advanceTimersByTimeAsync(1600)
    await flush()
    expect(removed).toEqual(created)
    expect(networks.size).toBe(0)
  })

  it('makes no spare when nothing is expected, and one per arriving test otherwise (made while its images resolve)', async () => {
    const { engine, created } = recordingEngine()
    const networks = new PoolNetworks(engine, () => ({}), 'unit')
    networks.refill()
    expect(created).toEqual([])
    networks.prepare('g')
    expect(created).toHaveLength(1)
    networks.hold('g')
    expect(created).toHaveLength(1)
    await networks.close()
  })
})
