import { ClnrmError } from '../errors.ts'
import { randomBytes } from 'node:crypto'
import { JUDGE_LIMIT_BYTES } from '../engine/exec/types.ts'
import type { Lease } from '../engine/pool-types.ts'
import type { ContainerPool } from '../engine/pool.ts'
import type { TestSpec } from '../format/spec.ts'
import { evaluateSpanExpectations, hasNegativeChecks } from './evaluate.ts'
import type { OtelHub, RunSpans } from './hub.ts'
import { receiverHosts, useSharedHub } from './hub.ts'
import { needsReceiver, otelOf, wantsOtel, withOtelEnv } from './inject.ts'
import type { OwnSpan } from './self-export.ts'
import { exportOwnSpans, newSpanId, ownSpansEndpoint } from './self-export.ts'
import { spansFromStdout } from './stdout.ts'
import type { RulePath, Span, SpanVerdict } from './types.ts'

/** The receiver could not start: the test errors with this code. */
export class OtlpReceiverError extends ClnrmError {
  override name = 'OtlpReceiverError'
  declare readonly hint: string
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('CLNRM_OTLP_RECEIVER', message, {
      ...options,
      hint: 'clnrm listens for spans on the docker0 bridge address (127.0.0.1 without one; on Podman, on each network gateway its containers use). Set CLNRM_OTLP_HOST to an address the containers can reach, or [otel] endpoint to a collector of yours.',
    })
  }
}

const hubs = new WeakMap<ContainerPool, Promise<OtelHub>>()

/** The pool's hub: the process's receiver, held until the pool closes. */
function hubFor(pool: ContainerPool): Promise<OtelHub> {
  let hub = hubs.get(pool)
  if (!hub) {
    // The route is measured (host-reach.ts): Docker's host-gateway needs the receiver on the
    // default bridge's gateway; Podman's network gateways get listeners as runs lease containers.
    const shared = useSharedHub(async () => {
      const route = (await pool.hostRoute()).route ?? 'host-gateway'
      return { route, hosts: receiverHosts(route === 'host-gateway' ? await pool.bridgeGateway() : undefined, process.env, route) }
    })
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
  /**
   * A step ended: the spans it printed join the run's (`artifacts.collect = ["spans:…"]`), and
   * it becomes a `clnrm.step:<name>` span when clnrm exports its own spans.
   */
  stepDone: (
    step: { name: string; service: string; collectSpans: boolean; source: RulePath },
    /** `wholeStdout`: the whole stream, `null` past the judging bound (then only `stdout`, an excerpt, is left). */
    result: { stdout: string; wholeStdout?: string | null; status: string; exitCode?: number },
    startWallMs: number,
  ) => void
  /** Waits for the spans to settle, then judges them. `failed`: a step failed (for clnrm's own span). */
  finish: (options: { signal?: AbortSignal; budgetMs?: number; failed?: boolean }) => Promise<SpanVerdict>
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
      throw new OtlpReceiverError(`the OTLP receiver could not start: ${(error as Error).message}`, { cause: error })
    }
  }
  const endpoint = otel.endpoint ?? hub?.containerEndpoint ?? ''
  return {
    spec: withOtelEnv(spec, endpoint, hub?.route),
    attach: async (lease) => {
      const addresses = (await Promise.all(Object.values(lease.services).map(s => s.addresses()))).flat()
      let unreachable: string | undefined
      if (hub?.route === 'network-gateway') {
        // The containers run, so their networks' bridges (and gateways) exist: answer there
        // before the first step. Spans a service sent earlier belong to no run anyway.
        const gateways = (await Promise.all(Object.values(lease.services).map(s => s.gateways()))).flat()
        // Not thrown: the lease is the caller's to release. The verdict says it instead.
        await hub.listenOn(gateways).catch((error: Error) => (unreachable = `the receiver could not listen on the containers' network gateway (${gateways.join(', ') || 'none reported'}): ${error.message}`))
      }
      const run: RunSpans | undefined = hub?.open({ addresses })
      const printed: Span[] = []
      const unread: Array<{ name: string; source: RulePath }> = []
      // clnrm's own spans, only when the user named a collector for them (never judged).
      const ownEndpoint = ownSpansEndpoint()
      const own: OwnSpan[] = []
      const startedWall = Date.now()
      const traceId = run?.traceId ?? randomBytes(16).toString('hex')
      const rootSpanId = run?.rootSpanId ?? newSpanId()
      const traceparent = `00-${traceId}-${rootSpanId}-01`
      return {
        stepEnv: { TRACEPARENT: traceparent },
        stepDone: (step, result, startWallMs) => {
          if (step.collectSpans) {
            // Spans are read from the whole stdout; past the judging bound only its head and tail
            // are left, and a verdict that missing spans could change must not pass.
            if (result.wholeStdout === null) unread.push(step)
            printed.push(...spansFromStdout(result.wholeStdout ?? result.stdout, { receivedAt: performance.now() }))
          }
          if (ownEndpoint) {
            own.push({
              name: `clnrm.step:${step.name}`, spanId: newSpanId(), parentSpanId: rootSpanId, startMs: startWallMs, endMs: Date.now(),
              attributes: { 'clnrm.step.name': step.name, 'clnrm.service': step.service, ...(result.exitCode !== undefined ? { 'process.exit.code': result.exitCode } : {}) },
              error: result.status === 'fail',
            })
          }
        },
        finish: async ({ signal, budgetMs = Infinity, failed = false }) => {
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
          if (expectations && unread.length && (failures.length || hasNegativeChecks(expectations))) {
            for (const step of unread) {
              failures.push({
                rule: 'artifacts.collect',
                expected: `every span step ${JSON.stringify(step.name)} printed`,
                actual: `its stdout passed the ${JUDGE_LIMIT_BYTES / 1024 / 1024} MiB clnrm reads whole, so spans in its middle were not read and a rule could be judged on too few`,
                spanIds: [],
                source: step.source,
              })
            }
          }
          if (unreachable) failures.push({ rule: 'otel.receiver', expected: 'the OTLP receiver reachable from the services', actual: unreachable, spanIds: [], source: [] })
          if (ownEndpoint) {
            own.push({ name: 'clnrm.test', spanId: rootSpanId, startMs: startedWall, endMs: Date.now(), attributes: { 'clnrm.test.name': spec.name, 'clnrm.test.file': spec.file }, error: failed || failures.length > 0 })
            // Not awaited: results never wait on the user's collector (the send gives up after 2 s).
            void exportOwnSpans(ownEndpoint, traceId, own)
          }
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
