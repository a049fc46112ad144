import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { watch } from 'chokidar'
import { it } from 'vitest'
import { percentile, record } from './results.ts'

it('file change detection: write → chokidar event', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clnrm-watch-'))
  const file = join(dir, 'a.clnrm.toml')
  writeFileSync(file, 'x = 0\n')
  const watcher = watch(dir, { ignoreInitial: true })
  await new Promise<void>(resolve => watcher.once('ready', () => resolve()))
  const samples: number[] = []
  try {
    for (let i = 1; i <= 50; i++) {
      const seen = new Promise<number>(resolve => watcher.once('raw', () => resolve(performance.now())))
      const start = performance.now()
      writeFileSync(file, `x = ${i}\n`)
      samples.push(await seen - start)
      // Past chokidar's 50 ms change throttle, so each write is seen on its own.
      await new Promise(r => setTimeout(r, 60))
    }
  }
  finally {
    await watcher.close()
    rmSync(dir, { recursive: true, force: true })
  }
  record({
    'file change detection › p50': { value: percentile(samples, 50), unit: 'ms', better: 'lower' },
    'file change detection › p95': { value: percentile(samples, 95), unit: 'ms', better: 'lower' },
  })
})
