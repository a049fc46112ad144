import { execFileSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { spawnCli, waitUntil } from './cli-process.ts'
import type { CliProcess } from './cli-process.ts'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'

const lines = (text: string): string[] => text.split('\n').filter(Boolean)
const networksOf = (pid: number): string[] => lines(execFileSync('docker', ['network', 'ls', '-q', '--filter', `label=clnrm.pid=${pid}`], { encoding: 'utf8' }))

/**
 * The real engine behind a unix socket that holds back the removal of one process's containers:
 * every `DELETE /containers/<id>` of a container labelled `clnrm.pid=<pid>` waits (with what
 * follows on its connection) until `release`. Everything else passes through untouched, so the
 * other removals on this shared engine (orphans of dead processes) are never held.
 */
function holdingEngine(path: string): { pid: (pid: number) => void; held: string[]; release: () => void; close: () => Promise<void> } {
  let owner: number | undefined
  let holding = true
  const held: string[] = []
  const waiting: Array<() => void> = []
  const sockets = new Set<Socket>()
  const ours = (id: string): boolean => owner !== undefined && lines(execFileSync('docker', ['ps', '-aq', '--no-trunc', '--filter', `label=clnrm.pid=${owner}`], { encoding: 'utf8' })).some(mine => mine.startsWith(id) || id.startsWith(mine))
  const server: Server = createServer((client) => {
    const upstream = connect('/var/run/docker.sock')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => s.destroy())
    }
    upstream.pipe(client)
    let queue: Buffer[] | undefined
    let ended = false
    client.on('data', (chunk: Buffer) => {
      if (queue) return void queue.push(chunk)
      const head = chunk.subarray(0, 300).toString('latin1')
      const id = /^DELETE \/(?:v[\d.]+\/)?containers\/([0-9a-f]{12,64})/.exec(head)?.[1]
      if (holding && id && ours(id)) {
        queue = [chunk]
        held.push(head.split('\r\n')[0]!)
        waiting.push(() => {
          for (const c of queue!) upstream.write(c)
          queue = undefined
          if (ended) upstream.end()
        })
        return
      }
      upstream.write(chunk)
    })
    client.on('end', () => {
      ended = true
      if (!queue) upstream.end()
    })
  })
  rmSync(path, { force: true })
  server.listen(path)
  return {
    pid: (pid) => {
      owner = pid
    },
    held,
    release: () => {
      holding = false
      for (const go of waiting.splice(0)) go()
    },
    close: () => new Promise((done) => {
      for (const s of sockets) s.destroy()
      server.close(() => done())
    }),
  }
}

/** Three services, none reused: the run's release removes all three, then their network. */
const trio = (name: string): string =>
  `[meta]\nname = "${name}"\n${['a', 'b', 'c'].map(id => `[services.${id}]\nimage = "${IMAGE}"\nreuse = false\n`).join('')}[[steps]]\nname = "reach"\nservice = "a"\nrun = "ping -c1 -W2 b >/dev/null && ping -c1 -W2 c >/dev/null"\n`

describe('results come before teardown (spawned CLI, the engine behind a socket that holds the removals back)', { timeout: 180_000 }, () => {
  let dir: string
  let cleanup: () => Promise<void>
  let engine: ReturnType<typeof holdingEngine>
  let socket: string
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir())
    socket = join(tmpdir(), `clnrm-hold-${process.pid}-${Math.random().toString(36).slice(2, 8)}.sock`)
    engine = holdingEngine(socket)
  })
  afterEach(async () => {
    engine.release()
    await engine.close()
    rmSync(socket, { force: true })
    await cleanup()
  })

  /** Spawns the CLI on the holding engine; its containers are the ones held. */
  const spawnHeld = (args: string[]): CliProcess => {
    const cli = spawnCli(args, dir, { env: { DOCKER_HOST: `unix://${socket}` } })
    engine.pid(cli.pid)
    return cli
  }
  /** While the removal is held: the containers still exist and the process has not exited. */
  const teardownPending = async (cli: CliProcess): Promise<void> => {
    await waitUntil(() => engine.held.length > 0, 'a held removal', 60_000)
    expect(engine.held[0]).toMatch(/^DELETE \S*\/containers\//)
    expect(clnrmContainers(cli.pid).length).toBe(3)
    expect(await Promise.race([cli.exited.then(() => 'exited'), new Promise(r => setTimeout(() => r('running'), 200))])).toBe('running')
  }
  /** Once released: exits (within a generous bound, not a timing claim) with nothing left. */
  const releaseAndExit = async (cli: CliProcess, code: number): Promise<void> => {
    engine.release()
    const exit = await Promise.race([cli.exited, new Promise<never>((_, fail) => setTimeout(() => fail(new Error(`no exit within 30 s:\n${cli.output()}`)), 30_000))])
    expect(exit.code).toBe(code)
    expect(clnrmContainers(cli.pid)).toEqual([])
    expect(networksOf(cli.pid)).toEqual([])
  }

  it('clnrm run prints the test\'s result line and the summary while its containers are still being removed', async () => {
    await writeFile(join(dir, 'trio.clnrm.toml'), trio('trio'))
    const cli = spawnHeld(['run', '.'])
    await cli.until(/✓ trio/, 90_000)
    await cli.until(/Tests: 1 passed \(1\)/, 30_000)
    await teardownPending(cli)
    await releaseAndExit(cli, 0)
  })

  it('clnrm run --reporter json writes the whole report while the containers are still being removed', async () => {
    await writeFile(join(dir, 'trio.clnrm.toml'), trio('trio'))
    const cli = spawnHeld(['run', '.', '--reporter', 'json'])
    await waitUntil(() => /\}\s*$/.test(cli.stdout()) && engine.held.length > 0, 'the JSON report and a held removal', 90_000)
    await teardownPending(cli)
    const report = JSON.parse(cli.stdout()) as { tests: Array<{ name: string; status: string }> }
    expect(report.tests.map(t => [t.name, t.status])).toEqual([['trio', 'pass']])
    await releaseAndExit(cli, 0)
  })

  it('clnrm dev reports the test\'s result (NDJSON) while its containers are still being removed', async () => {
    await writeFile(join(dir, 'clnrm.toml'), 'tests = ["tests/**/*.clnrm.toml"]\n')
    await mkdir(join(dir, 'tests'))
    await writeFile(join(dir, 'tests/trio.clnrm.toml'), trio('trio'))
    const cli = spawnHeld(['dev', '--reporter', 'ndjson'])
    await cli.until(/"type":"test".*"name":"trio".*"status":"pass"|"status":"pass".*"name":"trio"/, 90_000)
    await teardownPending(cli)
    cli.child.stdin.write('q\n')
    await releaseAndExit(cli, 0)
  })
})
