import { describe, expect, it, vi } from 'vitest'
import { createChangeBatcher } from '../core/dev/change-batcher.ts'

describe('change batcher', () => {
  it('hands over one batch after a quiet window, only once armed, and nothing after dispose', async () => {
    vi.useFakeTimers()
    try {
      const batches: string[][] = []
      const batcher = createChangeBatcher(30, batch => batches.push([...batch.paths.keys()]))
      batcher.add(['/a'])
      vi.advanceTimersByTime(100)
      expect(batches).toEqual([])
      batcher.arm()
      batcher.add(['/b', '/a'])
      vi.advanceTimersByTime(20)
      batcher.add(['/c'])
      vi.advanceTimersByTime(20)
      expect(batches).toEqual([])
      vi.advanceTimersByTime(40)
      expect(batches).toEqual([['/a', '/b', '/c']])
      expect(batcher.pending).toBe(false)
      batcher.add(['/d'])
      batcher.dispose()
      vi.advanceTimersByTime(100)
      expect(batches).toHaveLength(1)
      expect(batcher.pending).toBe(false)
    }
    finally {
      vi.useRealTimers()
    }
  })
})
