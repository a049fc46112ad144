import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { it } from 'vitest'
import type { HotReloadMetrics } from '../core/index.ts'
import { node, startDev } from '../test/runtimes/contract.ts'
import { percentile, record } from './results.ts'

// CLNRM_BENCH_SAVES: fewer saves for a quick try of the measurement itself.
const SAVES = Number(process.env.CLNRM_BENCH_SAVES ?? 30)
/** The service instrumented with the OpenTelemetry JS SDK (scripts/build-otel-image.sh). */
const IMAGE = 'clnrm-examples/otel-node:1'
/** The target for save → result of a one-step test with span expectations. */
const TARGET_P50_MS = 120
const pause = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

/**
 * A one-step test whose span expectations change with every save: the step asks for a checkout of
 * `amount`, and the expectations want that amount on the `checkout` span, so a result can only
 * pass on this save's spans. `exact` adds a count that more spans could break (`eq`): such a
 * verdict waits for the quiet window, while rules that can only become true end the wait as soon
 * as they hold.
 */
const testFile = (name: string, amount: number, exact: boolean): string => `[meta]
name = "${name}"

[services.shop]
image = "${IMAGE}"
wait_for = "listening on"

[[steps]]
name = "checkout"
run = "wget -qO- 'http://127.0.0.1:8080/checkout?amount=${amount}'"
expected_output_regex = "paid"

[[expect.span]]
name = "checkout.charge"
parent = "checkout"
attrs.all = { "payment.provider" = "fakepay" }

[[expect.span]]
name = "checkout"
attrs.all = { "order.amount" = "${amount}" }
${exact ? '\n[expect.counts]\nspans_total = { eq = 4 }\n' : ''}`

interface Samples { e2e: number[]; settle: number[]; own: number[] }

it(`span expectations in the dev loop: ${SAVES} saves of each of two one-step tests, save → result, settle phase apart`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clnrm-otel-bench-'))
  mkdirSync(join(dir, 'tests'))
  // Two tests in one session, saved in turn: positive rules only, and the same plus an exact count.
  const variants = { positive: { exact: false }, exact: { exact: true } } as const
  const fileOf = (variant: keyof typeof variants): string => join(dir, `tests/${variant}.clnrm.toml`)
  const write = (variant: keyof typeof variants, amount: number): void => writeFileSync(fileOf(variant), testFile(variant, amount, variants[variant].exact))
  write('positive', 1000)
  write('exact', 1000)
  const dev = startDev(node, [], dir)
  const samples: Record<keyof typeof variants, Samples> = { positive: { e2e: [], settle: [], own: [] }, exact: { e2e: [], settle: [], own: [] } }
  try {
    await dev.waitFor(line => line.type === 'ready')
    // The first runs start the service containers; saves after them measure the loop itself.
    for (const variant of ['positive', 'exact']) await dev.waitFor(line => line.type === 'test' && line.name === variant && line.status === 'pass', 60_000)
    let reloads = 1
    for (let i = 1; i <= SAVES; i++) {
      for (const variant of ['positive', 'exact'] as const) {
        await pause(150)
        const start = performance.now()
        write(variant, 1000 + i)
        const result = await dev.waitFor(line => line.type === 'test' && line.name === variant && line.reload > reloads, 30_000)
        const e2e = performance.now() - start
        if (result.status !== 'pass') throw new Error(`save ${i} of ${variant} did not pass: ${JSON.stringify(result).slice(0, 2000)}`)
        const reload = await dev.waitFor(line => line.type === 'reload' && line.id === result.reload, 30_000)
        reloads = result.reload as number
        const metrics = reload.metrics as HotReloadMetrics
        if (typeof metrics.settleMs !== 'number') throw new Error(`the reload metrics carry no settleMs: ${JSON.stringify(metrics)}`)
        samples[variant].e2e.push(e2e)
        samples[variant].settle.push(metrics.settleMs)
        samples[variant].own.push(metrics.totalLatencyMs - metrics.debounceMs - metrics.settleMs)
      }
    }
  }
  finally {
    dev.send('q\n')
    await dev.exited
    rmSync(dir, { recursive: true, force: true })
  }
  const labels = { positive: 'rules that can only become true', exact: 'with an exact count (waits for the quiet window)' } as const
  for (const variant of ['positive', 'exact'] as const) {
    const { e2e, settle, own } = samples[variant]
    const e = `span expectations in clnrm dev › ${labels[variant]}`
    record({
      [`${e} › save → result p50`]: { value: percentile(e2e, 50), unit: 'ms', better: 'lower' },
      [`${e} › save → result p95`]: { value: percentile(e2e, 95), unit: 'ms', better: 'lower' },
      [`${e} › settle p50`]: { value: percentile(settle, 50), unit: 'ms', better: 'lower' },
      [`${e} › own work p50 (debounce, settle excluded)`]: { value: percentile(own, 50), unit: 'ms', better: 'lower' },
    })
    const p50 = percentile(e2e, 50)
    console.log(`\n  ${labels[variant]}: save → result p50 ${p50} ms (target ≤ ${TARGET_P50_MS} ms: ${p50 <= TARGET_P50_MS ? 'met' : 'NOT met'}), of which settle p50 ${percentile(settle, 50)} ms\n`)
  }
})
