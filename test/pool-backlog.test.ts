import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ContainerPool, PoolEvent } from '../core/index.ts'
import { createRecordingPool, IMAGE, specFrom } from './engine.ts'
import { tempDir } from './helpers.ts'

/**
 * A caller's announced queue (`acquire`'s `backlog`, what a dev reload passes) counts as demand:
 * on the real engine, a test arriving while the definition's only container is busy waits for it
 * when nothing is queued behind it, and gets a second container when a long queue is.
 */
describe('the pool and a caller\'s backlog', () => {
  let pool: ContainerPool
  let events: PoolEvent[]
  let dir: string
  let cleanup: () => Promise<void>
  beforeAll(async () => {
    ({ pool, events } = await createRecordingPool())
    ;({ dir, cleanup } = await tempDir())
  })
  afterAll(async () => {
    await pool.close()
    await cleanup()
  })

  const starts = (): number => events.filter(e => e.type === 'pool:container-starting').length

  it('waits for the busy container without a backlog, starts another with one', async () => {
    const spec = (unique: string): ReturnType<typeof specFrom> => specFrom(dir, unique, `[meta]\nname = "${unique}"\n[services.box]\nimage = "${IMAGE}"\nenv = { UNIQUE = "${unique}" }\n[[steps]]\nrun = "true"\n`)
    for (const [unique, backlog, expected] of [['no-backlog', 0, 1], ['backlog', 100_000, 2]] as const) {
      const test = spec(unique)
      const before = starts()
      const first = await pool.acquire(test)
      // A second test of the same definition while the first holds the only container.
      const second = pool.acquire(test, { backlog })
      // Without a backlog it waits: the container comes free when the first releases (soon: a
      // run held longer than a start would justify another container by itself).
      const released = new Promise<void>(resolve => setTimeout(() => void first.release().then(resolve), 30))
      const lease = await second
      expect(starts() - before, unique).toBe(expected)
      expect(lease.services.box!.containerId === first.services.box!.containerId, unique).toBe(expected === 1)
      await released
      await lease.release()
    }
  })
})
