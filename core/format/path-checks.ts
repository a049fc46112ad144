import { existsSync } from 'node:fs'
import { dirname, relative } from 'node:path'
import picomatch from 'picomatch'
import { globSync, isDynamicPattern } from 'tinyglobby'
import type { KeyPath, PendingDiagnostic } from './diagnostics.ts'
import { outside, realPath } from './real-path.ts'
import type { TestSpec } from './spec.ts'

/**
 * A path a test file names whose rule depends on the file system, not on the file's text: it
 * is checked on every load (the config cache holds only what the text decides).
 */
export type PathCheck =
  /** `machine`: written as an absolute path, which upstream requires; it may lie outside the root. */
  | { kind: 'volume'; path: KeyPath; written: string; absolute: string; service: string; index: number; machine?: boolean }
  | { kind: 'watch-files'; path: KeyPath; written: string; absolute: string }
  | { kind: 'watch-module'; path: KeyPath; written: string; absolute: string }

/** What the file system said: problems, and the real paths volumes must mount. */
export interface PathCheckResult {
  pending: PendingDiagnostic[]
  /** `service id → volume index → real path`, only where it differs from the written path. */
  realVolumes: Map<string, Map<number, string>>
}

// Extensions Vite resolves for an entry written without one.
const MODULE_EXTENSIONS = ['', '.ts', '.tsx', '.mts', '.js', '.jsx', '.mjs', '.vue', '.svelte']

/**
 * Runs the file-system rules: volumes must exist and, symlinks resolved, stay inside the root;
 * `[watch] files` globs must stay inside the root and should match something; `[watch] modules`
 * should exist. Costs one realpath per volume and one glob walk per `[watch] files` entry.
 */
export function runPathChecks(checks: readonly PathCheck[], root: string, realRoot: string): PathCheckResult {
  const pending: PendingDiagnostic[] = []
  const realVolumes = new Map<string, Map<number, string>>()
  const report = (severity: PendingDiagnostic['severity'], code: PendingDiagnostic['code'], message: string, path: KeyPath, hint: string): void => {
    pending.push({ code, severity, message, hint, path, target: 'value' })
  }
  for (const check of checks) {
    if (check.kind === 'volume') {
      const real = realPath(check.absolute)
      if (real === undefined) {
        report('error', 'CLNRM_VOLUME_NOT_FOUND', `Volume host_path "${check.written}" does not exist (${check.absolute})`, check.path,
          'Create it, or fix the path: the engine would otherwise create an empty, root-owned directory in its place.')
      }
      else if (!check.machine && outside(realRoot, real)) {
        report('error', 'CLNRM_VOLUME_OUTSIDE_ROOT', `Volume host_path "${check.written}" leads through a symlink to ${real}, outside the project root ${realRoot}`, check.path,
          'Mount only files inside the project; copy what the test needs into it instead of linking to it.')
      }
      else if (check.machine ? real !== check.absolute : relative(realRoot, real) !== relative(root, check.absolute)) {
        // A link below the root: mount the checked path, not the link, which could be pointed
        // elsewhere before the mount. (A root that is itself under a link, as /tmp on macOS, keeps
        // the written paths, which the dev loop's watcher reports.)
        let byIndex = realVolumes.get(check.service)
        if (!byIndex) realVolumes.set(check.service, byIndex = new Map())
        byIndex.set(check.index, real)
      }
    }
    else if (check.kind === 'watch-files') {
      const dynamic = isDynamicPattern(check.absolute)
      const base = dynamic ? picomatch.scan(check.absolute).base : check.absolute
      const realBase = realPathOfNearest(base)
      if (outside(realRoot, realBase)) {
        report('error', 'CLNRM_WATCH_OUTSIDE_ROOT', `[watch] files "${check.written}" leads through a symlink to ${realBase}, outside the project root ${realRoot}`, check.path,
          'Watch files inside the project only: the dev loop would watch everything below that directory.')
      }
      else if (!(dynamic ? globMatches(check.absolute, base) : existsSync(check.absolute))) {
        report('warning', 'CLNRM_WATCH_NO_MATCH', `[watch] files "${check.written}" matches no file`, check.path,
          'Check the spelling: globs are relative to the test file. A glob that matches nothing never reruns the test.')
      }
    }
    else if (!MODULE_EXTENSIONS.some(ext => existsSync(check.absolute + ext)) && !MODULE_EXTENSIONS.slice(1).some(ext => existsSync(`${check.absolute}/index${ext}`))) {
      report('warning', 'CLNRM_WATCH_NO_MATCH', `[watch] modules "${check.written}" does not exist (${check.absolute})`, check.path,
        'Check the spelling: modules are relative to the test file. A module that does not exist never reruns the test.')
    }
  }
  return { pending, realVolumes }
}

/** The spec with volumes mounting their real paths; the same object when nothing changed. */
export function withRealVolumes(spec: TestSpec, realVolumes: PathCheckResult['realVolumes']): TestSpec {
  if (realVolumes.size === 0) return spec
  const services = { ...spec.services }
  for (const [id, byIndex] of realVolumes) {
    const service = services[id]
    if (!service) continue
    services[id] = { ...service, volumes: service.volumes.map((v, i) => (byIndex.has(i) ? { ...v, hostPath: byIndex.get(i)! } : v)) }
  }
  return { ...spec, services }
}

/** The real path of the nearest existing ancestor, with the rest appended: globs may name directories not created yet. */
function realPathOfNearest(path: string): string {
  for (let dir = path, rest = ''; ; rest = `/${relative(dirname(dir), dir)}${rest}`, dir = dirname(dir)) {
    const real = realPath(dir)
    if (real !== undefined) return real + rest
    if (dirname(dir) === dir) return path
  }
}

// A file each glob matched last time: while it exists the glob still matches, so a load costs
// one stat instead of a walk of the tree (the dev loop loads a test on every rerun).
const lastMatch = new Map<string, string>()

function globMatches(absolute: string, base: string): boolean {
  const known = lastMatch.get(absolute)
  if (known !== undefined && existsSync(known)) return true
  const pattern = relative(base, absolute)
  const ignore = pattern.includes('node_modules') ? [] : ['**/node_modules/**', '**/.git/**']
  let first: string | undefined
  try {
    // Symlinks are not followed: a link inside the root must not make the walk leave it.
    first = globSync(pattern, { cwd: base, ignore, dot: true, onlyFiles: false, followSymbolicLinks: false, absolute: true })[0]
  }
  catch {}
  if (first === undefined) {
    lastMatch.delete(absolute)
    return false
  }
  if (lastMatch.size >= 1000) lastMatch.clear()
  lastMatch.set(absolute, first)
  return true
}
