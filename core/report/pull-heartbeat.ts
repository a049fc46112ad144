import type { PoolEvent } from '../engine/pool-types.ts'
import { formatPullAmounts } from '../format/amounts.ts'
import { formatDuration } from '../format/duration.ts'
import { printable } from './printable.ts'

/**
 * How long output that cannot redraw a line (a CI log, a pipe, Vite's terminal) stays silent
 * about a pull still in progress: a pull of a large layer can last minutes with no other line.
 */
export const PULL_HEARTBEAT_MS = 10_000

/**
 * The heartbeat interval: `CLNRM_PROGRESS_INTERVAL_MS` when it is a positive whole number (tests
 * cannot wait 10 s for each line), else `PULL_HEARTBEAT_MS`.
 */
export function pullHeartbeatMs(env: Readonly<Record<string, string | undefined>>): number {
  const value = Number(env.CLNRM_PROGRESS_INTERVAL_MS)
  return Number.isInteger(value) && value > 0 ? value : PULL_HEARTBEAT_MS
}

/** A pull in progress, as a heartbeat reports it. */
export interface PullBeat {
  image: string
  /** `1/2 layers, 1.0 MB/8.0 MB` (`formatPullAmounts`), or the engine's latest status before it named a layer. */
  amounts: string
  /** Since the pull started. */
  elapsedMs: number
}

/** `pulling <image>: 1/2 layers, 1.0 MB/8.0 MB, 1m 10s so far`: the start of the CLI's other pull lines, with the time. */
export function formatPullBeat(beat: PullBeat): string {
  return `pulling ${printable(beat.image)}: ${printable(beat.amounts)}, ${formatDuration(beat.elapsedMs)} so far`
}

/** Follows the pool's pull events and calls `onBeat` for a pull nothing was said about for an interval. */
export interface PullHeartbeat {
  onEvent: (event: PoolEvent) => void
  /** A line about `image` was just shown: its next beat comes a whole interval later. */
  said: (image: string) => void
  /** Stops every beat (the pulls may go on; nobody is told about them any more). */
  close: () => void
}

interface Pull {
  started: number
  amounts: string
  timer: ReturnType<typeof setTimeout>
}

/**
 * A beat per pull in progress, `intervalMs` after its start or after the last line about it, then
 * every `intervalMs` until it ends. The timers are unref'd: a pull left running by a cancelled
 * run never keeps the process alive.
 */
export function createPullHeartbeat(options: { intervalMs: number; onBeat: (beat: PullBeat) => void }): PullHeartbeat {
  const pulls = new Map<string, Pull>()
  const schedule = (image: string): ReturnType<typeof setTimeout> => {
    const timer = setTimeout(() => {
      const pull = pulls.get(image)
      if (!pull) return
      pull.timer = schedule(image)
      options.onBeat({ image, amounts: pull.amounts, elapsedMs: performance.now() - pull.started })
    }, options.intervalMs)
    // Deno's timers are numbers, with nothing to unref.
    ;(timer as { unref?: () => void }).unref?.()
    return timer
  }
  const stop = (image: string): void => {
    clearTimeout(pulls.get(image)?.timer)
    pulls.delete(image)
  }
  return {
    onEvent(event) {
      switch (event.type) {
        case 'pool:image-pull-start':
          stop(event.image)
          pulls.set(event.image, { started: performance.now(), amounts: 'waiting', timer: schedule(event.image) })
          break
        case 'pool:image-pull': {
          const pull = pulls.get(event.image)
          if (pull) pull.amounts = formatPullAmounts(event) || event.status || pull.amounts
          break
        }
        case 'pool:image-pull-done':
          stop(event.image)
          break
        default:
      }
    },
    said(image) {
      const pull = pulls.get(image)
      if (!pull) return
      clearTimeout(pull.timer)
      pull.timer = schedule(image)
    },
    close() {
      for (const image of [...pulls.keys()]) stop(image)
    },
  }
}
