import { relative, sep } from 'node:path'

/** What every machine-readable reporter needs besides the results. */
export interface ReportOptions {
  /** The project root: reports carry paths relative to it. */
  root: string
}

/** A path relative to the project root with `/` on every OS; a file outside it stays absolute. */
export function reportPath(file: string, root: string): string {
  const rel = relative(root, file)
  return rel && !rel.startsWith('..') ? rel.split(sep).join('/') : file
}
