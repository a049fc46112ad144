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

  it('quiet() (what an invalid result waits for) resolves once no change came for the quiet window, later while changes keep coming', async () => {
    const batcher = createChangeBatcher(30, () => {})
    batcher.arm()
    let quiet = false
    // No change within the window: at once.
    await batcher.quiet()
    batcher.add(['/a'])
    void batcher.quiet().then(() => (quiet = true))
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

  it('dispose drops later changes, clears its timers and releases quiet() waiters', async () => {
    const { batches, onBatch } = record()
    const batcher = createChangeBatcher(30, onBatch)
    batcher.arm()
    batcher.add(['/a'])
    let quiet = false
    void batcher.quiet().then(() => (quiet = true))
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
