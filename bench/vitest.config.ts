import { defineConfig } from 'vitest/config'
import type { ViteUserConfig } from 'vitest/config'

// Measurements that are not micro-benchmarks (latency percentiles over real saves, memory):
// plain test files that print numbers and record them in bench/results.json.
const config: ViteUserConfig = defineConfig({
  test: {
    include: ['bench/**/*.measure.ts'],
    globalSetup: ['test/global-setup.ts', 'bench/collect-vitest-bench.ts'],
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 600_000,
    reporters: ['verbose'],
  },
})

export default config
