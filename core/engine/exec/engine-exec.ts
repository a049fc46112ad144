import type { Duplex } from 'node:stream'
import type { EngineContainer } from '../adapter.ts'

/**
 * Waits until an engine stream has ended, then destroys it. Every stream the engine hands us
 * goes through here or is otherwise read to its end: an unread response keeps its socket, and
 * so the event loop, alive (a kill used to leave one open socket behind per call).
 */
export function drain(stream: Duplex, timeoutMs = 10_000): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      stream.destroy()
      resolve()
    }
    const timer = setTimeout(done, timeoutMs)
    stream.on('error', done)
    stream.on('end', done)
    stream.on('close', done)
    stream.resume()
  })
}

/**
 * Runs a short command beside whatever the container is doing (one `docker exec`), reads its
 * response to the end and returns its exit code; `undefined` when the engine refused it.
 */
export async function execOnce(container: EngineContainer, argv: string[], timeoutMs = 10_000): Promise<number | undefined> {
  try {
    const exec = await container.exec({ Cmd: argv, AttachStdout: true, AttachStderr: true, Tty: false })
    const stream = await exec.start({ stdin: false })
    await drain(stream, timeoutMs)
    return (await exec.inspect()).exitCode
  }
  catch {
    return undefined
  }
}
