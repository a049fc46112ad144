import { beforeAll } from 'vitest'
import type { ContainerPool, PoolEvent } from '../core/index.ts'
import { createRecordingPool } from './engine.ts'
import { tempDir } from './helpers.ts'

/** A real pool that records its events and a temporary directory for test files, closed together. */
export interface PoolFixture {
  pool: ContainerPool
  /** Every event the pool emitted, in order. */
  events: PoolEvent[]
  /** A fresh temporary directory (for `specFrom`). */
  dir: string
  /** Closes the pool, runs `afterClose`, then removes the directory; safe to call twice. */
  close: () => Promise<void>
}

/** What a suite checks between the pool's close and the directory's removal. */
export interface PoolFixtureOptions {
  /** Runs once the pool has closed, e.g. to assert the engine holds nothing of its session. */
  afterClose?: (pool: ContainerPool) => void | Promise<void>
}

/** Opens a recording pool and a temporary directory; `close` ends both (see `usePool` for a suite). */
export async function openPool(options: PoolFixtureOptions = {}): Promise<PoolFixture> {
  const { pool, events } = await createRecordingPool()
  const { dir, cleanup } = await tempDir()
  let closing: Promise<void> | undefined
  // Memoised, so a suite that closes early (or a hook and a test both) closes once.
  const close = (): Promise<void> => (closing ??= (async () => {
    try {
      await pool.close()
      await options.afterClose?.(pool)
    }
    finally {
      await cleanup()
    }
  })())
  return { pool, events, dir, close }
}

/**
 * The engine suites' set-up: opens a pool fixture before the suite's tests (handing it to
 * `assign`, which keeps what the tests use: `usePool(made => ({ pool, dir } = made))`) and closes
 * it after them.
 */
export function usePool(assign: (made: PoolFixture) => void, options: PoolFixtureOptions = {}): void {
  beforeAll(async () => {
    const made = await openPool(options)
    assign(made)
    // beforeAll runs the function it returns once the suite is done.
    return made.close
  })
}
