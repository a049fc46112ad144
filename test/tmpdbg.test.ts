import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { it } from 'vitest'
import { node, runCli, startDev } from './runtimes/contract.ts'
import { tempDir } from './helpers.ts'
it('dbg', async () => {
  const { dir } = await tempDir()
  await runCli(node, ['init'], dir)
  const dev = startDev(node, [], dir)
  await dev.waitFor(l => l.type === 'ready')
  const file = join(dir, 'tests/hello.clnrm.toml')
  await writeFile(file, (await readFile(file, 'utf8')).replace('"^hello from "', '"^goodbye"'))
  console.log('wrote 1', Date.now())
  const failed = await dev.waitFor(l => l.type === 'test' && l.reload > 1)
  console.log('got', failed.reload, failed.status, Date.now())
  await writeFile(file, (await readFile(file, 'utf8')).replace('"^goodbye"', '"^hello from "'))
  console.log('wrote 2', Date.now(), (await readFile(file, 'utf8')).includes('hello from "'))
  await new Promise(r => setTimeout(r, 2000))
  try { await dev.waitFor(l => l.type === 'test' && l.reload > 2, 3000) } catch (e) { console.log(String(e).slice(-1500)) }
  dev.send('q\n')
  console.log(await dev.exited)
}, 60000)
