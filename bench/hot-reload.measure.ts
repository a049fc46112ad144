import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { it } from 'vitest'
import { startDev } from '../test/runtimes/contract.ts'
import { node } from '../test/runtimes/contract.ts'
import { percentile, record } from './results.ts'

const SAVES = 30
const IMAGE = 'clnrm-examples/busybox:1'
const root = resolve(import.meta.dirname, '..')
const pause = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

it(`end-to-end hot reload: save → result, ${SAVES} saves, clnrm dev vs Vitest + testcontainers withReuse`, async () => {
  const clnrm = await measureClnrm()
  const vitest = await measureVitest()
  const p50 = percentile(clnrm.samples, 50)
  const vitestP50 = percentile(vitest, 50)
  record({
    'end-to-end hot reload › clnrm dev › p50': { value: p50, unit: 'ms', better: 'lower' },
    'end-to-end hot reload › clnrm dev › p95': { value: percentile(clnrm.samples, 95), unit: 'ms', better: 'lower' },
    'end-to-end hot reload › clnrm dev › session total p50 (event → shown)': { value: percentile(clnrm.sessionTotals, 50), unit: 'ms', better: 'lower' },
    'end-to-end hot reload › vitest + testcontainers withReuse › p50': { value: vitestP50, unit: 'ms', better: 'lower' },
    'end-to-end hot reload › vitest + testcontainers withReuse › p95': { value: percentile(vitest, 95), unit: 'ms', better: 'lower' },
    'end-to-end hot reload › speed-up over vitest + testcontainers (p50 ratio)': { value: Math.round(vitestP50 / p50 * 10) / 10, unit: 'ratio', better: 'higher' },
  })
  const phases = ['fileDetectionMs', 'debounceMs', 'templateRenderMs', 'configParseMs', 'containerStartMs', 'testExecutionMs', 'resultFormattingMs'] as const
  console.log(`  clnrm p50 phases: ${phases.map(p => `${p.replace(/Ms$/, '')} ${percentile(clnrm.phases.map(m => m[p]), 50)}`).join(', ')}`)
})

/** Saves a one-step test under a running `clnrm dev` and times each save until its result line. */
async function measureClnrm(): Promise<{ samples: number[]; sessionTotals: number[]; phases: Array<Record<string, number>> }> {
  const dir = mkdtempSync(join(tmpdir(), 'clnrm-e2e-'))
  const file = join(dir, 'tests/check.clnrm.toml')
  mkdirSync(join(dir, 'tests'))
  const write = (i: number): void => writeFileSync(file, `[meta]\nname = "check"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "echo"\nrun = "echo v${i}"\nexpected_output_regex = "^v${i}$"\n`)
  write(0)
  const dev = startDev(node, [], dir)
  const samples: number[] = []
  const sessionTotals: number[] = []
  const phases: Array<Record<string, number>> = []
  try {
    await dev.waitFor(line => line.type === 'ready')
    for (let i = 1; i <= SAVES; i++) {
      await pause(150)
      const start = performance.now()
      write(i)
      const result = await dev.waitFor(line => line.type === 'test' && line.status === 'pass' && line.reload > i, 30_000)
      samples.push(performance.now() - start)
      const reload = await dev.waitFor(line => line.type === 'reload' && line.id === result.reload, 30_000)
      sessionTotals.push(reload.metrics.totalLatencyMs)
      phases.push(reload.metrics)
    }
  }
  finally {
    dev.send('q\n')
    await dev.exited
    rmSync(dir, { recursive: true, force: true })
  }
  return { samples, sessionTotals, phases }
}

/** The same check as a Vitest watch loop with testcontainers' withReuse(): save → "✓ check vN". */
async function measureVitest(): Promise<number[]> {
  // Inside the repository, so vitest and testcontainers resolve from its node_modules.
  const dir = mkdtempSync(join(root, 'bench', '.tmp-vitest-'))
  const file = join(dir, 'check.test.ts')
  const write = (i: number): void => writeFileSync(file, `import { expect, test } from 'vitest'
import { GenericContainer } from 'testcontainers'
const VALUE = 'v${i}'
test(\`check \${VALUE}\`, async () => {
  const container = await new GenericContainer('${IMAGE}').withCommand(['sleep', '3600']).withLabels({ 'clnrm-bench': '1' }).withReuse().start()
  const result = await container.exec(['sh', '-c', \`echo \${VALUE}\`])
  expect(result.output.trim()).toBe(VALUE)
})
`)
  writeFileSync(join(dir, 'vitest.config.mjs'), 'export default { test: { include: [\'check.test.ts\'], watch: true } }\n')
  write(0)
  const child = spawn(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), '--config', 'vitest.config.mjs', '--reporter', 'verbose'], {
    cwd: dir,
    env: { ...process.env, TESTCONTAINERS_RYUK_DISABLED: 'true', NO_COLOR: '1', CI: '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => void (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => void (output += d.toString()))
  const until = async (text: string, from: number): Promise<void> => {
    const deadline = Date.now() + 60_000
    while (!output.slice(from).includes(text)) {
      if (Date.now() > deadline) throw new Error(`vitest never printed "${text}":\n${output.slice(-2000)}`)
      await pause(2)
    }
  }
  const samples: number[] = []
  try {
    await until('✓ check.test.ts > check v0', 0)
    for (let i = 1; i <= SAVES; i++) {
      await pause(300)
      const from = output.length
      const start = performance.now()
      write(i)
      await until(`✓ check.test.ts > check v${i}`, from)
      samples.push(performance.now() - start)
    }
  }
  finally {
    child.kill('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
    const ids = execFileSync('docker', ['ps', '-aq', '--filter', 'label=clnrm-bench=1'], { encoding: 'utf8' }).split('\n').filter(Boolean)
    if (ids.length) execFileSync('docker', ['rm', '-f', ...ids])
  }
  return samples
}
