import { ClnrmError } from '../errors.ts'
import { randomBytes } from 'node:crypto'
import { networkInterfaces } from 'node:os'
import type { HostRoute } from '../engine/host-reach.ts'
import { HOST_ROUTES } from '../engine/host-reach.ts'
import type { OtlpReceiver } from './receiver.ts'
import { CLNRM_SCOPE } from './self-export.ts'
import { startOtlpReceiver } from './receiver.ts'
import type { Span } from './types.ts'

/**
 * The process's one OTLP receiver and the runs it hands spans to.
 *
 * Which run does a span belong to? Containers are reused, so resource attributes cannot say, and
 * time windows alone overlap when tests run in parallel. But the pool leases a container to one
 * run at a time, and the receiver sees who sent each export: the container's own address on the
 * network it used (Docker does not masquerade traffic from a bridge to the host's own addresses).
 * So a span goes to
 * 1. the run whose trace it is (the runner starts one per run and passes `TRACEPARENT` to steps);
 * 2. else the run that holds the sending container's lease, if the span ended after the lease
 *    began and is not of an ended run's trace (leftovers of the previous run are dropped);
 * 3. else, from an address no lease ever had (an engine that rewrites source addresses, such as
 *    Docker Desktop's), to the only run collecting, when exactly one does;
 * and is dropped otherwise: two runs at once never see each other's spans.
 */
export class OtelHub {
  readonly receiver: OtlpReceiver
  /** How containers reach the receiver (see host-reach.ts): the name in the endpoint, and where it listens. */
  readonly route: HostRoute
  readonly #runs = new Set<RunSpans>()
  readonly #byTrace = new Map<string, RunSpans>()
  readonly #byAddress = new Map<string, RunSpans>()
  /** Every address a lease ever had: a span from one of them outside a lease is a leftover. */
  readonly #known = new Set<string>()
  /**
   * Traces of runs that ended (the latest ones): a late span of a cancelled run, sent by a
   * container the next run now holds, is the old run's, not the new one's.
   */
  readonly #ended = new Set<string>()
  #dropped = 0

  private constructor(receiver: OtlpReceiver, route: HostRoute) {
    this.receiver = receiver
    this.route = route
  }

  /**
   * Starts a hub whose receiver listens on the first of `hosts` this machine has (see
   * `receiverHosts`), falling back to 127.0.0.1. `route`: how containers will reach it.
   */
  static async start(options: { hosts?: string[]; port?: number; maxBodyBytes?: number; route?: HostRoute } = {}): Promise<OtelHub> {
    let hub: OtelHub | undefined
    const pending: Array<[Span[], string]> = []
    let receiver: OtlpReceiver | undefined
    const hosts = [...new Set([...(options.hosts ?? []), '127.0.0.1'])]
    for (const [i, host] of hosts.entries()) {
      try {
        receiver = await startOtlpReceiver({
          host,
          port: options.port,
          maxBodyBytes: options.maxBodyBytes,
          onSpans: (spans, peer) => (hub ? hub.deliver(spans, peer) : pending.push([spans, peer])),
        })
        break
      }
      catch (error) {
        // An address this machine does not have (a remote engine's bridge): try the next.
        if (i === hosts.length - 1) throw error
      }
    }
    if (!receiver) throw new ClnrmError('CLNRM_OTLP_RECEIVER', 'the OTLP receiver could not listen')
    hub = new OtelHub(receiver, options.route ?? 'host-gateway')
    for (const [spans, peer] of pending) hub.deliver(spans, peer)
    return hub
  }

  /** The endpoint containers export to: the host by the name its route gives it (`host.docker.internal` on Docker). */
  get containerEndpoint(): string {
    return `http://${HOST_ROUTES[this.route].name}:${this.receiver.port}`
  }

  /**
   * Makes the receiver answer on the gateways of the networks a run's containers are on, when
   * that is how they reach this machine (the `network-gateway` route: Podman's
   * `host.containers.internal`). Called once the containers run, since a network's gateway is an
   * address of this machine only while its bridge exists; the socket stays bound when the bridge
   * goes and answers again when it comes back. A no-op on the `host-gateway` route.
   */
  async listenOn(gateways: readonly string[]): Promise<void> {
    if (this.route !== 'network-gateway') return
    await Promise.all([...new Set(gateways)].map(gateway => this.receiver.listenAlso(gateway)))
  }

