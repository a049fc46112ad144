import type { EngineContainer } from '../adapter.ts'
import { createDemuxer } from './demux.ts'
import { drain } from './engine-exec.ts'

/** What one exec printed and how it ended (`exitCode` undefined when the engine refused it). */
export interface ExecOnceResult {
  out: string
  err: string
  exitCode: number | undefined
}

/**
 * One exec read to its end: its stdout, stderr and exit code. Never throws: a refused exec
 * comes back with the engine's words in `err`. For measurements (the capability probe), not steps.
 */
export async function execOnce(container: EngineContainer, argv: string[], extra: { Env?: string[]; WorkingDir?: string } = {}): Promise<ExecOnceResult> {
  try {
    const exec = await container.exec({ Cmd: argv, ...extra, AttachStdout: true, AttachStderr: true, Tty: false })
    const stream = await exec.start({ stdin: false })
    const out: Buffer[] = []
    const err: Buffer[] = []
    stream.on('data', createDemuxer((which, chunk) => (which === 'stdout' ? out : err).push(chunk)))
    await drain(stream, 10_000)
    return { out: Buffer.concat(out).toString('utf8'), err: Buffer.concat(err).toString('utf8'), exitCode: (await exec.inspect()).exitCode }
  }
  catch (error) {
    return { out: '', err: (error as Error).message, exitCode: undefined }
  }
}
