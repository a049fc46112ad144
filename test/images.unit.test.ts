import { describe, expect, it } from 'vitest'
import { formatBytes, formatPullAmounts } from '../cli/progress.ts'
import { pullHint, registryOf } from '../core/engine/images.ts'

describe('image pulls: registries, hints, progress text', () => {
  it('reads the registry of a reference as Docker does', () => {
    expect(registryOf('busybox:1.36')).toBeUndefined()
    expect(registryOf('library/busybox')).toBeUndefined()
    expect(registryOf('127.0.0.1:5000/clnrm/busybox:1')).toBe('127.0.0.1:5000')
    expect(registryOf('ghcr.io/acme/api:2')).toBe('ghcr.io')
    expect(registryOf('localhost/x')).toBe('localhost')
  })

  it('gives a hint for the reason: unreachable (even "no such host"), refused, missing, other', () => {
    expect(pullHint('a/b:1', 'docker.io', 'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host')).toMatch(/^docker\.io is not reachable from the Docker engine/)
    expect(pullHint('r:5000/b:1', 'r:5000', 'unauthorized: authentication required')).toMatch(/docker login r:5000/)
    expect(pullHint('r:5000/b:1', 'r:5000', 'manifest for r:5000/b:1 not found: manifest unknown')).toMatch(/^r:5000 has no image r:5000\/b:1: .*docker push r:5000\/b:1/)
    expect(pullHint('b:1', 'docker.io', 'something else')).toMatch(/docker pull b:1/)
  })

  it('prints amounts as Docker does (decimal units), layers already present counted as done', () => {
    expect(formatBytes(812)).toBe('812 B')
    expect(formatBytes(30_500_000)).toBe('30.5 MB')
    expect(formatBytes(2_000_000_000)).toBe('2.0 GB')
    expect(formatPullAmounts({ layers: { done: 0, total: 0 }, bytes: { current: 0, total: 0 } })).toBe('')
    expect(formatPullAmounts({ layers: { done: 1, total: 1 }, bytes: { current: 0, total: 0 } })).toBe('1/1 layer')
    expect(formatPullAmounts({ layers: { done: 2, total: 3 }, bytes: { current: 12_100_000, total: 30_500_000 } })).toBe('2/3 layers, 12.1 MB/30.5 MB')
  })
})
