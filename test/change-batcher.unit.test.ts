import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { ChangeBatch } from '../core/dev/change-batcher.ts'
import { createChangeBatcher } from '../core/dev/change-batcher.ts'

describe('change batcher', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  const record = (): { batches: string[][]; onBatch: (batch: ChangeBatch) => void } => {
    const batches: string[][] = []
    return { batches, onBatch: batch => batches.push([...batch.paths.keys()]) }
  }

  it('hands the first change over on the next tick, not after the quiet window; one tick\'s events make one batch', () => {
    const { batches, onBatch } = record()
    const batcher = createChangeBatcher(30, onBatch)
    batcher.arm()
    batcher.add(['/a'])
    batcher.add(['/b', '/a'])
    expect(batches).toEqual([])
    expect(batcher.pending).toBe(true)
    vi.advanceTimersByTime(0)
    expect(batches).toEqual([['/a', '/b']])
    expect(batcher.pending).toBe(false)
  })

  it('a change after a hand-over is a new batch at once, however soon it comes (the session lets it pre-empt the older run)', () => {
    const { batches, onBatch } = record()
    const batcher = createChangeBatcher(30, onBatch)
    batcher.arm()
    batcher.add(['/a'])
    vi.advanceTimersByTime(1)
    batcher.add(['/a'])
    vi.advanceTimersByTime(1)
    batcher.add(['/a'])
    vi.advanceTimersByTime(0)
    expect(batches).toEqual([['/a'], ['/a'], ['/a']])
  })

  it('hands nothing over before it is armed; what came meanwhile goes as one batch when armed', () => {
    const { batches, onBatch } = record()
    const batcher = createChangeBatcher(30, onBatch)
    batcher.add(['/a'])
    vi.advanceTimersByTime(100)
    batcher.add(['/b'])
    vi.advanceTimersByTime(100)
    expect(batches).toEqual([])
    expect(batcher.pending).toBe(true)
    batcher.arm()
    vi.advanceTimersByTime(0)
    expect(batches).toEqual([['/a', '/b']])
  })

  it('quiet(paths) (what an invalid result waits for) resolves once those paths had no change for the quiet window, later while they keep changing', async () => {
    const batcher = createChangeBatcher(30, () => {})
    batcher.arm()
    let quiet = false
    // No change within the window: at once.
    await batcher.quiet(['/a'])
    batcher.add(['/a'])
    void batcher.quiet(['/a']).then(() => (quiet = true))
    await vi.advanceTimersByTimeAsync(20)
    expect(quiet).toBe(false)
    // A second burst 20 ms later moves the end of the window.
    batcher.add(['/a'])
    await vi.advanceTimersByTimeAsync(20)
    expect(quiet).toBe(false)
    await vi.advanceTimersByTimeAsync(10)
    expect(quiet).toBe(true)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('quiet(paths) is not held by other paths: a file written all the time elsewhere never holds an error back', async () => {
    const batcher = createChangeBatcher(30, () => {})
    batcher.arm()
    batcher.add(['/tests/a.clnrm.toml'])
    let quiet = false
    void batcher.quiet(['/tests/a.clnrm.toml', '/partials/p.toml']).then(() => (quiet = true))
    for (let i = 0; i < 10; i++) {
      batcher.add(['/logs/server.log'])
      await vi.advanceTimersByTimeAsync(5)
    }
    expect(quiet).toBe(true)
    // A change of a partial the test's reload named does hold it.
    batcher.add(['/partials/p.toml'])
    quiet = false
    void batcher.quiet(['/tests/a.clnrm.toml', '/partials/p.toml']).then(() => (quiet = true))
    await vi.advanceTimersByTimeAsync(29)
    expect(quiet).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(quiet).toBe(true)
  })

  it('dispose drops later changes, clears its timers and releases quiet() waiters', async () => {
    const { batches, onBatch } = record()
    const batcher = createChangeBatcher(30, onBatch)
    batcher.arm()
    batcher.add(['/a'])
    let quiet = false
    void batcher.quiet(['/a']).then(() => (quiet = true))
    expect(vi.getTimerCount()).toBe(2)
    batcher.dispose()
    expect(vi.getTimerCount()).toBe(0)
    await vi.advanceTimersByTimeAsync(0)
    expect(quiet).toBe(true)
    batcher.add(['/b'])
    await vi.advanceTimersByTimeAsync(100)
    expect(batches).toEqual([])
    expect(batcher.pending).toBe(false)
  })
})
