import { defineConfig } from 'tsdown'
import type { UserConfig } from 'tsdown'

const config: UserConfig = defineConfig({
  entry: ['core/index.ts', 'cli/index.ts', 'cli/bin.ts', 'plugin-vite/index.ts', 'plugin-vite/client/overlay.ts',
    // Not imported by the plugin: Vitest loads them by path (the global setup), generated modules import the runtime, and the run server spawns the reaper.
    'plugin-vitest/index.ts', 'plugin-vitest/runtime.ts', 'plugin-vitest/global-setup.ts', 'plugin-vitest/reap.ts'],
  // One output file per source file keeps dist/ mirroring the source tree (and its .d.mts beside it).
  unbundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  dts: true,
  clean: true,
})

export default config
