import { defineConfig } from 'tsdown'
import type { UserConfig } from 'tsdown'

const shared = { format: 'esm', platform: 'node', target: 'node20.19' } as const

const config: UserConfig[] = defineConfig([
  {
    ...shared,
    entry: ['core/index.ts', 'cli/index.ts', 'plugin-vite/index.ts', 'plugin-vite/client/overlay.ts',
      // Not imported by the plugin: Vitest loads them by path (the global setup), generated modules import the runtime, and the run server spawns the reaper.
      'plugin-vitest/index.ts', 'plugin-vitest/runtime.ts', 'plugin-vitest/global-setup.ts', 'plugin-vitest/reap.ts'],
    // One output file per source file keeps dist/ mirroring the source tree (and its .d.mts beside it).
    unbundle: true,
    dts: true,
    clean: true,
  },
  {
    ...shared,
    // The `clnrm` binary loads the CLI as one bundle (cli/bin-index.mjs, the chunk behind the
    // bin's dynamic import): as ~150 modules it cost Node about 30 ms more (resolving, reading and
    // linking each), a tenth of a warm `clnrm run --reuse`. The dependencies stay imports; the
    // bin itself stays a few lines, so a relaunch under Bun loads nothing else first.
    entry: { 'cli/bin': 'cli/bin.ts' },
    external: [/^[^./]/],
    outputOptions: { chunkFileNames: 'cli/bin-[name].mjs' },
    dts: false,
    clean: false,
  },
])

export default config
