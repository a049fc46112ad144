import type { RunTestOptions, StepResult, TestResult } from './run.ts'
import type { TestSpec } from './format/spec.ts'
import { combinationLabel } from './format/template-tables.ts'
import { variantSource } from './failure-location.ts'

/**
 * Runs each `[matrix]` variant of a test, one after the other, as one result (the dev loop and
 * the Vite panel show one result per file): its steps are the variants' side by side, each named
 * after its combination, and it passes only when every variant passed. `clnrm run` reports the
 * variants as separate tests instead.
 */
export async function runVariants(spec: TestSpec & { variants: TestSpec[] }, options: RunTestOptions, run: (spec: TestSpec, options: RunTestOptions) => Promise<TestResult>): Promise<TestResult> {
  const start = performance.now()
  const results: Array<{ label: string; result: TestResult }> = []
  for (const variant of spec.variants) {
    if (options.signal?.aborted) break
    const label = combinationLabel(variant.matrix ?? {})
    const named = (step: StepResult): StepResult => ({ ...step, name: `${label} ${step.name}` })
    const onStep = options.onStep
    // Each combination's failures are located in its own rendered text.
    const source = variantSource(variant, options.source)
    const result = await run(variant, { ...options, ...(source && { source }), ...(onStep && { onStep: (step: StepResult) => onStep(named(step)) }) })
    results.push({ label, result: { ...result, steps: result.steps.map(named) } })
  }
  const all = results.map(r => r.result)
  const status: TestResult['status'] = all.some(r => r.status === 'error') ? 'error' : all.some(r => r.status === 'fail') ? 'fail' : 'pass'
  const failed = results.find(r => r.result.error)
  const spans = all.find(r => r.spans?.failures.length)?.spans ?? all.find(r => r.spans)?.spans
  const totalMs = performance.now() - start
  return {
    file: spec.file,
    name: spec.name,
    ...(spec.description !== undefined && { description: spec.description }),
    status,
    durationMs: totalMs,
    steps: all.flatMap(r => r.steps),
    ...(failed && { error: { ...failed.result.error!, message: `${failed.label} ${failed.result.error!.message}` } }),
    aborted: options.signal?.aborted ?? false,
    timings: {
      renderMs: options.load?.renderMs,
      parseMs: options.load?.parseMs,
      acquireMs: all.reduce((ms, r) => ms + r.timings.acquireMs, 0),
      reused: Object.assign({}, ...all.map(r => r.timings.reused)) as Record<string, boolean>,
      steps: results.flatMap(r => r.result.timings.steps.map(step => ({ ...step, name: `${r.label} ${step.name}` }))),
      ...(all.some(r => r.timings.settleMs !== undefined) && { settleMs: all.reduce((ms, r) => ms + (r.timings.settleMs ?? 0), 0) }),
      totalMs,
    },
    ...(spans && { spans }),
  }
}
