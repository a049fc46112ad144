import { it } from 'vitest'
import { createRecordingPool, IMAGE, specFrom } from './engine.ts'
import { tempDir } from './helpers.ts'

it('measures warm exec cost', async () => {
  const { pool } = await createRecordingPool()
  const { dir, cleanup } = await tempDir()
  const spec = specFrom(dir, 'cost', `[meta]\nname = "cost"\n[services.box]\nimage = "${IMAGE}"\nenv = { COST = "1" }\n[[steps]]\nrun = "true"\n`)
  const lease = await pool.acquire(spec)
  const runner = lease.services.box!.runner
  for (const argv of [['true'], ['sh', '-c', 'echo hello'], ['sh', '-c', 'echo out; echo err >&2']]) {
    for (let i = 0; i < 30; i++) await runner.exec({ argv, workdir: lease.services.box!.workdir, timeoutMs: 30000 })
    const times: number[] = []
    for (let i = 0; i < 300; i++) {
      if (i % 10 === 0) {
        await runner.endRun(`/tmp/x${i}`, `/tmp/x${i + 1}`)
        await new Promise(r => setTimeout(r, 60))
      }
      const t = performance.now()
      await runner.exec({ argv, workdir: lease.services.box!.workdir, timeoutMs: 30000, env: { A: 'b' } })
      times.push(performance.now() - t)
    }
    times.sort((a, b) => a - b)
    console.log(JSON.stringify(argv), 'p50', times[150]!.toFixed(2), 'p90', times[270]!.toFixed(2))
  }
  await lease.release()
  const rel: number[] = []
  for (let i = 0; i < 40; i++) {
    const l = await pool.acquire(spec)
    await l.services.box!.runner.exec({ argv: ['sh', '-c', 'echo hi'], workdir: l.services.box!.workdir })
    const t = performance.now()
    await l.release()
    rel.push(performance.now() - t)
  }
  rel.sort((a, b) => a - b)
  console.log('release p50', rel[20]!.toFixed(2))
  await pool.close()
  await cleanup()
}, 120_000)
