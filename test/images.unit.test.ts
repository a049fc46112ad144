import { afterEach, describe, expect, it, vi } from 'vitest'
import { resolveColors } from '../cli/context.ts'
import type { CommandContext } from '../cli/context.ts'
import { createProgress, formatBytes, formatPullAmounts } from '../cli/progress.ts'
import type { PoolEvent } from '../core/index.ts'
import { PULL_HEARTBEAT_MS, pullHeartbeatMs } from '../core/index.ts'
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

describe('a pull in progress in a log: a line every interval it says nothing else', () => {
  afterEach(() => vi.useRealTimers())
  const image = '127.0.0.1:5000/clnrm/big:1'
  const moved = (done: number, current: number): PoolEvent => ({ type: 'pool:image-pull', image, status: 'Downloading', layers: { done, total: 2 }, bytes: { current, total: 266_000_000 } })
  /** createProgress on stderr that is (not) a terminal, NO_COLOR, an interval of 1 s from the environment. */
  const open = (isTTY: boolean): { progress: ReturnType<typeof createProgress>; err: () => string } => {
    let err = ''
    const base = { cwd: '/', env: { COLUMNS: '200', CLNRM_PROGRESS_INTERVAL_MS: '1000' }, stdout: () => {}, stderr: (t: string) => void (err += t), isTTY }
    return { progress: createProgress({ ...base, c: resolveColors({ ...base, env: { NO_COLOR: '1' } }, true) }), err: () => err }
  }

  it('is 10 s unless CLNRM_PROGRESS_INTERVAL_MS says otherwise (a positive whole number)', () => {
    expect(PULL_HEARTBEAT_MS).toBe(10_000)
    expect(pullHeartbeatMs({})).toBe(10_000)
    expect(pullHeartbeatMs({ CLNRM_PROGRESS_INTERVAL_MS: '250' })).toBe(250)
    for (const bad of ['0', '-5', '1.5', 'soon', '']) expect(pullHeartbeatMs({ CLNRM_PROGRESS_INTERVAL_MS: bad })).toBe(10_000)
  })

  it('says the amounts and the time so far each interval, waits a whole interval after a layer line, stops at the end; a terminal keeps its live line instead', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
    const { progress, err } = open(false)
    progress.onEvent({ type: 'pool:image-pull-start', image, registry: '127.0.0.1:5000' })
    vi.advanceTimersByTime(999)
    expect(err()).toBe(`pulling ${image} from 127.0.0.1:5000\n`)
    // No layer named yet: the state the live line shows.
    vi.advanceTimersByTime(1)
    progress.onEvent(moved(0, 120_000_000))
    vi.advanceTimersByTime(1000)
    // A layer done: its own line; the next beat a whole interval after it.
    vi.advanceTimersByTime(500)
    progress.onEvent(moved(1, 130_000_000))
    vi.advanceTimersByTime(999)
    const held = err()
    vi.advanceTimersByTime(1)
    progress.onEvent({ type: 'pool:image-pull-done', image, registry: '127.0.0.1:5000', ms: 3500, layers: { done: 2, total: 2 }, bytes: { current: 266_000_000, total: 266_000_000 } })
    vi.advanceTimersByTime(10_000)
    expect(err()).toBe([
      `pulling ${image} from 127.0.0.1:5000`,
      `pulling ${image}: waiting, 1.00s so far`,
      `pulling ${image}: 0/2 layers, 120.0 MB/266.0 MB, 2.00s so far`,
      `pulling ${image}: 1/2 layers, 130.0 MB/266.0 MB`,
      `pulling ${image}: 1/2 layers, 130.0 MB/266.0 MB, 3.50s so far`,
      `pulled ${image} in 3.50s (2/2 layers, 266.0 MB/266.0 MB)`,
      '',
    ].join('\n'))
    expect(held).not.toContain('3.50s so far')

    const tty = open(true)
    tty.progress.onEvent({ type: 'pool:image-pull-start', image, registry: '127.0.0.1:5000' })
    tty.progress.onEvent(moved(0, 120_000_000))
    vi.advanceTimersByTime(5000)
    expect(tty.err()).not.toContain('so far')
    expect(tty.err()).toContain(`pulling ${image}: 0/2 layers, 120.0 MB/266.0 MB\n`)
  })
})
