import { describe, expect, it } from 'vitest'
import { resolveColors } from '../cli/context.ts'
import type { CommandContext } from '../cli/context.ts'
import { createProgress, formatBytes, formatPullAmounts } from '../cli/progress.ts'
import type { PoolEvent } from '../core/index.ts'
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

  it('shows one live line per image in a terminal (redrawn, cut to the width) and plain lines in a log', () => {
    const image = (name: string): string => `127.0.0.1:5000/clnrm/${name}:1`
    const events: PoolEvent[] = [
      { type: 'pool:image-pull-start', image: image('a'), registry: '127.0.0.1:5000' },
      { type: 'pool:image-pull-start', image: image('b'), registry: '127.0.0.1:5000' },
      { type: 'pool:image-pull', image: image('a'), status: 'Downloading', layers: { done: 1, total: 2 }, bytes: { current: 4_000_000, total: 8_000_000 } },
      { type: 'pool:image-pull', image: image('b'), status: 'Downloading', layers: { done: 0, total: 2 }, bytes: { current: 1_000_000, total: 8_000_000 } },
      { type: 'pool:image-pull-done', image: image('a'), registry: '127.0.0.1:5000', ms: 1200, layers: { done: 2, total: 2 }, bytes: { current: 8_000_000, total: 8_000_000 } },
      { type: 'pool:image-pull-done', image: image('b'), registry: '127.0.0.1:5000', ms: 1300, layers: { done: 0, total: 2 }, bytes: { current: 1_000_000, total: 8_000_000 }, error: { message: 'x', reason: 'connection reset', hint: 'try again' } },
    ]
    const run = (isTTY: boolean): string => {
      let err = ''
      const base = { cwd: '/', env: { COLUMNS: '50' }, stdout: () => {}, stderr: (t: string) => void (err += t), isTTY }
      const ctx: CommandContext = { ...base, c: resolveColors({ ...base, env: { NO_COLOR: '1' } }, true) }
      const progress = createProgress(ctx)
      for (const event of events) progress.onEvent(event)
      progress.clear()
      return err
    }
    const tty = run(true)
    // Both images on live lines at once, each with its amounts, redrawn in place and cut to 49 columns.
    expect(tty).toContain(`\x1B[2A\r\x1B[Jpulling ${image('a')}: 1/2 layers, 4.…\npulling ${image('b')}: 0/2 layers, 1.…\n`)
    expect(tty).toContain(`pulled ${image('a')} in 1.20s (2/2 layers, 8.0 MB/8.0 MB)\n`)
    expect(tty).toContain(`could not pull ${image('b')} from 127.0.0.1:5000 after 1.30s: connection reset\n  hint: try again\n`)
    const log = run(false)
    expect(log).toBe([
      `pulling ${image('a')} from 127.0.0.1:5000`,
      `pulling ${image('b')} from 127.0.0.1:5000`,
      `pulling ${image('a')}: 1/2 layers, 4.0 MB/8.0 MB`,
      `pulled ${image('a')} in 1.20s (2/2 layers, 8.0 MB/8.0 MB)`,
      `could not pull ${image('b')} from 127.0.0.1:5000 after 1.30s: connection reset`,
      '  hint: try again',
      '',
    ].join('\n'))
  })
})
