import type { TemplateFunction } from 'eta'
import { createTestLoader, MemoryCache } from '../core/index.ts'
import type { CachedConfig, TestLoader, TestLoaderOptions } from '../core/index.ts'

/** The template and config caches one process keeps for clnrm files, sized to the project. */
export interface ProjectCaches {
  readonly templateCache: MemoryCache<string, TemplateFunction>
  readonly configCache: MemoryCache<string, CachedConfig>
  /**
   * A loader over the caches for `file`, after growing them for every test file seen so far (this
   * one included), as the dev loop sizes its own: a pass over the whole project (watch mode's
   * rerun all, a shared partial saved) then hits instead of evicting what it is about to need.
   */
  loaderFor: (project: TestLoaderOptions['project'], file: string) => TestLoader
}

/** Caches that start small and grow with the project (`sizeFor`), never shrink; no TTL, as core's. */
export function createProjectCaches(): ProjectCaches {
  // Keyed by content: age never makes an entry wrong, so no TTL (an idle watch session would pay every check again).
  const templateCache = new MemoryCache<string, TemplateFunction>({ max: 100 })
  const configCache = new MemoryCache<string, CachedConfig>({ max: 500 })
  const seen = new Set<string>()
  return {
    templateCache,
    configCache,
    loaderFor(project, file) {
      seen.add(file)
      const loader = createTestLoader({ project, templateCache, configCache })
      loader.sizeFor(seen.size)
      return loader
    },
  }
}