  /** Spans no run claimed (leftovers, or several runs at once and an unknown sender). */
  get dropped(): number {
    return this.#dropped
  }

  /**
   * Starts collecting one run's spans: those of its trace, and those its containers (by their
   * addresses) send from now on. Close it when the run has settled.
   */
  open(options: { addresses: readonly string[]; traceId?: string }): RunSpans {
    const run = new RunSpans(options.traceId ?? randomBytes(16).toString('hex'), [...options.addresses], Date.now(), () => {
      this.#runs.delete(run)
      this.#ended.add(run.traceId)
      if (this.#ended.size > 1000) this.#ended.delete(this.#ended.values().next().value!)
      if (this.#byTrace.get(run.traceId) === run) this.#byTrace.delete(run.traceId)
      for (const address of run.addresses) if (this.#byAddress.get(address) === run) this.#byAddress.delete(address)
    })
    this.#runs.add(run)
    this.#byTrace.set(run.traceId, run)
    for (const address of run.addresses) {
      this.#byAddress.set(address, run)
      this.#known.add(address)
    }
    return run
  }

  /** Hands one export's spans, sent from `peer`, to the runs they belong to (what the receiver calls). */
  deliver(spans: Span[], peer: string): void {
    const only = this.#runs.size === 1 && !this.#known.has(peer) ? [...this.#runs][0] : undefined
    const byPeer = this.#byAddress.get(peer)
    for (const span of spans) {
      // clnrm's own spans (a user who points clnrm's exporter here) never satisfy an expectation.
      if (span.scope?.name === CLNRM_SCOPE) {
        this.#dropped++
        continue
      }
      const run = this.#byTrace.get(span.traceId) ?? (this.#ended.has(span.traceId) ? undefined : byPeer && span.endTimeMs >= byPeer.startWallMs ? byPeer : only)
      if (run) run.add(span)
      else this.#dropped++
    }
  }

  /** Stops the receiver; open runs keep what they collected. */
  close(): Promise<void> {
    return this.receiver.close()
  }
}

/** The name containers reach the host by on Docker; the pool maps it with `HOST_GATEWAY`. */
export const CONTAINER_HOST_NAME: string = HOST_ROUTES['host-gateway'].name
/** `ExtraHosts` entry: Docker (20.10+) resolves `host-gateway` to the default bridge's gateway. */
export const HOST_GATEWAY: string = HOST_ROUTES['host-gateway'].extraHosts[0]!

/**
 * Where the receiver may listen, best first: the default bridge's gateway (what `host-gateway`
 * resolves to: reachable from the default bridge and, routed by the host, from user-defined
 * networks), else 127.0.0.1 (Docker Desktop's `host.docker.internal` reaches the host's
 * loopback). Never 0.0.0.0: nothing beyond this machine's containers can post spans.
 * `CLNRM_OTLP_HOST` overrides it. A remote engine's containers reach neither: see docs/otel.md.
 *
 * On the `network-gateway` route (Podman) the first listener is on 127.0.0.1 only: it holds the
 * port, reachable from nothing but this machine, and the receiver then listens on each network's
 * gateway as runs lease containers there (`OtelHub.listenOn`), the one address of this machine
 * those containers, and only they, are routed to directly.
 */
export function receiverHosts(gateway: string | undefined, env: Record<string, string | undefined> = process.env, route: HostRoute = 'host-gateway'): string[] {
  if (env.CLNRM_OTLP_HOST) return [env.CLNRM_OTLP_HOST]
  if (route === 'network-gateway') return ['127.0.0.1']
  // Linux hides a bridge without containers from os.networkInterfaces (it is down), but its address is there to bind.
  const docker0 = networkInterfaces().docker0?.find(a => a.family === 'IPv4')?.address
  return [...new Set([gateway, docker0, '127.0.0.1'].filter((h): h is string => !!h))]
}

/** The shortest wait for a run's first span (see `RunSpans.settle`). */
export const FIRST_SPAN_GRACE_MS = 300

/** One run's spans, as they arrive. */
export class RunSpans {
  readonly traceId: string
  /** The span id of the runner's own (unexported) root: the parent in `TRACEPARENT`. */
  readonly rootSpanId: string = randomBytes(8).toString('hex')
  readonly addresses: readonly string[]
  /** Date.now() when collection began: spans that ended earlier are not this run's. */
  readonly startWallMs: number
  readonly spans: Span[] = []
  /** performance.now() of the last arrival, or undefined before the first. */
  lastArrival: number | undefined
  readonly #detach: () => void
  #wake: (() => void) | undefined
  #closed = false

  constructor(traceId: string, addresses: string[], startWallMs: number, detach: () => void) {
    this.traceId = traceId
    this.addresses = addresses
    this.startWallMs = startWallMs
    this.#detach = detach
  }

  /** The W3C `traceparent` steps get as `TRACEPARENT` (sampled). */
  get traceparent(): string {
    return `00-${this.traceId}-${this.rootSpanId}-01`
  }

  /** @internal Called by the hub. */
  add(span: Span): void {
    if (this.#closed) return
    this.spans.push(span)
    this.lastArrival = span.receivedAt
    this.#wake?.()
  }

  /**
   * Waits until the spans are complete: `done()` says so (every expectation already holds), or no
   * span has arrived for `quietMs` (counted from `since`, the end of the last step, or from the
   * last arrival after it), or `timeoutMs` has passed. Resolves to the milliseconds waited.
   *
   * Until the run's first span arrives the quiet window is at least `firstSpanGraceMs`: a fresh
   * service's first export (an SDK loading its exporter, a busy machine) can take longer than
   * 50 ms, and judging then would judge no spans at all.
   */
  async settle(options: { quietMs: number; timeoutMs: number; since?: number; firstSpanGraceMs?: number; done?: (spans: readonly Span[]) => boolean; signal?: AbortSignal }): Promise<number> {
    const start = performance.now()
    const since = options.since ?? start
    const deadline = start + Math.max(0, options.timeoutMs)
    let checkedAt = -1
    for (;;) {
      if (options.signal?.aborted) break
      // Evaluated again only when something arrived since the last look.
      if (options.done && checkedAt !== this.spans.length) {
        checkedAt = this.spans.length
        if (options.done(this.spans)) break
      }
      const now = performance.now()
      const quietFrom = Math.max(since, this.lastArrival ?? since)
      const quiet = this.spans.length === 0 ? Math.max(options.quietMs, options.firstSpanGraceMs ?? FIRST_SPAN_GRACE_MS) : options.quietMs
      const until = Math.min(quietFrom + quiet, deadline)
      if (now >= until) break
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, until - now)
        const onAbort = (): void => done()
        options.signal?.addEventListener('abort', onAbort, { once: true })
        function done(): void {
          clearTimeout(timer)
          options.signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        this.#wake = done
      })
      this.#wake = undefined
    }
    return performance.now() - start
  }

  /** Stops collecting; `spans` stays as it is. Idempotent. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#detach()
  }
}

let shared: { hub: Promise<OtelHub>; users: number } | undefined

/**
 * The process's hub, started on first use. Each user (a container pool) releases it when done;
 * the last release closes the receiver. The receiver never keeps the process alive meanwhile.
 */
export function useSharedHub(where: () => Promise<string[] | { hosts: string[]; route: HostRoute }> = async () => receiverHosts(undefined)): { hub: Promise<OtelHub>; release: () => Promise<void> } {
  if (!shared) {
    // A fixed port (CLNRM_OTLP_PORT) is for a collector that forwards to clnrm; by default the system picks one.
    const port = Number(process.env.CLNRM_OTLP_PORT) || 0
    const hub = where().then(found => (Array.isArray(found) ? OtelHub.start({ hosts: found, port }) : OtelHub.start({ hosts: found.hosts, route: found.route, port })))
    shared = { hub, users: 0 }
    // A failed start is not cached: the next test tries again.
    hub.catch(() => {
      if (shared?.hub === hub) shared = undefined
    })
  }
  const entry = shared
  entry.users++
  let released = false
  return {
    hub: entry.hub,
    release: async () => {
      if (released) return
      released = true
      if (--entry.users > 0) return
      if (shared === entry) shared = undefined
      await entry.hub.then(h => h.close(), () => {})
    },
  }
}
