import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { TreeWatcher } from '../core/index.ts'
import { watchTree } from '../core/index.ts'

// The CLI's watcher on a real file system: one fs.watch per directory, raw reports.
describe('watchTree', () => {
  let dir: string
  let watcher: TreeWatcher | undefined
  let seen: string[]
  const until = async (path: string): Promise<void> => {
    const deadline = Date.now() + 10_000
    while (!seen.includes(path)) {
      if (Date.now() > deadline) throw new Error(`${path} was never reported; seen: ${seen.join(', ')}`)
      await new Promise(r => setTimeout(r, 5))
    }
  }
  const start = async (paths: string[]): Promise<TreeWatcher> => {
    watcher = watchTree(paths, { onChange: path => seen.push(path), ignored: path => /node_modules|\.swp$/.test(path) })
    await watcher.add([])
    return watcher
  }
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'clnrm-watch-tree-'))
    seen = []
  })
  afterEach(async () => {
    await watcher?.close()
    watcher = undefined
    rmSync(dir, { recursive: true, force: true })
  })

  it('reports writes, new files and new folders (with what they already hold) in a tree, one watch per directory', async () => {
    mkdirSync(join(dir, 'tests/a'), { recursive: true })
    mkdirSync(join(dir, 'node_modules/x'), { recursive: true })
    for (let i = 0; i < 300; i++) writeFileSync(join(dir, 'tests', `t${i}.clnrm.toml`), '')
    const w = await start([dir])
    // dir, tests, tests/a: node_modules is ignored, files cost no watch.
    expect(w.directories()).toBe(3)
    writeFileSync(join(dir, 'tests/t7.clnrm.toml'), 'x = 1\n')
    await until(join(dir, 'tests/t7.clnrm.toml'))
    writeFileSync(join(dir, 'tests/a/new.clnrm.toml'), '')
    await until(join(dir, 'tests/a/new.clnrm.toml'))
    // A folder created with files already in it (mkdir -p and a copy, faster than any watch).
    mkdirSync(join(dir, 'tmp-b/c'), { recursive: true })
    writeFileSync(join(dir, 'tmp-b/c/deep.clnrm.toml'), '')
    renameSync(join(dir, 'tmp-b'), join(dir, 'tests/b'))
    await until(join(dir, 'tests/b/c/deep.clnrm.toml'))
    writeFileSync(join(dir, 'tests/b/c/deep.clnrm.toml'), 'y = 2\n')
    seen = []
    writeFileSync(join(dir, 'tests/b/c/deep.clnrm.toml'), 'y = 3\n')
    await until(join(dir, 'tests/b/c/deep.clnrm.toml'))
    expect(w.directories()).toBe(5)
    writeFileSync(join(dir, 'node_modules/x/ignored.clnrm.toml'), '')
    writeFileSync(join(dir, 'tests/t1.clnrm.toml.swp'), '')
    writeFileSync(join(dir, 'tests/t8.clnrm.toml'), 'z = 1\n')
    await until(join(dir, 'tests/t8.clnrm.toml'))
    expect(seen.filter(p => p.includes('node_modules') || p.endsWith('.swp'))).toEqual([])
  })

  it('a removed folder reports the files it held; its watches are dropped', async () => {
    mkdirSync(join(dir, 'tests/gone'), { recursive: true })
    writeFileSync(join(dir, 'tests/gone/a.clnrm.toml'), '')
    writeFileSync(join(dir, 'tests/gone/b.clnrm.toml'), '')
    const w = await start([join(dir, 'tests')])
    expect(w.directories()).toBe(2)
    // Moved away in one step: no event for each file, only for the folder.
    renameSync(join(dir, 'tests/gone'), join(dir, 'elsewhere'))
    await until(join(dir, 'tests/gone/a.clnrm.toml'))
    await until(join(dir, 'tests/gone/b.clnrm.toml'))
    expect(w.directories()).toBe(1)
  })

  it('follows a link to a folder once (a link to a parent does not loop), and walks a watched folder that did not exist yet', async () => {
    mkdirSync(join(dir, 'real/inner'), { recursive: true })
    mkdirSync(join(dir, 'tests'))
    symlinkSync(join(dir, 'real'), join(dir, 'tests/linked'))
    symlinkSync(dir, join(dir, 'real/inner/up'))
    const w = await start([join(dir, 'tests'), join(dir, 'later')])
    // tests, tests/linked, tests/linked/inner; the link back up to dir is walked once, as dir.
    writeFileSync(join(dir, 'real/inner/t.clnrm.toml'), '')
    await until(join(dir, 'tests/linked/inner/t.clnrm.toml'))
    const watched = w.directories()
    mkdirSync(join(dir, 'later/sub'), { recursive: true })
    writeFileSync(join(dir, 'later/sub/new.clnrm.toml'), '')
    await until(join(dir, 'later/sub/new.clnrm.toml'))
    expect(w.directories()).toBeGreaterThan(watched)
  })

  it('a single file is watched through its folder, filtered to its name: an atomic save (write a temp file, rename it over) is seen', async () => {
    const file = join(dir, 'clnrm.toml')
    writeFileSync(file, 'a = 1\n')
    writeFileSync(join(dir, 'other.txt'), '')
    await start([file])
    writeFileSync(join(dir, 'clnrm.toml.tmp'), 'a = 2\n')
    renameSync(join(dir, 'clnrm.toml.tmp'), file)
    await until(file)
    writeFileSync(join(dir, 'other.txt'), 'not watched')
    writeFileSync(file, 'a = 3\n')
    seen = []
    writeFileSync(file, 'a = 4\n')
    await until(file)
    expect(seen.every(p => p === file)).toBe(true)
  })
})
