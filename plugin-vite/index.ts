import { resolve } from 'node:path'
import type { Plugin, ViteDevServer } from 'vite'
import { createTestLoader, discoverTestFiles, findProjectRoot, formatKeyPath, isTestFile, loadProject } from '../core/index.ts'
import type { LoadedTestFile, TestLoader } from '../core/index.ts'

/** Options of the clnrm Vite plugin. */
export interface ClnrmPluginOptions {
  /** Globs of test files, relative to the Vite root. @default 'tests/**\/*.clnrm.toml{,.eta}' */
  tests?: string | string[]
  /** Template vars, overriding `clnrm.toml` [vars]. @default {} */
  vars?: Record<string, string>
}

/**
 * Checks clnrm test files while `vite dev` runs: on start and on every save, problems are
 * logged with their file, line and column. Adds nothing to `vite build`.
 */
export function clnrm(options: ClnrmPluginOptions = {}): Plugin {
  const patterns = [options.tests ?? 'tests/**/*.clnrm.toml{,.eta}'].flat()
  let loader: TestLoader | undefined
  return {
    name: 'clnrm',
    apply: 'serve',
    async configureServer(server) {
      const project = await loadProject({ root: findProjectRoot(server.config.root), vars: options.vars })
      loader = createTestLoader({ project })
      const { files } = await discoverTestFiles(patterns, server.config.root)
      for (const file of files) report(server, await loader.load(file))
      const onChange = (file: string): void => {
        if (!loader || !isTestFile(file)) return
        loader.load(resolve(file)).then(result => report(server, result)).catch(error => server.config.logger.error(`[clnrm] ${String(error)}`))
      }
      server.watcher.on('add', onChange)
      server.watcher.on('change', onChange)
    },
  }
}

function report(server: ViteDevServer, result: LoadedTestFile): void {
  const logger = server.config.logger
  for (const d of result.diagnostics) {
    const where = `${result.file}:${d.line}:${d.column}`
    const text = `[clnrm] ${where} ${d.code} ${d.message}${d.path ? ` (${formatKeyPath(d.path)})` : ''}${d.hint ? `\n  hint: ${d.hint}` : ''}`
    if (d.severity === 'error') logger.error(text, { timestamp: true })
    else logger.warn(text, { timestamp: true })
  }
  if (result.spec && !result.diagnostics.some(d => d.severity === 'error')) logger.info(`[clnrm] ${result.spec.name}: valid`, { timestamp: true })
}
