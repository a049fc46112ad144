import pc from 'picocolors'
import type { PoolEvent, TestSpec } from '../core/index.ts'
import { formatDuration, formatPullAmounts, printable } from '../core/index.ts'
import type { PullView } from './protocol.ts'

/** A line for Vite's terminal: `info` for a pull starting or done, `error` for one that failed. */
export interface PullLine {
  level: 'info' | 'error'
  text: string
}

/** Turns the pool's image-pull events into the panel's pull lines and Vite's terminal lines. */
export interface PullTracker {
  /** Takes a pool event: whether the panel's lines changed, and the terminal lines it gives (often none). */
  onEvent: (event: PoolEvent) => { changed: boolean; lines: PullLine[] }
  /**
   * A reload finished: the lines of pulled images go (their tests have results now), and those of
   * failed images that no test uses any more. Returns whether a line went.
   */
  settle: (inUse: ReadonlySet<string>) => boolean
  /** The panel's lines, in the order the pulls started. */
  views: () => PullView[]
}

/** Every image the given tests use (matrix variants included), for `PullTracker.settle`. */
export function imagesOf(specs: Iterable<TestSpec | undefined>): Set<string> {
  const images = new Set<string>()
  for (const spec of specs) {
    if (!spec) continue
    for (const variant of spec.variants ?? [spec]) for (const service of Object.values(variant.services)) images.add(service.image)
  }
  return images
}

interface Entry extends PullView {
  /** A failed image being pulled again (the dev loop retries on every run): shown as failed until it fetches bytes. */
  retrying?: boolean
}

/**
 * The panel shows one line per image, patched in place as the pull goes; Vite's terminal gets a
 * line when a pull starts and one when it ends (with the reason and the next step when it fails).
 * The dev loop pulls a missing image again on every run that needs it: a retry that fails the same
 * way is quiet (the tests' own result lines say it each reload), one that fetches shows again.
 */
export function createPullTracker(): PullTracker {
  const entries = new Map<string, Entry>()
  const startLine = (entry: Entry): PullLine => ({ level: 'info', text: pc.dim(`pulling ${printable(entry.image)} from ${printable(entry.registry)}; tests using it wait for it`) })

  return {
    onEvent(event) {
      switch (event.type) {
        case 'pool:image-pull-start': {
          const known = entries.get(event.image)
          if (known?.state === 'failed') {
            known.retrying = true
            return { changed: false, lines: [] }
          }
          const entry: Entry = { image: event.image, registry: event.registry, state: 'pulling', amounts: '', bytes: { current: 0, total: 0 } }
          // A new pull of a pulled image (removed meanwhile) starts its line again, at the end.
          entries.delete(event.image)
          entries.set(event.image, entry)
          return { changed: true, lines: [startLine(entry)] }
        }
        case 'pool:image-pull': {
          const entry = entries.get(event.image)
          if (!entry) return { changed: false, lines: [] }
          const lines: PullLine[] = []
          if (entry.state === 'failed') {
            // Bytes flow on a retry: the image is there now (pushed meanwhile): show it as pulling again.
            if (!entry.retrying || !event.bytes.current) return { changed: false, lines: [] }
            entry.state = 'pulling'
            delete entry.error
            delete entry.took
            entry.retrying = false
            lines.push(startLine(entry))
          }
          const amounts = formatPullAmounts(event)
          const changed = lines.length > 0 || amounts !== entry.amounts || event.bytes.current !== entry.bytes.current
          entry.amounts = amounts
          entry.bytes = { ...event.bytes }
          return { changed, lines }
        }
        case 'pool:image-pull-done': {
          const entry = entries.get(event.image) ?? { image: event.image, registry: event.registry, state: 'pulling', amounts: '', bytes: { current: 0, total: 0 } }
          entries.set(event.image, entry)
          const took = formatDuration(event.ms)
          if (event.error) {
            const again = entry.state === 'failed' && entry.error?.reason === event.error.reason
            entry.retrying = false
            if (again) return { changed: false, lines: [] }
            entry.state = 'failed'
            entry.took = took
            entry.error = { reason: event.error.reason, hint: event.error.hint }
            return { changed: true, lines: [{ level: 'error', text: `${pc.red('✗')} could not pull ${printable(event.image)} from ${printable(event.registry)} ${pc.dim(`after ${took}`)}: ${printable(event.error.reason)}\n  ${pc.dim(`hint: ${printable(event.error.hint)}`)}` }] }
          }
          Object.assign(entry, { state: 'pulled', took, amounts: formatPullAmounts(event), bytes: { ...event.bytes }, retrying: false })
          delete entry.error
          return { changed: true, lines: [{ level: 'info', text: `${pc.green('✓')} pulled ${printable(event.image)} in ${took}${entry.amounts ? pc.dim(` (${entry.amounts})`) : ''}` }] }
        }
        default:
          return { changed: false, lines: [] }
      }
    },
    settle(inUse) {
      let gone = false
      for (const [image, entry] of entries) {
        if (entry.state === 'pulled' || (entry.state === 'failed' && !inUse.has(image))) {
          entries.delete(image)
          gone = true
        }
      }
      return gone
    },
    views: () => [...entries.values()].map(({ retrying: _retrying, ...view }) => view),
  }
}
