import { execFileSync } from 'node:child_process'
import { resolve } from 'node:path'

// The runtime and package suites run the built CLI, so build once, fresh, before any test.
export default function setup(): void {
  execFileSync(process.execPath, [resolve(import.meta.dirname, '../node_modules/tsdown/dist/run.mjs')], {
    cwd: resolve(import.meta.dirname, '..'),
    stdio: 'pipe',
  })
}
