import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const core = resolve(import.meta.dirname, '../core')

/** Every module a folder's files import, followed through that folder's own relative imports. */
function importsOf(folder: string): Array<{ from: string; to: string }> {
  const found: Array<{ from: string; to: string }> = []
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.ts')) {
        for (const match of readFileSync(path, 'utf8').matchAll(/\bfrom\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/g)) {
          const spec = match[1] ?? match[2]!
          found.push({ from: relative(core, path), to: spec.startsWith('.') ? relative(core, resolve(dirname(path), spec)) : spec })
        }
      }
    }
  }
  walk(join(core, folder))
  return found
}

describe('the layout shows the engine seam', () => {
  it('core/format/ (the test-file model) imports nothing of the engine layer, the dev loop or a Docker client', () => {
    const offending = importsOf('format').filter(({ to }) => /^(engine|dev)\//.test(to) || /^(dockerode|testcontainers)(\/|$)/.test(to))
    expect(offending).toEqual([])
  })

  it('only core/engine/ talks to dockerode and testcontainers', () => {
    const folders = readdirSync(core, { withFileTypes: true }).filter(e => e.isDirectory() && e.name !== 'engine').map(e => e.name)
    const offending = folders.flatMap(importsOf).filter(({ to }) => /^(dockerode|testcontainers)(\/|$)/.test(to))
    const topLevel = readdirSync(core).filter(name => name.endsWith('.ts'))
      .filter(name => /from\s+'(dockerode|testcontainers)/.test(readFileSync(join(core, name), 'utf8')))
    expect([...offending, ...topLevel]).toEqual([])
  })
})
