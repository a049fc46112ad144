import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createTestLoader, parseProjectFile } from '../core/index.ts'
import type { TestLoader } from '../core/index.ts'

/** Absolute path of a fixture under test/fixtures. */
export const fixture = (...parts: string[]): string => resolve(import.meta.dirname, 'fixtures', ...parts)

/** A loader over the fixture project (test/fixtures/clnrm.toml). */
export function fixtureLoader(env: Record<string, string | undefined> = {}): TestLoader {
  const projectFile = fixture('clnrm.toml')
  const project = { root: fixture(), ...parseProjectFile(projectFile, readFileSync(projectFile, 'utf8')) }
  return createTestLoader({ project, env })
}

/** A fresh temporary directory, removed by the returned function. */
export async function tempDir(prefix = 'clnrm-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) }
}

/** Writes `files` (a relative path → its text) under `dir`, making the folders they need. */
export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true })
    writeFileSync(join(dir, name), text)
  }
}
