import { readFile } from 'node:fs/promises'
import type { KeyPath } from './format/diagnostics.ts'
import type { StepFailure } from './expect.ts'
import type { Position } from './format/locate.ts'
import { createKeyFinder } from './format/locate.ts'
import { mapToTemplate } from './format/source-map.ts'
import type { StepSpec, TestSpec } from './format/spec.ts'

/** The text a spec was loaded from: the TOML parsed, and for a template its source when known. */
export interface SpecSource {
  toml: string
  /** The template's text; read from the file when absent and the file is a template. */
  template?: string
}

/**
 * The text a variant's failures are located in: a `[matrix]` template renders each combination
 * to its own TOML, where a key may stand on another line than in the first combination's (which
 * is what a loaded file's `toml` holds).
 */
export function variantSource(spec: Pick<TestSpec, 'toml'>, source: SpecSource | undefined): SpecSource | undefined {
  return source && spec.toml !== undefined ? { ...source, toml: spec.toml } : source
}

/** Finds where a failure's key is written: the first candidate path the file really has. */
export type FailureLocator = (candidates: readonly KeyPath[]) => Promise<Position | undefined>

/**
 * A locator over one file's text. The position-keeping parse runs only at the first failure,
 * so passing runs (the dev loop's common case) never pay for it.
 */
export function createFailureLocator(file: string, source: SpecSource): FailureLocator {
  let find: ((path: KeyPath) => Position | undefined) | undefined
  let template: Promise<string | undefined> | undefined
  return async (candidates) => {
    find ??= createKeyFinder(source.toml)
    let at: Position | undefined
    for (const path of candidates) {
      at = find(path)
      if (at) break
    }
    if (!at || !file.endsWith('.eta')) return at
    template ??= source.template !== undefined ? Promise.resolve(source.template) : readFile(file, 'utf8').catch(() => undefined)
    const text = await template
    return (text !== undefined && mapToTemplate(text, source.toml, at)) || at
  }
}

/**
 * Where a step's failing expectation may be written, most precise first: the pattern in its
 * list, the key, the key a scenario passes down to its nested steps, and for an implicit key
 * (`expected_exit_code` 0, the default timeout) the command the step runs; last the step itself.
 */
export function failureKeyPaths(step: Pick<StepSpec, 'source'>, failure: Pick<StepFailure, 'key' | 'index'>): KeyPath[] {
  const base = step.source
  // A nested scenario step (`scenario[i].steps[j]`) inherits keys from its scenario (`scenario[i]`).
  const owners: KeyPath[] = [base]
  if (base.length === 4 && base[0] === 'scenario' && base[2] === 'steps') owners.push(base.slice(0, 2))
  const key = failure.key
  if (key === undefined) return [base]
  const paths: KeyPath[] = []
  for (const owner of owners) {
    if (failure.index !== undefined) paths.push([...owner, key, failure.index])
    paths.push([...owner, key])
  }
  for (const owner of owners) paths.push([...owner, 'run'], [...owner, 'command'])
  paths.push(base)
  return paths
}

/** Where the test's own time budget is written: `[meta] timeout` or `[test.metadata] timeout`. */
export const TEST_TIMEOUT_PATHS: readonly KeyPath[] = [['meta', 'timeout'], ['test', 'metadata', 'timeout'], ['meta'], ['test', 'metadata']]
