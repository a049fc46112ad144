import { defineConfig } from 'tsdown'
import type { UserConfig } from 'tsdown'

const config: UserConfig = defineConfig({
  entry: ['core/index.ts', 'cli/index.ts', 'cli/bin.ts', 'plugin-vite/index.ts', 'plugin-vite/client/overlay.ts'],
  // One output file per source file keeps dist/ mirroring the source tree (and its .d.mts beside it).
  unbundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  dts: true,
  clean: true,
})

export default config
