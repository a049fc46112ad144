import { randomBytes } from 'node:crypto'
import type { Lease } from '../pool-types.ts'
import type { ContainerPool } from '../pool.ts'
import type { TestSpec } from '../spec.ts'
import { evaluateSpanExpectations, hasNegativeChecks } from './evaluate.ts'
import type { OtelHub, RunSpans } from './hub.ts'
import { receiverHosts, useSharedHub } from './hub.ts'
import { needsReceiver, otelOf, wantsOtel, withOtelEnv } from './inject.ts'
import { spansFromStdout } from './stdout.ts'
import type { Span, SpanVerdict } from './types.ts'

/** The receiver could not start: the test errors with this code. */
export class OtlpReceiverError extends Error {
  override name = 'OtlpReceiverError'
  readonly code = 'CLNRM_OTLP_RECEIVER'
  readonly hint = 'clnrm listens for spans on the docker0 bridge address (127.0.0.1 without one). Set CLNRM_OTLP_HOST to an address the containers can reach, or [otel] endpoint to a collector of yours.'
}

const hubs = new WeakMap<ContainerPool, Promise<OtelHub>>()

/** The pool's hub: the process's receiver, held until the pool closes. */
function hubFor(pool: ContainerPool): Promise<OtelHub> {
  let hub = hubs.get(pool)
  if (!hub) {
    const shared = useSharedHub(async () => receiverHosts(await pool.bridgeGateway()))
    hub = shared.hub
    hubs.set(pool, hub)
    pool.onClose(shared.release)
    // A failed start is retried by the next test, with a fresh hold on the shared hub.
    hub.catch(() => {
      if (hubs.get(pool) === hub) hubs.delete(pool)
      void shared.release()
    })
  }
  return hub
}

/** One run's OpenTelemetry side: the env its steps get and, after them, the verdict on its spans. */
export interface RunOtel {
  /** `TRACEPARENT` for every step: the trace the runner starts for this run. */
  stepEnv: Record<string, string>
  /** Spans a step printed (`artifacts.collect = ["spans:…"]`): they join the run's. */
  addStdout: (stdout: string) => void
  /** Waits for the spans to settle, then judges them. */
  finish: (options: { signal?: AbortSignal; budgetMs?: number }) => Promise<SpanVerdict>
  /** Stops collecting (idempotent): call before the lease is released. */
  close: () => void
}

/** Prepared before leasing: the spec with the OTel env, and how to start collecting once leased. */
export interface PreparedOtel {
  spec: TestSpec
  attach: (lease: Lease) => Promise<RunOtel>
}

/**
 * For a test that declares `[otel]` or span expectations: starts the receiver (once per process)
 * and gives the spec its services' OTel env. `undefined` for every other test, which stays
 * exactly as written. Throws `OtlpReceiverError` when the receiver cannot listen.
 */
export async function prepareOtel(spec: TestSpec, pool: ContainerPool): Promise<PreparedOtel | undefined> {
  if (!wantsOtel(spec)) return undefined
  const otel = otelOf(spec)
  let hub: OtelHub | undefined
  if (needsReceiver(spec)) {
    try {
      hub = await hubFor(pool)
    }
    catch (error) {
      throw new OtlpReceiverError(`[clnrm] the OTLP receiver could not start: ${(error as Error).message}`, { cause: error })
    }
  }
  const endpoint = otel.endpoint ?? hub?.containerEndpoint ?? ''
  return {
    spec: withOtelEnv(spec, endpoint),
    attach: async (lease) => {
      const addresses = (await Promise.all(Object.values(lease.services).map(s => s.addresses()))).flat()
      const run: RunSpans | undefined = hub?.open({ addresses })
      const printed: Span[] = []
      const traceparent = run?.traceparent ?? `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`
      return {
        stepEnv: { TRACEPARENT: traceparent },
        addStdout: stdout => void printed.push(...spansFromStdout(stdout, { receivedAt: performance.now() })),
        finish: async ({ signal, budgetMs = Infinity }) => {
          const expectations = spec.expect
          // Positive rules may end the wait as soon as they hold; a negative one (a count that
          // must not grow, an edge that must not appear) needs the quiet window to be sure.
          // The containers' own addresses are inside the test, for no_external_services.
          const context = { internalHosts: addresses }
          const done = expectations && !hasNegativeChecks(expectations) ? (spans: readonly Span[]) => evaluateSpanExpectations([...spans, ...printed], expectations, context).failures.length === 0 : undefined
          const settleMs = run ? await run.settle({ quietMs: otel.quietWindowMs, timeoutMs: Math.min(otel.settleTimeoutMs, budgetMs), done, signal }) : 0
          run?.close()
          const spans = [...(run?.spans ?? []), ...printed].sort((a, b) => a.startTimeMs - b.startTimeMs)
          const { checked, rules, failures } = expectations ? evaluateSpanExpectations(spans, expectations, context) : { checked: 0, rules: [], failures: [] }
          return { checked, rules, failures, spans, settleMs }
        },
        close: () => run?.close(),
      }
    },
  }
}

/**
 * The spec the pool leases containers for: with the OTel env for tests that use OpenTelemetry,
 * as is otherwise. Prewarming must start exactly these, or its containers would never be reused.
 */
export async function leasedSpec(spec: TestSpec, pool: ContainerPool): Promise<TestSpec> {
  return (await prepareOtel(spec, pool).catch(() => undefined))?.spec ?? spec
}
