import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'

const bin = resolve(import.meta.dirname, '../dist/cli/bin.mjs')

/** Spawns `clnrm run` and reports its exit code, output, time to exit and pid. */
function runClnrm(dir: string, args: string[], limitMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string; ms: number; pid: number }> {
  const start = Date.now()
  const child = spawn(process.execPath, [bin, 'run', ...args], { cwd: dir, env: { ...process.env, NO_COLOR: '1' } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  // A hang must fail the test, not the suite's timeout: kill it past the limit.
  const guard = setTimeout(() => child.kill('SIGKILL'), limitMs)
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(guard)
      resolve({ code, stdout, stderr, ms: Date.now() - start, pid: child.pid! })
    })
  })
}

const service = `[services.box]\nimage = "${IMAGE}"\n`

describe('clnrm run: step execution as a user sees it (built CLI, real engine)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('exits soon after a step timeout, with the failure printed and no container left', async () => {
    await writeFile(join(dir, 'slow.clnrm.toml'), `[meta]\nname = "slow"\n${service}[[steps]]\nname = "sleeps"\nrun = "sleep 20"\ntimeout = "1s"\n`)
    const result = await runClnrm(dir, ['.'])
    expect(result.stdout).toMatch(/step "sleeps" in box: timed out after \d+ms and was killed/)
    expect(result.code).toBe(1)
    // Generous: the step takes 1 s; before the fix the process never exited.
    expect(result.ms).toBeLessThan(15_000)
    expect(clnrmContainers(result.pid)).toEqual([])
  })
})
