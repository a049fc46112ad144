import { OUTPUT_CAP_BYTES } from '../engine/exec/types.ts'
import type { StepResult } from '../run.ts'

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

/**
 * One note per step stream whose output a report shows cut (its head and tail): every view says
 * so, also on a pass, so no report looks as if it held the whole output. Expectations were judged
 * on the whole stream all the same.
 */
export function truncationNotes(steps: readonly Pick<StepResult, 'name' | 'truncated' | 'bytes'>[]): string[] {
  const notes: string[] = []
  for (const step of steps) {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (!step.truncated[stream]) continue
      const size = step.bytes ? ` of ${mib(step.bytes[stream])}` : ''
      notes.push(`step "${step.name}" ${stream}${size} shown as its first and last ${OUTPUT_CAP_BYTES / 2 / 1024} KiB`)
    }
  }
  return notes
}
