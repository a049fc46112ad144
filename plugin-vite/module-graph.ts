import type { DevEnvironment } from 'vite'

/**
 * Follows Vite's module graph from entry modules: which source files does each entry import,
 * directly or not? Entries nobody has requested yet are transformed (warmed) first, so the
 * graph is complete before the browser loads the app. Vite's HMR is untouched: we only read.
 */
export function createModuleTracker(environment: () => DevEnvironment | undefined): {
  /** Files the entry imports, itself included (absolute paths). Warms the graph as needed. */
  closure: (entries: readonly string[]) => Promise<Set<string>>
} {
  return {
    async closure(entries) {
      const env = environment()
      const files = new Set<string>(entries)
      if (!env) return files
      const seen = new Set<string>()
      const queue: string[] = []
      for (const entry of entries) {
        // `/@fs/` works for any absolute path; Vite maps files under its root to their short URL.
        await env.warmupRequest(`/@fs${entry}`).catch(() => {})
        for (const mod of env.moduleGraph.getModulesByFile(entry) ?? []) queue.push(mod.url)
      }
      while (queue.length) {
        const url = queue.shift()!
        if (seen.has(url)) continue
        seen.add(url)
        let mod = await env.moduleGraph.getModuleByUrl(url)
        if (!mod?.transformResult) {
          await env.transformRequest(url).catch(() => null)
          mod = await env.moduleGraph.getModuleByUrl(url)
        }
        if (!mod) continue
        if (mod.file) files.add(mod.file)
        for (const imported of mod.importedModules) {
          // Dependencies are prebundled and do not change while you edit: skip them.
          if (imported.file?.includes('/node_modules/') || seen.has(imported.url)) continue
          queue.push(imported.url)
        }
      }
      return files
    },
  }
}
