import { realpathSync } from 'node:fs'
import { isAbsolute, relative } from 'node:path'

/** The real path (symlinks resolved), or `undefined` when it does not exist. */
export function realPath(path: string): string | undefined {
  try {
    return realpathSync.native(path)
  }
  catch {
    return undefined
  }
}

/** The real path of the project root, for comparisons with other real paths. */
export function realRootOf(root: string): string {
  return realPath(root) ?? root
}

/** True when `path` is not `root` or below it. Compare real paths with real paths. */
export function outside(root: string, path: string): boolean {
  const rel = relative(root, path)
  return rel.startsWith('..') || isAbsolute(rel)
}
