import type { EngineAdapter, PullEvent, RegistryAuth } from './adapter.ts'
import { AbortedError, engineMessage, MissingImageError } from './docker.ts'

/** Layers and bytes of one pull so far, summed over its layers as the engine reports them. */
export interface PullAmounts {
  layers: { done: number; total: number }
  /** Bytes downloaded and to download, over the layers whose size the engine has said. */
  bytes: { current: number; total: number }
}

/** A pull's progress, as the engine reports it: the latest status line and the amounts so far. */
export interface PullProgress extends PullAmounts {
  image: string
  status: string
  /** The engine's own progress bar text of the layer that moved, when it sent one. */
  progress?: string
}

/** One pull a resolver made: when it started (epoch ms), how long it took, what it fetched, or why it failed. */
export interface PullRecord extends PullAmounts {
  image: string
  /** The registry it came from (`docker.io` for Docker Hub's short names). */
  registry: string
  startedAt: number
  ms: number
  /** The error the tests needing the image get; `reason` is the engine's own words. */
  error?: { message: string; reason: string; hint: string }
}

/** What a resolver tells its pool, as the pool's events. */
export interface PullEvents {
  start: (event: { image: string; registry: string }) => void
  progress: (event: PullProgress) => void
  done: (record: PullRecord) => void
}

/** Resolves image references to ids; pulls what is missing, several at once. */
export interface ImageResolver {
  /** The image's id: inspected when local, else pulled (joining a pull already in flight). Throws `MissingImageError`. */
  (image: string): Promise<string>
  /**
   * Starts resolving every image at once, so missing ones are pulled in parallel before any test
   * waits on them. A failed pull is remembered until the next `prepare` that names the image, so
   * every test that needs it fails with the same error without pulling again (`remember: false`:
   * not remembered, for a long session where a later save should try again). Settles when all
   * are resolved or failed; never rejects.
   */
  prepare: (images: Iterable<string>, options?: { remember?: boolean }) => Promise<void>
  /** Every pull made so far, in start order. */
  pulls: () => readonly PullRecord[]
  /** Ends every pull in flight (the engine stops it when its client goes): the pool is closing. */
  close: () => void
}

/**
 * Waits for `promise`, or throws `AbortedError` as soon as one of the signals fires: a pull can take
 * minutes, and a cancelled run must not wait for it (the pull goes on for whoever else needs it).
 */
export function untilAborted<T>(promise: Promise<T>, ...signals: Array<AbortSignal | undefined>): Promise<T> {
  const live = signals.filter((s): s is AbortSignal => s !== undefined)
  if (live.some(s => s.aborted)) return Promise.reject(new AbortedError())
  if (!live.length) return promise
  return new Promise<T>((done, fail) => {
    const abort = (): void => {
      cleanup()
      fail(new AbortedError())
    }
    const cleanup = (): void => {
      for (const s of live) s.removeEventListener('abort', abort)
    }
    for (const s of live) s.addEventListener('abort', abort, { once: true })
    promise.then(value => (cleanup(), done(value)), error => (cleanup(), fail(error)))
  })
}

/** Docker Hub's index: where short names (`busybox:1.36`) are pulled from, and its auth key. */
const DOCKER_HUB_INDEX = 'https://index.docker.io/v1/'

/** The registry of a reference, as Docker reads it: a first component with `.` or `:`, or `localhost`; else Docker Hub. */
export function registryOf(image: string): string | undefined {
  const slash = image.indexOf('/')
  if (slash < 0) return undefined
  const first = image.slice(0, slash)
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : undefined
}

/** A next step for a failed pull, from the engine's reason. */
export function pullHint(image: string, registry: string, reason: string): string {
  // Unreachable first: "lookup … no such host" is not a missing image.
  if (/connection refused|no route|i\/o timeout|dial tcp|no such host|timeout|TLS|certificate|server gave HTTP response to HTTPS/i.test(reason)) return `${registry} is not reachable from the Docker engine: start it, check the network or proxy, or build and load the image locally (docker build -t ${image} …, docker load).`
  if (/unauthorized|authentication required|no basic auth credentials|denied|forbidden/i.test(reason)) return `${registry} refused the pull: log in (docker login ${registry}) or check the credentials in ~/.docker/config.json; or build it locally (docker build -t ${image} …).`
  if (/manifest unknown|not found|does not exist/i.test(reason)) return `${registry} has no image ${image}: check the name and tag in the test file, push it there (docker push ${image}), or build it locally (docker build -t ${image} …).`
  return `Pull it by hand to see more (docker pull ${image}), or build and load it locally (docker build -t ${image} …, docker load).`
}

