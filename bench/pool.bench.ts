import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, bench, describe } from 'vitest'
import { ContainerPool, createTestLoader } from '../core/index.ts'
import type { TestSpec } from '../core/index.ts'
import { runTest } from '../core/run.ts'

// Needs the engine and the local image (npm run pretest sets both up).
const IMAGE = 'clnrm-examples/busybox:1'
const dir = mkdtempSync(join(tmpdir(), 'clnrm-bench-'))
const loader = createTestLoader({ project: { root: dir, vars: {}, determinism: {} } })
const spec = (name: string, toml: string): TestSpec => loader.loadSource(join(dir, `${name}.clnrm.toml`), toml).spec!
const service = (id: string, reuse: boolean): string => `[services.${id}]\nimage = "${IMAGE}"\nreuse = ${reuse}\nenv = { BENCH = "${id}" }\n`

const oneCold = spec('one-cold', `[meta]\nname = "cold"\n${service('box', false)}[[steps]]\nrun = "true"\n`)
const oneWarm = spec('one-warm', `[meta]\nname = "warm"\n${service('box', true)}[[steps]]\nrun = "true"\n`)
const threeCold = spec('three-cold', `[meta]\nname = "3 cold"\n${['a', 'b', 'c'].map(id => service(id, false)).join('')}[[steps]]\nservice = "a"\nrun = "true"\n`)
const threeWarm = spec('three-warm', `[meta]\nname = "3 warm"\n${['a', 'b', 'c'].map(id => service(id, true)).join('')}[[steps]]\nservice = "a"\nrun = "true"\n`)

const pool = await ContainerPool.create()
afterAll(() => pool.close())
const slow = { iterations: 8, time: 0, warmupIterations: 1 }
const fast = { iterations: 200, time: 0, warmupIterations: 10 }

describe('container pool', () => {
  bench('container start (cold, local image): acquire + release', async () => {
    await (await pool.acquire(oneCold)).release()
  }, slow)
  bench('container reuse (warm): acquire + release', async () => {
    await (await pool.acquire(oneWarm)).release()
  }, fast)
})

describe('step execution', () => {
  let lease: Awaited<ReturnType<ContainerPool['acquire']>> | undefined
  bench('one exec in a warm container (persistent shell)', async () => {
    lease ??= await pool.acquire(oneWarm)
    await lease.services.box!.runner.exec({ argv: ['sh', '-c', 'echo hi'] })
  }, { ...fast, teardown: async () => {
    await lease?.release()
    lease = undefined
  } })
})

describe('3-service test', () => {
  bench('cold (every service started)', async () => {
    await runTest(threeCold, { pool })
  }, slow)
  bench('warm (every service reused)', async () => {
    await runTest(threeWarm, { pool })
  }, fast)
})
