import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { it } from 'vitest'
import { createTestLoader, DependencyGraph } from '../core/index.ts'
import { record } from './results.ts'

const COUNT = 1000

it(`selection overhead and memory with ${COUNT} test files`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'clnrm-1000-'))
  try {
    mkdirSync(join(dir, 'tests'))
    mkdirSync(join(dir, 'src'))
    writeFileSync(join(dir, 'tests/_svc.eta'), '[services.app]\nimage = "busybox:1.36"\n')
    const files: string[] = []
    for (let i = 0; i < COUNT; i++) {
      // A tenth are templates sharing a partial; every test watches a glob and mounts a path.
      // Real inputs: a mounted path that exists and a watched source file (both are validated).
      mkdirSync(join(dir, 'src', `m${i}`))
      mkdirSync(join(dir, 'src', `w${i}`, 'a'), { recursive: true })
      writeFileSync(join(dir, 'src', `w${i}`, 'a', 'b.ts'), `export const n = ${i}\n`)
      const template = i % 10 === 0
      const file = join(dir, 'tests', `t${i}.clnrm.toml${template ? '.eta' : ''}`)
      const service = template ? '<%~ include(\'./_svc.eta\') %>' : '[services.app]\nimage = "busybox:1.36"'
      writeFileSync(file, `[meta]\nname = "t${i}"\n${service}\nvolumes = [{ host_path = "../src/m${i}", container_path = "/m" }]\n[[steps]]\nrun = "echo ${i}"\n[watch]\nfiles = ["../src/w${i}/**/*.ts"]\n`)
      files.push(file)
    }
    globalThis.gc?.()
    const before = process.memoryUsage()
    const loader = createTestLoader({ project: { root: dir, vars: {}, determinism: {} } })
    const graph = new DependencyGraph()
    const loadStart = performance.now()
    const loaded = files.map((file) => {
      const result = loader.loadSource(file, readFileSync(file, 'utf8'))
      graph.set(file, {
        files: result.inputs.partials,
        globs: result.spec!.watch.files,
        mounts: Object.values(result.spec!.services).flatMap(s => s.volumes.map(v => v.hostPath)),
        env: [],
      })
      return result
    })
    const loadMs = performance.now() - loadStart
    globalThis.gc?.()
    const after = process.memoryUsage()
    const invalid = loaded.find(l => !l.spec)
    if (invalid) throw new Error(`fixture tests must be valid: ${JSON.stringify(invalid.diagnostics)}`)

    const time = (fn: () => unknown, iterations = 200): number => {
      const start = performance.now()
      for (let i = 0; i < iterations; i++) fn()
      return (performance.now() - start) / iterations
    }
    const partial = join(dir, 'tests/_svc.eta')
    const selectedByPartial = graph.affected(partial).length
    if (selectedByPartial !== COUNT / 10) throw new Error(`expected ${COUNT / 10} includers, got ${selectedByPartial}`)
    console.log(`  (a partial change selects ${selectedByPartial} of ${COUNT} tests; a source change 1)`)
    record({
      [`selection overhead (${COUNT} tests) › partial changed`]: { value: Math.round(time(() => graph.affected(partial)) * 1000), unit: 'µs', better: 'lower' },
      [`selection overhead (${COUNT} tests) › watched source changed`]: { value: Math.round(time(() => graph.affected(join(dir, 'src/w500/a/b.ts'))) * 1000), unit: 'µs', better: 'lower' },
      [`selection overhead (${COUNT} tests) › unrelated file`]: { value: Math.round(time(() => graph.affected(join(dir, 'README.md'))) * 1000), unit: 'µs', better: 'lower' },
      [`load (${COUNT} tests) › render + parse + graph, cold`]: { value: Math.round(loadMs), unit: 'ms', better: 'lower' },
      [`memory (${COUNT} tests) › heap used by specs, caches and graph`]: { value: Math.round((after.heapUsed - before.heapUsed) / 2 ** 20 * 10) / 10, unit: 'MB', better: 'lower' },
      [`memory (${COUNT} tests) › process RSS`]: { value: Math.round(after.rss / 2 ** 20), unit: 'MB', better: 'lower' },
    })
  }
  finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
