import { describe, expect, it } from 'vitest'
import type { RunRecord } from '../core/dev/priority.ts'
import { prioritise } from '../core/dev/priority.ts'

const sel = (...tests: string[]) => tests.map(test => ({ test, reason: 'changed' }))

describe('test prioritisation within a reload', () => {
  it('runs tests whose last run failed first, then never-run ones, then the rest fastest first; ties keep their order', () => {
    const records = new Map<string, RunRecord>([
      ['slow', { failed: false, durationMs: 900 }],
      ['fast', { failed: false, durationMs: 5 }],
      ['mid', { failed: false, durationMs: 40 }],
      ['broken-slow', { failed: true, durationMs: 700 }],
      ['broken-fast', { failed: true, durationMs: 20 }],
      ['invalid', { failed: true }],
      ['tie-a', { failed: false, durationMs: 40 }],
    ])
    const order = prioritise(sel('slow', 'new-1', 'fast', 'broken-slow', 'mid', 'invalid', 'broken-fast', 'tie-a', 'new-2'), records).map(s => s.test)
    expect(order).toEqual(['invalid', 'broken-fast', 'broken-slow', 'new-1', 'new-2', 'fast', 'mid', 'tie-a', 'slow'])
  })

  it('keeps the selection as is without records, and keeps each selection\'s reason', () => {
    const selection = [{ test: 'b', reason: 'includes p' }, { test: 'a', reason: 'changed' }]
    expect(prioritise(selection, new Map())).toEqual(selection)
    expect(prioritise(selection, new Map([['a', { failed: true, durationMs: 3 }]]))).toEqual([selection[1], selection[0]])
  })
})
