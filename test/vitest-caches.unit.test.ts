import { describe, expect, it } from 'vitest'
import { createTestLoader, loadProject } from '../core/index.ts'
import { createProjectCaches } from '../plugin-vitest/caches.ts'
import { tempDir } from './helpers.ts'

/** 1000 distinct templates: more than the 100 templates and 500 configs the caches start with. */
const FILES = 1000
const source = (i: number): string => `[meta]\nname = "<%= 'test ${i}' %>"\n[services.box]\nimage = "busybox:1.36"\n[[steps]]\nname = "s${i}"\nrun = "true"\n`

describe('clnrm/vitest\'s caches grow with the project, as the dev loop\'s do', () => {
  it('a second pass over 1000 template files hits every template and config (fixed-size caches evict them)', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      const project = await loadProject({ cwd: dir })
      const files = Array.from({ length: FILES }, (_, i) => `${dir}/t${i}.clnrm.toml.eta`)
      const caches = createProjectCaches()
      const pass = (load: (file: string, i: number) => { cache: { template?: string; config: string } }): { template: number; config: number } => {
        let template = 0
        let config = 0
        files.forEach((file, i) => {
          const { cache } = load(file, i)
          if (cache.template === 'hit') template++
          if (cache.config === 'hit') config++
        })
        return { template, config }
      }
      const sized = (file: string, i: number) => caches.loaderFor(project, file).loadSource(file, source(i))
      expect(pass(sized)).toEqual({ template: 0, config: 0 })
      // Watch mode's rerun of every file (Vitest transforms each again): nothing recompiled or checked again.
      expect(pass(sized)).toEqual({ template: FILES, config: FILES })
      expect(caches.templateCache.stats().size).toBeGreaterThanOrEqual(FILES)

      // What the plugin had before: one loader over caches of fixed size (100 templates, 500 configs).
      const fixed = createTestLoader({ project })
      const before = (file: string, i: number) => fixed.loadSource(file, source(i))
      pass(before)
      const again = pass(before)
      expect(again.template).toBeLessThan(FILES)
      expect(again.config).toBeLessThan(FILES)
    }
    finally {
      await cleanup()
    }
  })
})
