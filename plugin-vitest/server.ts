import { execFileSync } from 'node:child_process'
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ContainerPool, isTemplateFile, loadProject, runTest, TestFileError, variantSource } from '../core/index.ts'
import { createProjectCaches } from './caches.ts'
import type { TestResult } from '../core/index.ts'
import { describeProblems } from './plan.ts'
import type { RunMessage, RunRequest, RunServerInfo } from './protocol.ts'

// Built next to this file in dist/; from a clone's sources (Node cannot run the .ts) there is none,
// and only the signal listeners and teardown clean up.
const reaper = [join(dirname(fileURLToPath(import.meta.url)), 'reap.mjs')].find(existsSync)

/** Options of the run server: where the project is, and the template vars of the plugin. */
export interface RunServerOptions {
  /** The Vitest project's root; `clnrm.toml` is searched upward from it. */
  root: string
  vars?: Record<string, string>
}

/** The run server of one Vitest project: its address for workers, and a close that removes every container. */
export interface RunServer {
  readonly info: RunServerInfo
  /** Stops accepting runs, cancels those running, and removes the pool's containers. Memoised. */
  close: () => Promise<void>
}

/**
 * The main process's side of `clnrm/vitest`: one warm container pool shared by every worker, behind
 * a small HTTP server on 127.0.0.1. A worker posts "run this file" with a bearer token and reads
 * the steps' results as NDJSON lines, in order; closing the request cancels the run.
 */
export async function startRunServer(options: RunServerOptions): Promise<RunServer> {
  const token = randomBytes(24).toString('hex')
  const expected = Buffer.from(`Bearer ${token}`)
  const caches = createProjectCaches()
  const runs = new Set<AbortController>()
  // Connected on the first run, so `vitest --ui` and listing tests need no engine.
  let pool: Promise<ContainerPool> | undefined
  let closing: Promise<void> | undefined

  // The Vitest CLI ends the process 1 ms after Ctrl-C or SIGTERM (and anything may call
  // process.exit): then the exit event removes the containers, synchronously, in a child process.
  let reapOnExit: (() => void) | undefined
  const getPool = (): Promise<ContainerPool> => {
    // A run that got past its checks while the server closed must not start a pool no one closes.
    if (closing) return Promise.reject(new Error('the clnrm run server is closing'))
    pool ??= ContainerPool.create().then((created) => {
      if (reaper) {
        reapOnExit = () => {
          try {
            execFileSync(process.execPath, [reaper, created.sessionId], { stdio: 'ignore', timeout: 20_000 })
          }
          catch {
            // The next clnrm start removes what is left (the containers carry this dead process's pid).
          }
        }
        process.once('exit', reapOnExit)
      }
      return created
    }, (error: unknown) => {
      // The engine may answer later: the next run tries again.
      pool = undefined
      throw error
    })
    return pool
  }

  const run = async (request: RunRequest, signal: AbortSignal, send: (message: RunMessage) => void): Promise<void> => {
    let project
    try {
      project = await loadProject({ cwd: options.root, vars: options.vars })
    }
    catch (error) {
      if (!(error instanceof TestFileError)) throw error
      return send({ type: 'error', code: 'CLNRM_PROJECT_FILE', message: describeProblems(error.diagnostics, options.root) })
    }
    const loader = caches.loaderFor(project, request.file)
    let text: string
    try {
      text = await readFile(request.file, 'utf8')
    }
    catch (error) {
      return send({ type: 'error', code: 'CLNRM_FILE_READ', message: `${request.file} cannot be read (${(error as Error).message})` })
    }
    const loaded = loader.loadSource(request.file, text)
    if (!loaded.spec) return send({ type: 'error', code: 'CLNRM_INVALID_FILE', message: describeProblems(loaded.diagnostics.filter(d => d.severity === 'error'), project.root) })
    const spec = request.variant === undefined ? loaded.spec : loaded.spec.variants?.[request.variant]
    const names = spec?.steps.map(s => s.name)
    if (!spec || spec.variants || names!.join('\0') !== request.steps.join('\0')) {
      return send({ type: 'error', code: 'CLNRM_FILE_CHANGED', message: `${request.file} changed after Vitest collected its steps${names ? ` (now: ${names.map(n => JSON.stringify(n)).join(', ')})` : ''}`, hint: 'Run it again: Vitest collects the new steps.' })
    }
    const containers = await getPool()
    let index = 0
    let streaming = true
    const result: TestResult = await runTest(spec, {
      pool: containers,
      signal,
      load: loaded.timings,
      // Failures then carry the failing key's line, for the code frame Vitest shows.
      source: variantSource(spec, { toml: loaded.toml ?? text, ...(isTemplateFile(request.file) && { template: text }) }),
      onStep: (step) => {
        // Steps after a failed one are skipped without a call, and assertion entries follow: stream
        // only while the index is certain; the rest arrives with the result.
        if (!streaming || index >= spec.steps.length) return
        send({ type: 'step', index, step })
        if (step.status === 'fail' && !spec.steps[index]!.continueOnFailure) streaming = false
        index++
      },
    })
    send({ type: 'done', result })
  }

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const authorization = Buffer.from(req.headers.authorization ?? '')
    if (req.method !== 'POST' || req.url !== '/run') return void res.writeHead(404).end()
    if (authorization.length !== expected.length || !timingSafeEqual(authorization, expected)) return void res.writeHead(401).end()
    if (closing) return void res.writeHead(503).end('closing')
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      let request: RunRequest
      try {
        request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as RunRequest
        if (typeof request.file !== 'string' || !Array.isArray(request.steps)) throw new TypeError('expected { file, steps }')
      }
      catch (error) {
        return void res.writeHead(400).end((error as Error).message)
      }
      const controller = new AbortController()
      runs.add(controller)
      // The worker went away (its test file ended, a rerun, a crash): the run is cancelled.
      res.on('close', () => controller.abort())
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' })
      const send = (message: RunMessage): void => {
        if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify(message)}\n`)
      }
      run(request, controller.signal, send)
        .catch((error: unknown) => {
          const e = error as { code?: unknown; message?: string; hint?: string }
          send({ type: 'error', ...(typeof e.code === 'string' && { code: e.code }), message: e.message ?? String(error), ...(e.hint && { hint: e.hint }) })
        })
        .finally(() => {
          runs.delete(controller)
          res.end()
        })
    })
  }

  const server = createServer(handle)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo

  return {
    info: { url: `http://127.0.0.1:${port}`, token },
    close() {
      closing ??= (async () => {
        for (const controller of runs) controller.abort()
        server.closeAllConnections()
        const closed = new Promise<void>(resolve => server.close(() => resolve()))
        const containers = await pool?.catch(() => undefined)
        await Promise.allSettled([closed, containers?.close()])
        if (reapOnExit) process.off('exit', reapOnExit)
      })()
      return closing
    },
  }
}
