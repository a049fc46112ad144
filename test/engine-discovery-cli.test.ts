import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bin, spawnCli } from './cli-process.ts'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'

// `clnrm run` finds the engine where users configure it, without testcontainers on the way: each
// case points clnrm (only) at a socket of this test's, a proxy to the real engine that counts
// connections, so a pass proves the run went through that configuration and not the default socket.
const real = process.env.DOCKER_HOST?.startsWith('unix://') ? process.env.DOCKER_HOST.slice('unix://'.length) : '/var/run/docker.sock'

describe('engine discovery, spawned', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let proxy: Server
  let socket: string
  let connections = 0
  const open = new Set<Socket>()

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir())
    socket = join(dir, 'engine.sock')
    proxy = createServer((client) => {
      connections++
      const upstream = createConnection(real)
      for (const s of [client, upstream]) {
        open.add(s)
        s.on('error', () => {
          client.destroy()
          upstream.destroy()
        })
        s.on('close', () => open.delete(s))
      }
      client.pipe(upstream).pipe(client)
    })
    await new Promise<void>(done => proxy.listen(socket, done))
    mkdirSync(join(dir, 'project'))
    writeFileSync(join(dir, 'project', 'hello.clnrm.toml'), `[meta]\nname = "hello"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "echo"\nrun = "echo hi"\nexpected_output_regex = "^hi\\n$"\n`)
  })
  afterAll(async () => {
    for (const s of open) s.destroy()
    await new Promise(done => proxy.close(done))
    await cleanup()
  })

  /** Runs the project's test with `env`; expects a pass through the proxy and nothing left behind. */
  async function runThroughProxy(env: Record<string, string>): Promise<void> {
    const before = connections
    const run = spawnCli(['run', '.'], join(dir, 'project'), { env })
    const exit = await run.exited
    expect(exit.code, run.output()).toBe(0)
    expect(exit.ms).toBeLessThan(30_000)
    expect(run.stdout()).toMatch(/Tests: 1 passed/)
    expect(connections - before, 'connections through the configured socket').toBeGreaterThan(0)
    expect(clnrmContainers(run.pid)).toEqual([])
  }

  it('DOCKER_HOST pointing at the real socket: clnrm run passes', async () => {
    const run = spawnCli(['run', '.'], join(dir, 'project'), { env: { DOCKER_HOST: `unix://${real}` } })
    const exit = await run.exited
    expect(exit.code, run.output()).toBe(0)
    expect(run.stdout()).toMatch(/Tests: 1 passed/)
    expect(clnrmContainers(run.pid)).toEqual([])
  })

  it('DOCKER_HOST pointing at another socket: clnrm run goes through it and passes', async () => {
    await runThroughProxy({ DOCKER_HOST: `unix://${socket}` })
  })

  it('docker.host in ~/.testcontainers.properties: clnrm run goes through it and passes; doctor names the key and the file', async () => {
    const home = join(dir, 'home-properties')
    mkdirSync(home)
    writeFileSync(join(home, '.testcontainers.properties'), `# as testcontainers users write it\ndocker.host=unix://${socket}\n`)
    await runThroughProxy({ HOME: home, DOCKER_HOST: '' })
    const doctor = spawnCli(['doctor'], join(dir, 'project'), { env: { HOME: home, DOCKER_HOST: '' } })
    expect((await doctor.exited).code, doctor.output()).toBe(0)
    expect(doctor.stdout()).toContain(`found    unix://${socket} (docker.host in ${join(home, '.testcontainers.properties')})`)
    expect(clnrmContainers(doctor.pid)).toEqual([])
  })

  it('the docker CLI\'s current context (~/.docker/config.json and its context store): clnrm run goes through it and passes', async () => {
    const home = join(dir, 'home-context')
    const meta = join(home, '.docker', 'contexts', 'meta', createHash('sha256').update('proxied').digest('hex'))
    mkdirSync(meta, { recursive: true })
    writeFileSync(join(home, '.docker', 'config.json'), JSON.stringify({ auths: {}, currentContext: 'proxied' }))
    writeFileSync(join(meta, 'meta.json'), JSON.stringify({ Name: 'proxied', Metadata: {}, Endpoints: { docker: { Host: `unix://${socket}`, SkipTLSVerify: false } } }))
    await runThroughProxy({ HOME: home, DOCKER_HOST: '' })
  })

  it('clnrm run does not load testcontainers when the engine answers where it is configured (its import costs more than a warm run)', async () => {
    const hooks = join(dir, 'hooks.mjs')
    writeFileSync(hooks, `export async function load(url, context, next) {\n  if (/node_modules\\/(testcontainers|properties-reader)\\//.test(url)) process.stderr.write('LOADED ' + url + '\\n')\n  return next(url, context)\n}\n`)
    writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module'\nregister(${JSON.stringify(`file://${hooks}`)})\n`)
    const home = join(dir, 'home-no-testcontainers')
    mkdirSync(home)
    writeFileSync(join(home, '.testcontainers.properties'), `docker.host=unix://${socket}\n`)
    const run = spawnCli([], join(dir, 'project'), { script: ['--import', join(dir, 'register.mjs'), bin, 'run', '.'], env: { HOME: home, DOCKER_HOST: '' } })
    expect((await run.exited).code, run.output()).toBe(0)
    expect(run.stderr()).not.toContain('LOADED')
    // The hook itself works: testcontainers' discovery, the last resort, loads it.
    const probe = spawnCli([], join(import.meta.dirname, '..'), { script: ['--import', join(dir, 'register.mjs'), '--input-type=module', '-e', 'await import("testcontainers")'] })
    await probe.exited
    expect(probe.stderr()).toContain('LOADED')
  })

  it('a docker.host that does not answer: clnrm falls back to the next place (as testcontainers does) and passes', async () => {
    const home = join(dir, 'home-stale')
    mkdirSync(home)
    writeFileSync(join(home, '.testcontainers.properties'), `docker.host=unix://${join(dir, 'nobody.sock')}\n`)
    const run = spawnCli(['run', '.'], join(dir, 'project'), { env: { HOME: home, DOCKER_HOST: '' } })
    const exit = await run.exited
    expect(exit.code, run.output()).toBe(0)
    expect(clnrmContainers(run.pid)).toEqual([])
  })
})
