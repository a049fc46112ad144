import { execFileSync } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { createServer as createHttpServer } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnCli } from './cli-process.ts'
import { clnrmContainers, createRecordingPool, IMAGE, specFrom } from './engine.ts'
import { tempDir } from './helpers.ts'
import type { LocalRegistry, RegistryGate } from './registry.ts'
import { docker, pushImage, startGate, startRegistry } from './registry.ts'

/** The password of the registry that wants a login, and its bcrypt hash for htpasswd. */
const PASSWORD = 'clnrm-pull-test'
const PASSWORD_HASH = '$2b$10$nwXrT7CLRvxY9VCLl/zE5O5duj7exCwjCmQJYZyFz0DVSQ3NULUwe'

interface PullRecord {
  image: string
  registry: string
  startedAt: number
  ms: number
  layers: { done: number; total: number }
  bytes: { current: number; total: number }
  error?: { message: string; reason: string; hint: string }
}

describe('missing images are pulled in parallel at start, with progress (real registry on 127.0.0.1)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  const registries: LocalRegistry[] = []
  let host: string
  let lockedHost: string
  /** Every image reference this test made, removed in afterAll (never anyone else's). */
  const created: string[] = []
  const ref = (name: string): string => `${host}/clnrm-pull-${process.pid}/${name}:1`

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('clnrm-pull-'))
    // Two real registries on loopback (Debian's docker-registry) over one storage: an open one
    // (pushes, plain pulls) and one that wants a login. Docker pulls plain HTTP from 127.0.0.1.
    const start = async (name: string, extra: string): Promise<string> => {
      const registry = await startRegistry(dir, { name, storage: join(dir, 'registry-data'), extra, status: name === 'locked' ? 401 : 200 })
      registries.push(registry)
      return registry.host
    }
    // A fixed bcrypt hash (cost 10) of PASSWORD: the test needs no bcrypt tool.
    await writeFile(join(dir, 'htpasswd'), `clnrm:${PASSWORD_HASH}\n`)
    host = await start('open', '')
    lockedHost = await start('locked', `auth:\n  htpasswd:\n    realm: clnrm\n    path: ${join(dir, 'htpasswd')}\n`)

    // Two images with 8 MB layers of their own: built, pushed, then every local tag removed, so the
    // layers are gone from the engine and clnrm has to download them.
    for (const name of ['alpha', 'beta']) {
      created.push(ref(name))
      await pushImage(ref(name), join(dir, `build-${name}`), 8_000_000)
    }
    for (const name of ['alpha', 'beta']) expect(() => docker('image', 'inspect', ref(name))).toThrow()
  }, 120_000)

  afterAll(async () => {
    for (const registry of registries) registry.stop()
    for (const image of created) {
      try {
        docker('rmi', image)
      }
      catch {}
    }
    await cleanup?.()
  })

  it('pulls both images at once (-j 1), prints progress, runs both tests; the tests needing an image the registry lacks fail with image, registry, reason and hint, pulled once', async () => {
    const file = (name: string, image: string): Promise<void> =>
      writeFile(join(dir, `${name}.clnrm.toml`), `[meta]\nname = "${name}"\n[services.box]\nimage = "${image}"\n[[steps]]\nname = "has its layer"\nrun = "test -f /blob || test ${name} = plain"\n`)
    await file('alpha', ref('alpha'))
    await file('beta', ref('beta'))
    await file('ghost', ref('ghost'))
    await file('ghost-too', ref('ghost'))
    await file('plain', IMAGE)

    // -j 1: one test at a time, so the pulls overlap only if they start before any test waits on them.
    const cli = spawnCli(['run', '.', '-j', '1', '--reporter', 'default', '--reporter', 'json', '--output', 'json=report.json'], dir, { env: { GITHUB_ACTIONS: '' } })
    const exit = await cli.exited
    expect(exit.ms).toBeLessThan(90_000)
    expect(clnrmContainers(cli.pid)).toEqual([])
    expect(exit.code).toBe(1)

    const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as { tests: Array<{ name: string; status: string; error?: { code?: string; message: string; hint?: string } }>; pulls: PullRecord[] }
    const status = Object.fromEntries(report.tests.map(t => [t.name, t.status]))
    expect(status).toEqual({ 'alpha': 'pass', 'beta': 'pass', 'ghost': 'error', 'ghost-too': 'error', 'plain': 'pass' })

    // The local image is not pulled; the missing ones once each, the ghost too (two tests, one pull).
    const pulls = new Map(report.pulls.map(p => [p.image, p]))
    expect(report.pulls.map(p => p.image).sort()).toEqual([ref('alpha'), ref('beta'), ref('ghost')].sort())
    const alpha = pulls.get(ref('alpha'))!
    const beta = pulls.get(ref('beta'))!
    for (const pull of [alpha, beta]) {
      expect(pull.registry).toBe(host)
      expect(pull.error).toBeUndefined()
      expect(pull.layers.done).toBe(pull.layers.total)
      // The 8 MB layer really came over the wire.
      expect(pull.bytes.total).toBeGreaterThan(8_000_000)
      expect(pull.bytes.current).toBe(pull.bytes.total)
    }
    // The pull windows overlap: each started before the other ended.
    expect(alpha.startedAt).toBeLessThan(beta.startedAt + beta.ms)
    expect(beta.startedAt).toBeLessThan(alpha.startedAt + alpha.ms)

    // Tests that need the missing image fail with the same clear error; the others pass.
    for (const name of ['ghost', 'ghost-too']) {
      const test = report.tests.find(t => t.name === name)!
      expect(test.error?.code).toBe('CLNRM_IMAGE_MISSING')
      expect(test.error?.message).toContain(`Image "${ref('ghost')}" is not on this machine and could not be pulled from ${host}: `)
      expect(test.error?.message).toMatch(/manifest unknown|not found/)
      expect(test.error?.hint).toBe(`${host} has no image ${ref('ghost')}: check the name and tag in the test file, push it there (docker push ${ref('ghost')}), or build it locally (docker build -t ${ref('ghost')} …).`)
    }
    expect(pulls.get(ref('ghost'))!.error?.reason).toMatch(/manifest unknown|not found/)

    // Progress on stderr (not a TTY: plain lines): start, layers with bytes, end, per image.
    const err = cli.stderr()
    for (const image of [ref('alpha'), ref('beta')]) {
      expect(err).toContain(`pulling ${image} from ${host}\n`)
      expect(err).toMatch(new RegExp(`pulling ${image.replace(/[.:/]/g, '\\$&')}: \\d/\\d layers, [\\d.]+ MB/[\\d.]+ MB\\n`))
      expect(err).toMatch(new RegExp(`pulled ${image.replace(/[.:/]/g, '\\$&')} in \\S+ \\(\\d/\\d layers, 8\\.\\d MB/8\\.\\d MB\\)\\n`))
    }
    expect(err).toContain(`could not pull ${ref('ghost')} from ${host}`)
    // Both pulls started before either ended.
    const firstEnd = Math.min(err.indexOf(`pulled ${ref('alpha')}`), err.indexOf(`pulled ${ref('beta')}`))
    expect(err.indexOf(`pulling ${ref('alpha')} from`)).toBeLessThan(firstEnd)
    expect(err.indexOf(`pulling ${ref('beta')} from`)).toBeLessThan(firstEnd)
    // The human report names the error and its hint on the failing tests.
    expect(cli.stdout()).toMatch(/✗ ghost ghost\.clnrm\.toml[^\n]*\n {4}error Image "[^"]+ghost:1" is not on this machine and could not be pulled from 127\.0\.0\.1:\d+: [^\n]+\n {4}hint: /)
    expect(cli.stdout()).toMatch(/Tests: 3 passed, 2 errored \(5\)/)
  }, 120_000)

  it('clnrm dev\'s prewarm (the pool, in process) pulls the missing images of every test at once too, even one job at a time', async () => {
    // The previous test pulled them (when it ran): remove them again (only the references this test created).
    for (const name of ['alpha', 'beta']) {
      try {
        docker('rmi', ref(name))
      }
      catch {}
    }
    for (const name of ['alpha', 'beta']) expect(() => docker('image', 'inspect', ref(name))).toThrow()
    const specs = ['alpha', 'beta'].map(name => specFrom(join(dir, 'prewarm'), name, `[meta]\nname = "${name}"\n[services.box]\nimage = "${ref(name)}"\n[[steps]]\nrun = "test -f /blob"\n`))
    const { pool, events } = await createRecordingPool()
    try {
      await pool.prewarm(specs, { jobs: 1 })
      const pulls = events.filter(e => e.type.startsWith('pool:image-pull-'))
      // Both started before either ended.
      expect(pulls.slice(0, 2).map(e => e.type)).toEqual(['pool:image-pull-start', 'pool:image-pull-start'])
      expect(pulls.filter(e => e.type === 'pool:image-pull-done').map(e => (e as { image: string }).image).sort()).toEqual([ref('alpha'), ref('beta')])
      expect(events.some(e => e.type === 'pool:image-pull' && e.bytes.total > 8_000_000)).toBe(true)
      expect(pool.pulls.every(p => !p.error)).toBe(true)
    }
    finally {
      await pool.close()
    }
    expect(clnrmContainers(process.pid)).toEqual([])
  }, 60_000)

  it('pulls from a registry that wants a login with the credentials of the Docker config (found through testcontainers); without them, the login hint', async () => {
    const image = `${lockedHost}/clnrm-pull-${process.pid}/alpha:1`
    created.push(image)
    execFileSync('mkdir', ['-p', join(dir, 'locked')])
    await writeFile(join(dir, 'locked', 'locked.clnrm.toml'), `[meta]\nname = "locked"\n[services.box]\nimage = "${image}"\n[[steps]]\nrun = "test -f /blob"\n`)
    const config = join(dir, 'docker-config')
    execFileSync('mkdir', ['-p', config])
    await writeFile(join(config, 'config.json'), JSON.stringify({ auths: {} }))
    const run = async (): Promise<{ code: number | null; stdout: string }> => {
      const cli = spawnCli(['run', join(dir, 'locked')], dir, { env: { GITHUB_ACTIONS: '', DOCKER_CONFIG: config } })
      const exit = await cli.exited
      expect(exit.ms).toBeLessThan(60_000)
      expect(clnrmContainers(cli.pid)).toEqual([])
      return { code: exit.code, stdout: cli.stdout() }
    }
    const anonymous = await run()
    expect(anonymous.code).toBe(1)
    expect(anonymous.stdout).toMatch(/could not be pulled from 127\.0\.0\.1:\d+: .*(no basic auth credentials|unauthorized)/)
    expect(anonymous.stdout).toContain(`hint: ${lockedHost} refused the pull: log in (docker login ${lockedHost})`)

    await writeFile(join(config, 'config.json'), JSON.stringify({ auths: { [lockedHost]: { auth: Buffer.from(`clnrm:${PASSWORD}`).toString('base64') } } }))
    const authorised = await run()
    expect(authorised.stdout).toMatch(/✓ locked /)
    expect(authorised.code).toBe(0)
  }, 90_000)

  it('a long pull in a log (stderr not a terminal) says how far it is every interval while a layer is held, stops at its end, and the run passes', async () => {
    // A layer of its own, so nothing of it is on the engine; pulled through a gate that holds it
    // after its first megabyte, for as long as the test wants.
    created.push(ref('gamma'))
    await pushImage(ref('gamma'), join(dir, 'build-gamma'), 8_000_000)
    let gate: RegistryGate | undefined
    try {
      gate = await startGate(host, 1_000_000)
      const gated = `${gate.host}/clnrm-pull-${process.pid}/gamma:1`
      created.push(gated)
      execFileSync('mkdir', ['-p', join(dir, 'long')])
      await writeFile(join(dir, 'long', 'gamma.clnrm.toml'), `[meta]\nname = "gamma"\n[services.box]\nimage = "${gated}"\n[[steps]]\nname = "has its layer"\nrun = "test -f /blob"\n`)
      // The interval a user gets is 10 s; a test cannot wait that long for each line.
      const cli = spawnCli(['run', join(dir, 'long')], dir, { env: { GITHUB_ACTIONS: '', CLNRM_PROGRESS_INTERVAL_MS: '400' } })
      const escaped = gated.replace(/[.:/]/g, '\\$&')
      const beat = new RegExp(`pulling ${escaped}: (\\d/\\d layers, [\\d.]+ (?:B|kB|MB)/8\\.\\d MB|[A-Za-z ]+), (\\S+(?: \\S+)?) so far\\n`, 'g')
      const beats = (): RegExpMatchArray[] => [...cli.stderr().matchAll(beat)]
      // Two beats with the held layer's bytes while it is held: nothing else is said meanwhile.
      await expect.poll(() => beats().filter(m => /\/8\.\d MB$/.test(m[1]!)).length, { timeout: 60_000, interval: 50, message: 'two beats with bytes' }).toBeGreaterThanOrEqual(2).catch((error: Error) => {
        throw new Error(`${error.message}\nstderr:\n${cli.stderr()}`)
      })
      expect(cli.stderr()).not.toContain(`pulled ${gated}`)
      expect(cli.child.exitCode).toBeNull()
      // Plain lines: no escapes (NO_COLOR, and no live redraw off a terminal).
      expect(cli.stderr()).not.toContain('\x1B')
      gate.allow(Infinity)
      const exit = await cli.exited
      expect(exit.ms).toBeLessThan(90_000)
      expect(clnrmContainers(cli.pid)).toEqual([])
      expect(cli.stdout()).toMatch(/✓ gamma /)
      expect(exit.code).toBe(0)
      const err = cli.stderr()
      expect(err).toContain(`pulling ${gated} from ${gate.host}\n`)
      // The beats end with the pull: none after its `pulled` line, though the run went on after it.
      const pulled = err.indexOf(`pulled ${gated} in `)
      expect(pulled).toBeGreaterThan(-1)
      const all = beats()
      expect(all.length).toBeGreaterThanOrEqual(2)
      expect(all.every(m => m.index! < pulled)).toBe(true)
    }
    finally {
      gate?.allow(Infinity)
      gate?.close()
    }
  }, 120_000)

  it('Ctrl-C during a pull that never ends (a registry that answers /v2/ and then nothing) exits 130 at once, leaving nothing', async () => {
    // A tarpit: the engine sees a registry, then waits for a manifest that never comes.
    const tarpit = createHttpServer((req, res) => {
      if (req.url === '/v2/') res.writeHead(200, { 'Content-Type': 'application/json', 'Docker-Distribution-API-Version': 'registry/2.0' }).end('{}')
    })
    await new Promise<void>(done => tarpit.listen(0, '127.0.0.1', done))
    const slow = `127.0.0.1:${(tarpit.address() as { port: number }).port}/clnrm-pull-${process.pid}/slow:1`
    try {
      execFileSync('mkdir', ['-p', join(dir, 'slow')])
      await writeFile(join(dir, 'slow', 'slow.clnrm.toml'), `[meta]\nname = "slow"\n[services.box]\nimage = "${slow}"\n[[steps]]\nrun = "true"\n`)
      const cli = spawnCli(['run', join(dir, 'slow')], dir, { env: { GITHUB_ACTIONS: '' } })
      await cli.until(new RegExp(`pulling ${slow.replace(/[.:/]/g, '\\$&')} from`), 30_000)
      // The engine is waiting on the tarpit now.
      await new Promise(r => setTimeout(r, 500))
      cli.child.kill('SIGINT')
      expect(await cli.timeToExit()).toBeLessThan(10_000)
      expect((await cli.exited).code).toBe(130)
      expect(clnrmContainers(cli.pid)).toEqual([])
    }
    finally {
      tarpit.closeAllConnections()
      tarpit.close()
    }
  }, 60_000)
})
