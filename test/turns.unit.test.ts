import { describe, expect, it } from 'vitest'
import { PASS, Turns } from '../core/engine/turns.ts'

/** A pool of `free` slots that takers need `n` of at once. */
function slots(free: number) {
  const turns = new Turns<number>()
  const state = { free }
  const need = (n: number) => (): number | undefined => {
    if (state.free < n) return undefined
    state.free -= n
    return n
  }
  const give = (n: number): void => {
    state.free += n
    turns.pump()
  }
  return { turns, state, need, give }
}

describe('Turns: first come, first served, all at once', () => {
  it('answers at once, without a promise, when nobody waits and there is room', () => {
    const { turns, need } = slots(2)
    expect(turns.take(need(2), new AbortController().signal, () => new Error('aborted'))).toBe(2)
  })

  it('serves in arrival order and never lets a small request overtake a large one', async () => {
    const { turns, state, need, give } = slots(0)
    const signal = new AbortController().signal
    const order: string[] = []
    const big = Promise.resolve(turns.take(need(3), signal, () => new Error('aborted'))).then(() => order.push('big'))
    const small = Promise.resolve(turns.take(need(1), signal, () => new Error('aborted'))).then(() => order.push('small'))
    give(1)
    give(1)
    // Two free: enough for the small one, but the big one came first.
    await Promise.resolve()
    expect(order).toEqual([])
    expect(turns.size).toBe(2)
    give(2)
    await Promise.all([big, small])
    expect(order).toEqual(['big', 'small'])
    expect(state.free).toBe(0)
  })

  it('lets an aborted waiter leave at once, and those behind it go', async () => {
    const { turns, need, give } = slots(1)
    const controller = new AbortController()
    const stuck = turns.take(need(5), controller.signal, () => new Error('aborted'))
    const behind = turns.take(need(1), new AbortController().signal, () => new Error('aborted'))
    give(0)
    expect(turns.size).toBe(2)
    controller.abort()
    await expect(stuck).rejects.toThrow('aborted')
    await expect(behind).resolves.toBe(1)
    expect(turns.size).toBe(0)
  })

  it('lets others by a waiter that passes, keeps its place, and serves it first once it can go', async () => {
    const { turns, state, need, give } = slots(0)
    const signal = new AbortController().signal
    let mine = false
    const order: string[] = []
    // Waits for something of its own (a busy container of its definition): others may pass it.
    const own = Promise.resolve(turns.take(() => (mine ? 1 : PASS), signal, () => new Error('aborted'))).then(() => order.push('own'))
    const other = Promise.resolve(turns.take(need(1), signal, () => new Error('aborted'))).then(() => order.push('other'))
    const big = Promise.resolve(turns.take(need(2), signal, () => new Error('aborted'))).then(() => order.push('big'))
    give(1)
    await other
    expect(order).toEqual(['other'])
    mine = true
    turns.pump()
    await own
    expect(order).toEqual(['other', 'own'])
    give(2)
    await big
    expect(state.free).toBe(0)
    expect(turns.size).toBe(0)
  })
})
