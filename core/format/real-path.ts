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

/** Answers of `outside` for absolute paths, which depend on nothing else; cleared when full. */
const outsideAnswers = new Map<string, boolean>()
const OUTSIDE_ANSWERS_MAX = 4096

/**
 * True when `path` is not `root` or below it. Compare real paths with real paths. Remembered for
 * absolute paths: every include of a partial asks it twice, and `relative` resolves both paths
 * again each time (a tenth of a template render that includes a partial).
 */
export function outside(root: string, path: string): boolean {
  if (!isAbsolute(root) || !isAbsolute(path)) return outsideOf(root, path)
  const key = `${root}\0${path}`
  let answer = outsideAnswers.get(key)
  if (answer === undefined) {
    if (outsideAnswers.size >= OUTSIDE_ANSWERS_MAX) outsideAnswers.clear()
    outsideAnswers.set(key, answer = outsideOf(root, path))
  }
  return answer
}

function outsideOf(root: string, path: string): boolean {
  const rel = relative(root, path)
  return rel.startsWith('..') || isAbsolute(rel)
}
