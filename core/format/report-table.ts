import { resolve } from 'node:path'
import type { KeyPath, PendingDiagnostic } from './diagnostics.ts'
import { formatKeyPath } from './diagnostics.ts'
import { field, string, table } from './fields.ts'
import type { TypeDef } from './fields.ts'
import { outside } from './real-path.ts'

/** Where `clnrm run` writes a test file's own reports (`[report]`), absolute. */
export interface ReportSpec {
  json?: string
  junit?: string
  /** The SHA-256 (hex, one line) of the spans the file's tests were judged on. */
  digest?: string
}

const path = (example: string): TypeDef => string({ nonEmpty: true, examples: [example] })

/** `[report]`: upstream's `ReportConfig`. */
export const reportTable: TypeDef & { kind: 'table' } = table({
  json: field(path('reports/api.json'), 'After `clnrm run`, this file\'s results as the json reporter writes them. Relative to the project root, inside it; directories are created.'),
  junit: field(path('reports/api.junit.xml'), 'After `clnrm run`, this file\'s results as JUnit XML. Relative to the project root, inside it.'),
  digest: field(path('reports/api.trace.sha256'), 'After `clnrm run`, the SHA-256 of the spans this file\'s tests were judged on (hex and a newline), as upstream writes it. Relative to the project root, inside it.'),
})

type Report = (code: PendingDiagnostic['code'], message: string, path: KeyPath, target: PendingDiagnostic['target'], hint?: string) => void

/** The checked `[report]` paths, resolved against the project root, which they may not leave. */
export function normalizeReport(raw: Partial<Record<keyof ReportSpec, string>> | undefined, root: string, report: Report): ReportSpec | undefined {
  if (!raw) return undefined
  const result: ReportSpec = {}
  const seen = new Map<string, string>()
  for (const key of ['json', 'junit', 'digest'] as const) {
    const written = raw[key]
    if (written === undefined) continue
    const absolute = resolve(root, written)
    if (outside(root, absolute) || absolute === resolve(root)) {
      report('CLNRM_INVALID_VALUE', `${formatKeyPath(['report', key])} "${written}" resolves to ${absolute}, outside the project root ${root}`, ['report', key], 'value',
        'Write reports inside the project, e.g. "reports/name.json": a test file may not write elsewhere on the machine.')
      continue
    }
    const earlier = seen.get(absolute)
    if (earlier) {
      report('CLNRM_CONFLICTING_KEYS', `${formatKeyPath(['report', key])} and report.${earlier} name the same file`, ['report', key], 'value', 'Give each report its own file.')
      continue
    }
    seen.set(absolute, key)
    result[key] = absolute
  }
  return result
}