/** The registry credentials testcontainers finds (docker config, credential helpers), as the engine's pull wants them. */
async function authFor(registry: string | undefined): Promise<RegistryAuth | undefined> {
  try {
    // Testcontainers reads ~/.docker/config.json, credsStore and credHelpers the way its users set them up.
    const { getAuthConfig } = await import('testcontainers/build/container-runtime/index.js')
    const auth = await getAuthConfig(registry ?? DOCKER_HUB_INDEX)
    return auth as RegistryAuth | undefined
  }
  catch {
    return undefined
  }
}

/** Progress events of one pull come fast (a line per chunk): at most one per this many ms, plus every status change. */
const PROGRESS_EVERY_MS = 100

/** Follows one pull's event stream, summing its layers' progress; rejects with the engine's reason. */
async function followPull(engine: EngineAdapter, image: string, auth: RegistryAuth | undefined, amounts: PullAmounts, onProgress: PullEvents['progress']): Promise<void> {
  const layers = new Map<string, { current: number; total: number; done: boolean }>()
  let failure: string | undefined
  let last = 0
  let lastStatus = ''
  // The adapter reads the stream to its end; an `error` line is a failed pull.
  await engine.pull(image, {
    ...(auth && { auth }),
    onEvent: (event: PullEvent) => {
      if (event.error) {
        failure ??= event.error
        return
      }
      const status = event.status ?? ''
      if (event.id && event.id !== image && !/^(Pulling from|Digest|Status)/.test(status)) {
        const layer = layers.get(event.id) ?? { current: 0, total: 0, done: false }
        layers.set(event.id, layer)
        if (event.progressDetail?.total) layer.total = event.progressDetail.total
        if (status === 'Downloading' && event.progressDetail?.current !== undefined) layer.current = event.progressDetail.current
        if (status === 'Download complete') layer.current = layer.total
        if (status === 'Pull complete' || status === 'Already exists') layer.done = true
      }
      const all = [...layers.values()]
      amounts.layers = { done: all.filter(l => l.done).length, total: all.length }
      amounts.bytes = { current: all.reduce((n, l) => n + l.current, 0), total: all.reduce((n, l) => n + l.total, 0) }
      const now = performance.now()
      if (status === lastStatus && now - last < PROGRESS_EVERY_MS) return
      last = now
      lastStatus = status
      onProgress({ image, status, ...(event.progress && { progress: event.progress }), layers: { ...amounts.layers }, bytes: { ...amounts.bytes } })
    },
  })
  if (failure) throw new Error(failure)
}

/**
 * Resolves image references to image ids, once per reference: a local image is inspected, a
 * missing one pulled (credentials as testcontainers finds them, progress as events). Concurrent
 * callers of one image share one pull. A failure is not remembered by `resolve` alone, so the next
 * run tries again; `prepare` remembers its failures (see `ImageResolver.prepare`).
 */
export function createImageResolver(engine: () => EngineAdapter, events: PullEvents): ImageResolver {
  const ids = new Map<string, Promise<string>>()
  const failed = new Map<string, MissingImageError>()
  const records: PullRecord[] = []
  const closing = new AbortController()

  const pull = async (image: string): Promise<string> => {
    const host = registryOf(image)
    const registry = host ?? 'docker.io'
    const record: PullRecord = { image, registry, startedAt: Date.now(), ms: 0, layers: { done: 0, total: 0 }, bytes: { current: 0, total: 0 } }
    records.push(record)
    const started = performance.now()
    events.start({ image, registry })
    try {
      await followPull(engine(), image, await authFor(host), record, events.progress)
      const id = await engine().imageId(image)
      if (!id) throw new Error(`the engine has no image "${image}" after pulling it`)
      record.ms = performance.now() - started
      events.done(record)
      return id
    }
    catch (error) {
      // The engine's words, without dockerode's status prefix ("server error - ").
      const reason = engineMessage(error).replace(/^[a-z ]+ - /, '')
      const missing = new MissingImageError(image, error, { registry, reason, hint: pullHint(image, registry, reason) })
      record.ms = performance.now() - started
      record.error = { message: missing.message, reason, hint: missing.hint }
      events.done(record)
      throw missing
    }
  }

  const resolve = async (image: string): Promise<string> => {
    const local = await engine().imageId(image)
    if (local) return local
    // Failed once in this run: every test needing it gets that error, without another pull.
    const known = failed.get(image)
    if (known) throw known
    return pull(image)
  }

  const resolver = (image: string): Promise<string> => {
    let id = ids.get(image)
    if (!id) {
      id = resolve(image)
      ids.set(image, id)
      id.catch(() => ids.delete(image))
    }
    return id
  }
  resolver.prepare = async (images: Iterable<string>, options: { remember?: boolean } = {}): Promise<void> => {
    const unique = [...new Set(images)]
    for (const image of unique) failed.delete(image)
    await Promise.all(unique.map(image => resolver(image).catch((error: unknown) => {
      if (error instanceof MissingImageError && options.remember !== false) failed.set(image, error)
    })))
  }
  resolver.pulls = (): readonly PullRecord[] => records
  resolver.close = (): void => closing.abort()
  return resolver
}
