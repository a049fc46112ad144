import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { spawnCli, waitUntil } from './cli-process.ts'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'

const test = (name: string, watch = ''): string => `[meta]\nname = "${name}"\n${watch}[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "ok"\nrun = "true"\n`

interface Line { type: string; [key: string]: unknown }

describe('[watch] modules in clnrm dev without Vite (built CLI, real engine)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir())
    await mkdir(join(dir, 'tests'))
    await mkdir(join(dir, 'src/deep'), { recursive: true })
    await writeFile(join(dir, 'clnrm.toml'), '')
    await writeFile(join(dir, 'tests/app.clnrm.toml'), test('app', '[watch]\nmodules = ["../src/app"]\n'))
    await writeFile(join(dir, 'tests/other.clnrm.toml'), test('other'))
    // TypeScript as written in a project: types, a package import, a dynamic import, TS's `.js` specifiers.
    await writeFile(join(dir, 'src/app.ts'), `import { readFileSync } from 'node:fs'\nimport type { Options } from './types.ts'\nimport { helper } from './util.ts'\n\nexport const load = (o: Options): Promise<unknown> => import('./lazy.ts')\nexport const run = <T,>(x: T): T => helper(x) as T\n`)
    await writeFile(join(dir, 'src/types.ts'), 'export interface Options { a: string }\n')
    await writeFile(join(dir, 'src/util.ts'), `export { deep } from './deep/index.js'\nexport function helper<T>(x: T): T { return x }\n`)
    await writeFile(join(dir, 'src/deep/index.ts'), 'export const deep = 1\n')
    await writeFile(join(dir, 'src/lazy.ts'), 'export const lazy = 1\n')
    await writeFile(join(dir, 'src/unrelated.ts'), 'export const x = 1\n')
  })
  afterEach(() => cleanup())

  it('a save of a module the entry imports (directly or not) reruns that test only; packages and dynamic imports are noted once', async () => {
    const cli = spawnCli(['dev', '--reporter', 'ndjson'], dir)
    const lines = (): Line[] => cli.stdout().split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l) as Line)
    const reloads = (): Line[] => lines().filter(l => l.type === 'reload')
    await cli.until(/"type":"ready"/, 90_000)
    expect(lines().filter(l => l.type === 'test').map(l => l.name).sort()).toEqual(['app', 'other'])
    // What is not followed is said, once, naming where.
    expect(cli.stderr()).toMatch(/note: \[watch\] modules of tests\/app\.clnrm\.toml: not followed: packages \(node:fs\); dynamic import\(\) at src\/app\.ts:5\. A change there does not rerun the test/)
    expect(cli.stderr().match(/note: \[watch\] modules/g)).toHaveLength(1)

    const start = reloads().length
    // Two levels down, through TypeScript's `./deep/index.js` spelling of `./deep/index.ts`.
    await writeFile(join(dir, 'src/deep/index.ts'), 'export const deep = 2\n')
    await waitUntil(() => reloads().length > start, 'a reload after the save of src/deep/index.ts')
    const reload = reloads()[start]!
    expect(reload.changed).toEqual([join(dir, 'src/deep/index.ts')])
    expect(reload.selected).toEqual([{ file: join(dir, 'tests/app.clnrm.toml'), reason: 'imports src/deep/index.ts' }])
    expect(lines().filter(l => l.type === 'test' && l.reload === reload.id).map(l => l.name)).toEqual(['app'])

    // Not imported statically: saves that must not rerun anything (checked at the end).
    await writeFile(join(dir, 'src/lazy.ts'), 'export const lazy = 2\n')
    await writeFile(join(dir, 'src/unrelated.ts'), 'export const x = 2\n')
    // A new import is followed from the next run on: the closure is recomputed after each run.
    await writeFile(join(dir, 'src/extra.ts'), 'export const extra = 1\n')
    await writeFile(join(dir, 'src/util.ts'), `import './extra.ts'\nexport { deep } from './deep/index.js'\nexport function helper<T>(x: T): T { return x }\n`)
    await waitUntil(() => reloads().some(r => (r.changed as string[]).includes(join(dir, 'src/util.ts'))), 'a reload after the save of src/util.ts')
    await waitUntil(() => lines().some(l => l.type === 'test' && l.reload === reloads().at(-1)!.id), 'its result')
    const before = reloads().length
    await writeFile(join(dir, 'src/extra.ts'), 'export const extra = 2\n')
    await waitUntil(() => reloads().some(r => (r.changed as string[]).includes(join(dir, 'src/extra.ts'))), 'a reload after the save of src/extra.ts')
    expect(reloads().slice(before).flatMap(r => r.selected as Array<{ reason: string }>).map(s => s.reason)).toContain('imports src/extra.ts')
    // Nothing imports these statically: never a reload for them (their saves came before the last ones).
    expect(reloads().flatMap(r => r.changed as string[]).filter(p => /unrelated|lazy/.test(p))).toEqual([])

    cli.child.stdin.write('q\n')
    const exit = await cli.exited
    expect(exit.code).toBe(0)
    expect(clnrmContainers(cli.pid)).toEqual([])
    expect(cli.stderr().match(/note: \[watch\] modules/g)).toHaveLength(1)
  })
})
