#!/usr/bin/env node
import { fileURLToPath } from 'node:url'
import { bunxRuntime, runUnderBun } from './launcher.ts'

// `bunx clnrm` starts this file with Node (the shebang); bunx users expect Bun.
const bun = bunxRuntime(process.env, process.versions)
const code = bun === undefined ? undefined : await runUnderBun(bun, fileURLToPath(import.meta.url), process.argv.slice(2))
if (code === undefined) {
  // Loaded only now: a relaunch under Bun need not load the whole CLI into Node first.
  const { runMain } = await import('./index.ts')
  await runMain()
}
else process.exit(code)
