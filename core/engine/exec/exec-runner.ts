import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import type { EngineContainer } from '../adapter.ts'
import { createDemuxer } from './demux.ts'
import { ENV_NAME_RE, shellQuote } from './quote.ts'
import { directoryTar } from './tar.ts'
import type { CommandRunner, ExecRequest, ExecResult } from './types.ts'
import { execResult, OutputCapture, RUN_ENV } from './types.ts'

/** The engine's words when it could not start a command; its exit code then is 126. */
const START_FAILED_RE = /^OCI runtime exec failed: .*$/m

/**
 * One `docker exec` per command: for images without `sh` (scratch, distroless). Slower (tens
 * of milliseconds a command). Such images have no `kill`, so a timeout or a cancel stops the
 * whole container: its processes end with it, later commands of the run fail unstarted (exit 137, saying why), and the pool
 * replaces the container for the next run. Run directories are made through the engine's
 * archive API (no `mkdir` needed) and stay behind (no `rm`).
 *
 * Also the fallback for engines without attach-with-stdin (no long-lived shell). With `wrap`
 * (an engine that drops an exec's `Env` or `WorkingDir`), both go into the command instead:
 * `sh -c 'cd DIR || exit 125; export K=V…; exec "$@"' sh ARGV…`, same exit codes as unwrapped.
 */
export function createExecRunner(container: EngineContainer, options: { wrap?: boolean } = {}): CommandRunner {
  let alive = true
  let stopped: string | undefined
  let runToken = randomBytes(6).toString('hex')
  return {
    kind: 'exec',
    get alive() {
      return alive
    },
    async exec(request: ExecRequest): Promise<ExecResult> {
      const start = performance.now()
      const stdout = new OutputCapture()
      const stderr = new OutputCapture()
      if (request.signal?.aborted) return execResult(stdout, stderr, { exitCode: 137, startedAt: start, timedOut: false, aborted: true })
      if (stopped) {
        // Not an error of the service: say on the step why it did not run.
        stderr.push(Buffer.from(`clnrm: not started: the container was stopped ${stopped} (an image without sh has no kill to end one command); the next run gets a fresh container\n`))
        return execResult(stdout, stderr, { exitCode: 137, startedAt: start, timedOut: false, aborted: false })
      }
      const env = { ...request.env, [RUN_ENV]: runToken }
      // As on the sh path, only names a shell could export.
      const pairs = Object.entries(env).filter(([k]) => ENV_NAME_RE.test(k))
      const exec = await container.exec(options.wrap
        ? { Cmd: wrapCommand(request.argv, pairs, request.workdir), AttachStdout: true, AttachStderr: true, Tty: false }
        : { Cmd: request.argv, Env: pairs.map(([k, v]) => `${k}=${v}`), WorkingDir: request.workdir, AttachStdout: true, AttachStderr: true, Tty: false })
      const stream = await exec.start({ stdin: false })
      stream.on('data', createDemuxer((which, chunk) => (which === 'stdout' ? stdout : stderr).push(chunk)))
      let timedOut = false
      let aborted = false
      const stopContainer = async (why: string): Promise<void> => {
        alive = false
        stopped ??= why
        // SIGKILL to the container's init: every process in it ends, this command's too.
        await container.kill().catch(() => {})
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer)
          request.signal?.removeEventListener('abort', onAbort)
          stream.destroy()
          resolve()
        }
        const onAbort = (): void => {
          aborted = true
          void stopContainer('to cancel a command').finally(done)
        }
        const timer = request.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true
              void stopContainer(`when a command timed out after ${request.timeoutMs}ms`).finally(done)
            }, request.timeoutMs)
        request.signal?.addEventListener('abort', onAbort, { once: true })
        stream.on('end', done)
        stream.on('close', done)
        stream.on('error', done)
      })
      if (timedOut || aborted) return execResult(stdout, stderr, { exitCode: 137, startedAt: start, timedOut, aborted })
      let exitCode = (await exec.inspect()).exitCode ?? -1
      if (exitCode === 126) {
        // The engine could not start the command and said why on stdout: report it as sh
        // would, on stderr, with 127 for a command that does not exist.
        const said = stdout.whole() ?? ''
        const reason = START_FAILED_RE.exec(said)?.[0]
        if (reason) {
          const quiet = new OutputCapture()
          const err = new OutputCapture()
          err.push(Buffer.from(`${reason.replace(/\r$/, '')}\n`))
          // As on the sh path: 125 for a workdir that does not exist, 127 for a missing command.
          if (/chdir to cwd/.test(reason)) exitCode = 125
          else if (/executable file not found|no such file or directory/.test(reason)) exitCode = 127
          return execResult(quiet, err, { exitCode, startedAt: start, timedOut, aborted })
        }
      }
      return execResult(stdout, stderr, { exitCode, startedAt: start, timedOut, aborted })
    },
    async prepareWorkdir(dir) {
      await container.putArchive(directoryTar(dir), '/')
    },
    async endRun(_workdir, nextWorkdir) {
      // No rm in such images: the finished run's (fresh, per-run) directory stays.
      runToken = randomBytes(6).toString('hex')
      if (!alive) return { exitCode: 1, workdir: nextWorkdir }
      await this.prepareWorkdir(nextWorkdir)
      return { exitCode: 0, workdir: nextWorkdir }
    },
    close() {
      alive = false
    },
  }
}

/** The command with its working directory and env inside it, for engines that drop them from the exec. */
export function wrapCommand(argv: string[], env: Array<[string, string]>, workdir: string | undefined): string[] {
  const cd = workdir ? `cd ${shellQuote(workdir)} || exit 125; ` : ''
  const exports = env.map(([k, v]) => `export ${k}=${shellQuote(v)}; `).join('')
  return ['sh', '-c', `${cd}${exports}exec "$@"`, 'sh', ...argv]
}
