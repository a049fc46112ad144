import type { Duplex } from 'node:stream'
import type Dockerode from 'dockerode'
import { createDemuxer } from './demux.ts'
import type { CommandRunner, ExecRequest, ExecResult } from './types.ts'
import { OutputCapture, execResult } from './types.ts'

/**
 * One `docker exec` per command: for images without `sh`. Slower (~57 ms a command) and a
 * timeout can only abandon the process, since such images have no `kill` to run.
 */
export function createExecRunner(container: Dockerode.Container): CommandRunner {
  let alive = true
  return {
    kind: 'exec',
    get alive() {
      return alive
    },
    async exec(request: ExecRequest): Promise<ExecResult> {
      const start = performance.now()
      const exec = await container.exec({
        Cmd: request.argv,
        Env: Object.entries(request.env ?? {}).map(([k, v]) => `${k}=${v}`),
        WorkingDir: request.workdir,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      })
      const stream = await exec.start({ hijack: true, stdin: false }) as Duplex
      const stdout = new OutputCapture()
      const stderr = new OutputCapture()
      stream.on('data', createDemuxer((which, chunk) => (which === 'stdout' ? stdout : stderr).push(chunk)))
      let timedOut = false
      let aborted = false
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer)
          stream.destroy()
          request.signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        const abandon = (): void => done()
        const onAbort = (): void => {
          aborted = true
          abandon()
        }
        const timer = request.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true
              abandon()
            }, request.timeoutMs)
        request.signal?.addEventListener('abort', onAbort, { once: true })
        stream.on('end', done)
        stream.on('close', done)
        stream.on('error', done)
      })
      const exitCode = timedOut || aborted ? 137 : ((await exec.inspect()).ExitCode ?? -1)
      return execResult(stdout, stderr, { exitCode, startedAt: start, timedOut, aborted })
    },
    async endRun(workdir, nextWorkdir) {
      // Images without sh may also lack rm and mkdir: then the directories simply stay.
      await this.exec({ argv: ['rm', '-rf', workdir], timeoutMs: 10_000 }).catch(() => undefined)
      await this.exec({ argv: ['mkdir', '-p', nextWorkdir], timeoutMs: 10_000 }).catch(() => undefined)
      return 0
    },
    close() {
      alive = false
    },
  }
}
