import { defineConfig } from 'vitest/config'
import type { ViteUserConfig } from 'vitest/config'

// Fault tests that stop and start a Docker engine. Never part of `npm test`: only
// scripts/engine-restart.sh runs them, against a second engine of their own (DOCKER_HOST).
const config: ViteUserConfig = defineConfig({
  test: {
    include: ['test/**/*.fault.ts'],
    globalSetup: ['test/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 120_000,
  },
})

export default config
