import { describe, expect, it } from 'vitest'
import { createPullTracker, imagesOf } from '../plugin-vite/pulls.ts'
import type { TestSpec } from '../core/index.ts'

const amounts = (done: number, total: number, current: number, bytes: number) => ({ layers: { done, total }, bytes: { current, total: bytes } })
const strip = (text: string): string => text.replace(/\x1B\[[0-9;]*m/g, '')

describe('the Vite plugin\'s pull lines (panel and terminal), from pool events', () => {
  it('a line per image while it is pulled, patched with its amounts; a terminal line at start and end', () => {
    const t = createPullTracker()
    const start = t.onEvent({ type: 'pool:image-pull-start', image: 'r:5000/a:1', registry: 'r:5000' })
    expect(start.changed).toBe(true)
    expect(start.lines.map(l => strip(l.text))).toEqual(['pulling r:5000/a:1 from r:5000; tests using it wait for it'])
    const progress = t.onEvent({ type: 'pool:image-pull', image: 'r:5000/a:1', status: 'Downloading', ...amounts(0, 2, 1_000_000, 8_000_000) })
    expect(progress).toEqual({ changed: true, lines: [] })
    expect(t.views()).toEqual([{ image: 'r:5000/a:1', registry: 'r:5000', state: 'pulling', amounts: '0/2 layers, 1.0 MB/8.0 MB', bytes: { current: 1_000_000, total: 8_000_000 } }])
    const done = t.onEvent({ type: 'pool:image-pull-done', image: 'r:5000/a:1', registry: 'r:5000', ms: 1200, ...amounts(2, 2, 8_000_000, 8_000_000) })
    expect(done.lines).toEqual([{ level: 'info', text: expect.any(String) }])
    expect(strip(done.lines[0]!.text)).toBe('✓ pulled r:5000/a:1 in 1.20s (2/2 layers, 8.0 MB/8.0 MB)')
    expect(t.views()[0]).toMatchObject({ state: 'pulled', took: '1.20s' })
    // A reload finished: the pulled line goes.
    expect(t.settle(new Set(['r:5000/a:1']))).toBe(true)
    expect(t.views()).toEqual([])
  })

  it('a failure says the reason and next step once; a retry failing the same way is quiet; bytes on a retry show it pulling again', () => {
    const t = createPullTracker()
    const fail = { type: 'pool:image-pull-done' as const, image: 'ghost:1', registry: 'docker.io', ms: 80, ...amounts(0, 0, 0, 0), error: { message: 'Image "ghost:1" …', reason: 'manifest unknown', hint: 'docker.io has no image ghost:1: …' } }
    t.onEvent({ type: 'pool:image-pull-start', image: 'ghost:1', registry: 'docker.io' })
    const first = t.onEvent(fail)
    expect(first.lines.map(l => [l.level, strip(l.text)])).toEqual([['error', '✗ could not pull ghost:1 from docker.io after 80ms: manifest unknown\n  hint: docker.io has no image ghost:1: …']])
    expect(t.views()[0]).toMatchObject({ state: 'failed', error: { reason: 'manifest unknown', hint: 'docker.io has no image ghost:1: …' } })
    // The dev loop tries again on the next run: the line stays as it is, nothing more is said.
    expect(t.onEvent({ type: 'pool:image-pull-start', image: 'ghost:1', registry: 'docker.io' })).toEqual({ changed: false, lines: [] })
    expect(t.onEvent({ type: 'pool:image-pull', image: 'ghost:1', status: 'Pulling fs layer', ...amounts(0, 1, 0, 0) })).toEqual({ changed: false, lines: [] })
    expect(t.onEvent(fail)).toEqual({ changed: false, lines: [] })
    // A failed image still used by a test keeps its line; once none uses it, it goes.
    expect(t.settle(new Set(['ghost:1']))).toBe(false)
    expect(t.views()).toHaveLength(1)
    // Pushed meanwhile: the retry fetches bytes and the line is a pull again.
    t.onEvent({ type: 'pool:image-pull-start', image: 'ghost:1', registry: 'docker.io' })
    const flowing = t.onEvent({ type: 'pool:image-pull', image: 'ghost:1', status: 'Downloading', ...amounts(0, 1, 500, 1000) })
    expect(flowing.changed).toBe(true)
    expect(flowing.lines.map(l => strip(l.text))).toEqual(['pulling ghost:1 from docker.io; tests using it wait for it'])
    expect(t.views()[0]).toMatchObject({ state: 'pulling', amounts: '0/1 layer, 500 B/1.0 kB' })
    expect(t.views()[0]).not.toHaveProperty('error')
    t.onEvent(fail)
    expect(t.settle(new Set())).toBe(true)
    expect(t.views()).toEqual([])
  })

  it('imagesOf: every service image of the tests, matrix variants included', () => {
    const spec = (images: string[], variants?: TestSpec[]): TestSpec => ({ services: Object.fromEntries(images.map((image, i) => [`s${i}`, { image }])), ...(variants && { variants }) }) as unknown as TestSpec
    expect([...imagesOf([spec(['a:1', 'b:1']), undefined, spec([], [spec(['c:1']), spec(['d:1'])])])].sort()).toEqual(['a:1', 'b:1', 'c:1', 'd:1'])
  })
})
