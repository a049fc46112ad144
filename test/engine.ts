import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ContainerPool, createTestLoader } from '../core/index.ts'
import type { PoolEvent, TestResult, TestSpec } from '../core/index.ts'
import { runTest } from '../core/run.ts'

/** The local image every engine test uses (built by scripts/build-images.sh; never pulled). */
export const IMAGE = 'clnrm-examples/busybox:1'

/** A pool that records its events; close it in afterAll. */
export async function createRecordingPool(): Promise<{ pool: ContainerPool; events: PoolEvent[] }> {
  const events: PoolEvent[] = []
  const pool = await ContainerPool.create({ onEvent: e => events.push(e) })
  return { pool, events }
}

/** Loads a test from TOML text written into `dir`, failing loudly when it is invalid. */
export function specFrom(dir: string, name: string, toml: string): TestSpec {
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${name}.clnrm.toml`)
  writeFileSync(file, toml)
  const loaded = createTestLoader({ project: { root: dir, vars: {}, determinism: {} } }).loadSource(file, toml)
  if (!loaded.spec) throw new Error(`invalid test ${name}: ${JSON.stringify(loaded.diagnostics)}`)
  return loaded.spec
}

/** Runs a test and returns its result. */
export function run(pool: ContainerPool, spec: TestSpec, signal?: AbortSignal): Promise<TestResult> {
  return runTest(spec, { pool, signal })
}

/** Containers on the engine labelled by clnrm, optionally only one process's. */
export function clnrmContainers(pid?: number): string[] {
  const filters = ['--filter', 'label=clnrm', ...(pid ? ['--filter', `label=clnrm.pid=${pid}`] : [])]
  return execFileSync('docker', ['ps', '-aq', ...filters], { encoding: 'utf8' }).split('\n').filter(Boolean)
}

/** Process lines in a container (`docker top`), for leftover checks. */
export const top = (id: string): string => execFileSync('docker', ['top', id, '-o', 'pid,args'], { encoding: 'utf8' })
