import type { Selection } from './graph.ts'

/** What the session remembers of a test's last shown run, to order the next reload. */
export interface RunRecord {
  /** The last run did not pass (failed, errored, or the file was invalid). */
  failed: boolean
  /** How long its last completed run took; absent when it never completed one. */
  durationMs?: number
}

/**
 * Orders a reload's tests so the answers that matter come first: tests whose last run failed
 * (what the user is fixing), then tests never run (new ones, likely being written), then the rest
 * fastest first, each group fastest first. Ties keep the selection's order.
 */
export function prioritise(selection: readonly Selection[], records: ReadonlyMap<string, RunRecord>): Selection[] {
  const group = (s: Selection): number => {
    const record = records.get(s.test)
    if (record?.failed) return 0
    return record?.durationMs === undefined ? 1 : 2
  }
  return selection
    .map((s, index) => ({ s, index, group: group(s), ms: records.get(s.test)?.durationMs ?? 0 }))
    .sort((x, y) => x.group - y.group || x.ms - y.ms || x.index - y.index)
    .map(x => x.s)
}
