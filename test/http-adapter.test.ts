import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LABELS } from '../core/index.ts'
import type { EngineAdapter, EngineContainer } from '../core/index.ts'
import { engineMessage, refusedKey } from '../core/engine/docker.ts'
import { createDemuxer } from '../core/engine/exec/demux.ts'
import { drain } from '../core/engine/exec/engine-exec.ts'
import { httpAdapter, repositoryTag } from '../core/engine/http-adapter.ts'
import { IMAGE } from './engine.ts'

// The node:http engine adapter on the real engine, where the contract suite does not look: the
// shape of its failures (callers read `statusCode`, `json.message` and the dockerode-style message),
// the rename refusal the cross-process lease relies on, and a hijacked exec with stdin.
const socket = process.env.DOCKER_HOST?.startsWith('unix://') ? process.env.DOCKER_HOST.slice('unix://'.length) : '/var/run/docker.sock'
const session = `http-adapter-${process.pid}-${Date.now().toString(36)}`

describe('httpAdapter (the Engine API over node:http)', () => {
  const engine: EngineAdapter = httpAdapter({ socketPath: socket, protocol: 'http' })
  let box: EngineContainer

  beforeAll(async () => {
    box = await engine.createContainer({
      name: `${session}-box`,
      Image: IMAGE,
      Cmd: ['sh', '-c', 'echo started; sleep 300'],
      Labels: { [LABELS.managed]: '1', [LABELS.pid]: String(process.pid), [LABELS.host]: hostname(), [LABELS.session]: session },
      HostConfig: { Init: true },
    })
    await box.start()
  })
  afterAll(async () => {
    const ids = execFileSync('docker', ['ps', '-aq', '--filter', `label=${LABELS.session}=${session}`], { encoding: 'utf8' }).split('\n').filter(Boolean)
    if (ids.length) execFileSync('docker', ['rm', '-f', ...ids])
  })

  it('a missing container: rejects with statusCode 404, the engine\'s JSON message, and a message engineMessage reads back', async () => {
    const error = await engine.container(`${session}-nobody`).inspect().then(() => undefined, (e: unknown) => e) as { statusCode?: number; json?: { message?: string }; message: string }
    expect(error.statusCode).toBe(404)
    expect(error.json?.message).toMatch(/no such container/i)
    expect(error.message).toMatch(/^\(HTTP code 404\) no such container - /)
    expect(engineMessage(error)).toBe(error.json!.message)
  })

  it('a rename to a name in use is refused (409): the cross-process lease depends on it', async () => {
    const other = await engine.createContainer({ name: `${session}-taken`, Image: IMAGE, Cmd: ['true'], Labels: { [LABELS.session]: session } })
    const error = await box.rename(`${session}-taken`).then(() => undefined, (e: unknown) => e) as { statusCode?: number }
    expect(error?.statusCode).toBe(409)
    await box.rename(`${session}-renamed`)
    expect((await engine.listContainers([`${LABELS.session}=${session}`])).flatMap(c => c.Names ?? []).sort()).toEqual([`/${session}-renamed`, `/${session}-taken`])
    await other.remove()
  })

  it('an image that is not there: imageId is undefined, and create is refused with the engine\'s reason', async () => {
    expect(await engine.imageId('clnrm-examples/does-not-exist:1')).toBeUndefined()
    expect(await engine.imageId(IMAGE)).toMatch(/^sha256:/)
    const error = await engine.createContainer({ Image: 'clnrm-examples/does-not-exist:1', Labels: { [LABELS.session]: session } }).then(() => undefined, (e: unknown) => e)
    expect((error as { statusCode?: number }).statusCode).toBe(404)
    expect(refusedKey(engineMessage(error))).toBe('image')
  })

  it('a hijacked exec with stdin: a shell reads what is written and answers, and its exit code is read back', async () => {
    const exec = await box.exec({ Cmd: ['sh'], AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false })
    const stream = await exec.start({ stdin: true })
    let out = ''
    stream.on('data', createDemuxer((which, chunk) => (out += which === 'stdout' ? chunk.toString() : '')))
    stream.write('echo "hello $((6 * 7))"\nexit 3\n')
    await drain(stream)
    expect(out).toBe('hello 42\n')
    expect(await exec.inspect()).toEqual({ exitCode: 3, running: false })
  })

  it('logs: the last lines, multiplexed as the engine sends them; inspect: the running state', async () => {
    const logs = await box.logs(10)
    expect(logs.subarray(8).toString()).toBe('started\n')
    expect((await box.inspect()).State.Running).toBe(true)
  })

  it('an engine that answers an exec start with 200 instead of upgrading: its output is read, not taken for a refusal (as dockerode reads it)', async () => {
    // No engine at hand does this (Docker and Podman upgrade): a stand-in server speaks just the
    // three calls, the multiplexed frame as the Engine API writes it.
    const dir = mkdtempSync(join(tmpdir(), 'clnrm-http-'))
    const path = join(dir, 'engine.sock')
    const frame = Buffer.concat([Buffer.from([1, 0, 0, 0, 0, 0, 0, 3]), Buffer.from('hi\n')])
    const server = createServer((req, res) => {
      req.resume()
      if (req.url === '/containers/c1/exec') res.writeHead(201, { 'Content-Type': 'application/json' }).end('{"Id":"e1"}')
      else if (req.url === '/exec/e1/start') res.writeHead(200, { 'Content-Type': 'application/vnd.docker.raw-stream' }).end(frame)
      else if (req.url === '/exec/e1/json') res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ExitCode":0,"Running":false}')
      else res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"message":"page not found"}')
    })
    await new Promise<void>(done => server.listen(path, done))
    try {
      const exec = await httpAdapter({ socketPath: path, protocol: 'http' }).container('c1').exec({ Cmd: ['echo', 'hi'], AttachStdout: true, AttachStderr: true, Tty: false })
      const stream = await exec.start({ stdin: false })
      let out = ''
      stream.on('data', createDemuxer((_stream, chunk) => (out += chunk.toString())))
      await drain(stream)
      expect(out).toBe('hi\n')
      expect(await exec.inspect()).toEqual({ exitCode: 0, running: false })
    }
    finally {
      await new Promise(done => server.close(done))
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('splits image references as dockerode does', () => {
    expect(repositoryTag('busybox')).toEqual({ repository: 'busybox' })
    expect(repositoryTag('busybox:1.36')).toEqual({ repository: 'busybox', tag: '1.36' })
    expect(repositoryTag('localhost:5000/team/app')).toEqual({ repository: 'localhost:5000/team/app' })
    expect(repositoryTag('localhost:5000/team/app:2')).toEqual({ repository: 'localhost:5000/team/app', tag: '2' })
    expect(repositoryTag('app@sha256:abc')).toEqual({ repository: 'app', tag: 'sha256:abc' })
  })
})
