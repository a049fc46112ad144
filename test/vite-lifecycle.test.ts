import { execFileSync, spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import type { ViteDevServer } from 'vite'
import { expect, it } from 'vitest'
import { clnrmContainers } from './engine.ts'
import { copyPlayground, repo, startVite } from './vite-project.ts'

/** The clnrm sessions that own this process's containers. */
function sessions(): Set<string> {
  const ids = clnrmContainers(process.pid)
  if (!ids.length) return new Set()
  const labels = execFileSync('docker', ['inspect', '--format', '{{ index .Config.Labels "clnrm.session" }}', ...ids], { encoding: 'utf8' })
  return new Set(labels.split('\n').filter(Boolean))
}

async function until(check: () => boolean, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise(r => setTimeout(r, 200))
  }
}

it('a config restart closes the old session: one session\'s containers, then none after close', async () => {
  const dir = copyPlayground()
  let server: ViteDevServer | undefined
  try {
    server = await startVite(dir)
    await until(() => clnrmContainers(process.pid).length >= 5)
    const before = sessions()
    expect(before.size).toBe(1)
    await server.restart()
    // The new session starts its own containers once the old one has removed its.
    await until(() => {
      const now = sessions()
      return now.size === 1 && !now.has([...before][0]!) && clnrmContainers(process.pid).length >= 5
    })
  }
  finally {
    await server?.close()
    rmSync(dir, { recursive: true, force: true })
  }
  expect(clnrmContainers(process.pid)).toEqual([])
}, 300_000)

it.each(['SIGINT', 'SIGTERM'] as const)('vite dev (the CLI) removes the containers on %s', async (signal) => {
  const dir = copyPlayground()
  const child = spawn(process.execPath, [join(repo, 'node_modules/vite/bin/vite.js'), '--port', '0'], { cwd: dir, stdio: 'ignore' })
  try {
    await until(() => clnrmContainers(child.pid).length >= 5)
    child.kill(signal)
    await new Promise(resolve => child.once('exit', resolve))
    expect(clnrmContainers(child.pid)).toEqual([])
  }
  finally {
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
}, 300_000)
