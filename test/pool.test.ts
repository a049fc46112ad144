import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ContainerPool } from '../core/index.ts'
import type { Lease, PoolEvent, TestSpec } from '../core/index.ts'
import { IMAGE, run, specFrom } from './engine.ts'
import { tempDir } from './helpers.ts'
import { usePool } from './pool-fixture.ts'

const docker = (...args: string[]): string => execFileSync('docker', args, { encoding: 'utf8' })
const sessionContainers = (pool: ContainerPool): string[] => docker('ps', '-aq', '--filter', `label=clnrm.session=${pool.sessionId}`).split('\n').filter(Boolean)
const sessionNetworks = (pool: ContainerPool): string[] => docker('network', 'ls', '-q', '--filter', `label=clnrm.session=${pool.sessionId}`).split('\n').filter(Boolean)
const box = (name: string, extra = '', step = 'run = "true"'): string => `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\n${extra}\n[[steps]]\n${step}\n`

/** Polls `docker ps` for a pool's containers until `stop` settles; returns the most seen at once. */
async function mostAlive(pool: ContainerPool, stop: Promise<unknown>): Promise<number> {
  let most = 0
  let done = false
  void stop.finally(() => (done = true)).catch(() => {})
  while (!done) {
    most = Math.max(most, sessionContainers(pool).length)
    await new Promise(r => setTimeout(r, 50))
  }
  return most
}

describe('the container pool on the real engine', () => {
  let pool: ContainerPool
  let events: PoolEvent[]
  let dir: string
  usePool(made => ({ pool, events, dir } = made), {
    afterClose: (pool) => {
      expect(sessionContainers(pool)).toEqual([])
      expect(sessionNetworks(pool)).toEqual([])
    },
  })

  it('publishes ports on 127.0.0.1 only, as the engine sees them', async () => {
    const spec = specFrom(dir, 'loopback', box('loopback', 'ports = [8080, 9090]\nenv = { P = "loopback" }'))
    const lease = await pool.acquire(spec)
    try {
      const [info] = JSON.parse(docker('inspect', lease.services.box!.containerId)) as Array<{
        HostConfig: { PortBindings: Record<string, Array<{ HostIp: string }>> }
        NetworkSettings: { Ports: Record<string, Array<{ HostIp: string; HostPort: string }>> }
      }>
      const requested = Object.values(info!.HostConfig.PortBindings).flat()
      const bound = Object.values(info!.NetworkSettings.Ports).flat()
      expect(Object.keys(info!.NetworkSettings.Ports).sort()).toEqual(['8080/tcp', '9090/tcp'])
      // Neither 0.0.0.0 nor [::]: nothing but loopback, for every port.
      expect(requested.map(b => b.HostIp)).toEqual(['127.0.0.1', '127.0.0.1'])
      expect(bound.map(b => b.HostIp)).toEqual(['127.0.0.1', '127.0.0.1'])
      expect(bound.map(b => Number(b.HostPort)).sort()).toEqual([lease.services.box!.hostPorts[8080], lease.services.box!.hostPorts[9090]].sort())
      expect(Number(lease.env.SERVICE_BOX_PORT_8080)).toBe(lease.services.box!.hostPorts[8080])
    }
    finally {
      await lease.release()
    }
  })

  it('gives a failing reset the same verdict on every run, fresh containers included', async () => {
    const failing = specFrom(dir, 'reset-fails', box('reset fails', 'reset = "echo cannot reset >&2; exit 3"'))
    const verdicts = []
    for (let i = 0; i < 4; i++) verdicts.push(await run(pool, failing))
    expect(verdicts.map(r => [r.status, r.error?.code])).toEqual(Array.from({ length: 4 }, () => ['error', 'CLNRM_RESET_FAILED']))
    expect(verdicts[0]!.error!.message).toMatch(/reset of service "box" exited 3: cannot reset/)
    // reset ran on the fresh container too: its marker is there for the very first step.
    const marking = specFrom(dir, 'reset-marks', box('reset marks', 'reset = "touch /tmp/reset-ran"', 'run = "test -e /tmp/reset-ran && rm /tmp/reset-ran"'))
    const runs = [await run(pool, marking), await run(pool, marking)]
    expect(runs.map(r => [r.status, r.timings.reused.box])).toEqual([['pass', false], ['pass', true]])
  })

  it('names a service whose main process exits at start, with its exit code, output and a hint', async () => {
    const exits = specFrom(dir, 'exits', box('exits', 'command = ["sh", "-c", "echo about to leave; echo bye >&2; exit 3"]'))
    const result = await run(pool, exits)
    expect(result.status).toBe('error')
    expect(result.error).toMatchObject({ code: 'CLNRM_SERVICE_EXITED', message: expect.stringMatching(/Service "box" stopped with exit code 3/) })
    expect(result.error!.message).toMatch(/about to leave/)
    expect(result.error!.message).toMatch(/bye/)
    const done = await run(pool, specFrom(dir, 'true', box('true', 'command = ["true"]')))
    expect(done.error).toMatchObject({ code: 'CLNRM_SERVICE_EXITED', message: expect.stringMatching(/exit code 0/), hint: expect.stringMatching(/sleep", "infinity"/) })
    const missing = await run(pool, specFrom(dir, 'missing-binary', box('missing binary', 'command = ["no-such-binary-here"]')))
    // The container's init (tini) reports the missing binary and exits 127.
    expect(missing.error).toMatchObject({ code: 'CLNRM_SERVICE_EXITED', message: expect.stringMatching(/exit code 127[\s\S]*no-such-binary-here/), hint: expect.stringMatching(/`command`/) })
    expect(sessionContainers(pool).length).toBe(pool.stats().live)
  })

  it('names a service that crashes mid-run instead of a broken stream', async () => {
    const crash = specFrom(dir, 'crash', box('crash', 'command = ["sh", "-c", "sleep 1; echo crashing now >&2; exit 4"]', 'run = "sleep 10"'))
    const started = performance.now()
    const result = await run(pool, crash)
    expect(performance.now() - started).toBeLessThan(8000)
    expect(result.status).toBe('error')
    expect(result.error).toMatchObject({ code: 'CLNRM_SERVICE_EXITED', message: expect.stringMatching(/Service "box" stopped with exit code 4[\s\S]*crashing now/) })
  })

  it('wraps an engine refusal with the service and the key', async () => {
    const spec = specFrom(dir, 'refused', box('refused'))
    writeFileSync(join(dir, 'a-file'), 'not a directory')
    // A file mounted over a directory: only the engine can tell.
    const bad: TestSpec = { ...spec, services: { box: { ...spec.services.box!, volumes: [{ hostPath: join(dir, 'a-file'), containerPath: '/etc', readOnly: true }] } } }
    const result = await run(pool, bad)
    expect(result.error).toMatchObject({ code: 'CLNRM_ENGINE_REFUSED', message: expect.stringMatching(/service "box" \(check its `volumes`\)/), hint: expect.stringMatching(/volumes/) })
    expect(result.error!.message).not.toMatch(/HTTP code/)
    // Refused at create: a mount on the container's root.
    const root: TestSpec = { ...spec, services: { box: { ...spec.services.box!, volumes: [{ hostPath: dir, containerPath: '/', readOnly: true }] } } }
    const atCreate = await run(pool, root)
    expect(atCreate.error).toMatchObject({ code: 'CLNRM_ENGINE_REFUSED', message: expect.stringMatching(/refused to create service "box" \(check its `volumes`\): .*destination/) })
    expect(sessionContainers(pool).length).toBe(pool.stats().live)
  })

  it('aborts a readiness wait at once and removes the half-started container', async () => {
    for (const [name, ready] of [
      ['never-healthy', 'health_check = { cmd = "false", interval = "100ms", timeout = "60s" }'],
      ['never-logs', 'wait_for = { log = "never printed", timeout = "60s" }'],
    ]) {
      const spec = specFrom(dir, name!, box(name!, ready))
      const before = pool.stats().live
      const controller = new AbortController()
      const acquiring = pool.acquire(spec, { signal: controller.signal })
      acquiring.catch(() => {})
      await new Promise(r => setTimeout(r, 1500))
      expect(pool.stats()).toMatchObject({ starting: 1, live: before + 1 })
      const aborted = performance.now()
      controller.abort()
      await expect(acquiring).rejects.toMatchObject({ code: 'CLNRM_ABORTED' })
      expect(performance.now() - aborted).toBeLessThan(3000)
      expect(pool.stats().live).toBe(before)
      expect(sessionContainers(pool).length).toBe(pool.stats().live)
    }
  })

  it('gives up on a health check slower than its time: the check is killed, not awaited', async () => {
    const spec = specFrom(dir, 'slow-check', box('slow check', 'health_check = { cmd = "sleep 600", interval = "100ms", timeout = "1s" }'))
    const started = performance.now()
    const result = await run(pool, spec)
    expect(performance.now() - started).toBeLessThan(8000)
    expect(result.error).toMatchObject({ code: 'CLNRM_SERVICE_NOT_READY', message: expect.stringMatching(/Service "box" was not healthy within 1000ms \(the check timed out\)/) })
    expect(sessionContainers(pool).length).toBe(pool.stats().live)
  })

  it('removes a busy container of a deleted test when its run releases it, and its network with it', async () => {
    const spec = specFrom(dir, 'retire', `[meta]\nname = "retire"\n[services.a]\nimage = "${IMAGE}"\n[services.b]\nimage = "${IMAGE}"\n[[steps]]\nservice = "a"\nrun = "true"\n`)
    const lease = await pool.acquire(spec)
    const ids = Object.values(lease.services).map(s => s.containerId)
    const networks = pool.stats().networks
    expect(networks).toBeGreaterThan(0)
    await pool.retire(spec.file)
    // Still busy: the run goes on in its containers.
    expect(docker('ps', '-q', '--no-trunc').split('\n')).toEqual(expect.arrayContaining(ids))
    await lease.release()
    const left = docker('ps', '-aq', '--no-trunc').split('\n')
    for (const id of ids) expect(left).not.toContain(id)
    expect(pool.stats().networks).toBe(networks - 1)
    expect(events).toContainEqual({ type: 'pool:container-removed', service: 'a', reason: 'retired' })
  })
})

describe('the container limit', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeAll(async () => ({ dir, cleanup } = await tempDir()))
  afterAll(() => cleanup())

  it('never has more than maxContainers alive, counting starting and busy ones, and every test gets its turn', async () => {
    const small = await ContainerPool.create({ maxContainers: 3 })
    try {
      // Six definitions, two runs each, all at once: without a limit, six containers would start.
      const specs = Array.from({ length: 6 }, (_, i) => specFrom(dir, `limit-${i}`, box(`limit ${i}`, `env = { LIMIT = "${i}" }`, 'run = "sleep 0.3"')))
      const runs = Promise.all([...specs, ...specs].map(spec => run(small, spec)))
      const most = await mostAlive(small, runs)
      expect((await runs).map(r => r.status)).toEqual(Array.from({ length: 12 }, () => 'pass'))
      expect(most).toBeGreaterThan(0)
      expect(most).toBeLessThanOrEqual(3)
    }
    finally {
      await small.close()
    }
    expect(sessionContainers(small)).toEqual([])
  })

  it('reuses one definition\'s containers rather than starting one per test', async () => {
    const small = await ContainerPool.create({ maxContainers: 8 })
    try {
      const specs = Array.from({ length: 12 }, (_, i) => specFrom(dir, `shared-${i}`, box(`shared ${i}`, 'env = { SHARED = "yes" }', 'run = "sleep 0.2"')))
      await small.prewarm(specs, { jobs: 4 })
      expect(small.stats().started).toBe(1)
      // Four at a time, as `clnrm run -j 4` does.
      const queue = [...specs]
      const worker = async (): Promise<void> => {
        for (let spec = queue.shift(); spec; spec = queue.shift()) expect((await run(small, spec)).status).toBe('pass')
      }
      await Promise.all([worker(), worker(), worker(), worker()])
      expect(small.stats().started).toBeLessThanOrEqual(4)
      expect(small.stats().reused).toBeGreaterThanOrEqual(8)
    }
    finally {
      await small.close()
    }
  })

  it('runs multi-service tests side by side without deadlock, and a test larger than the limit alone', async () => {
    const small = await ContainerPool.create({ maxContainers: 3 })
    try {
      const pair = (i: number): TestSpec => specFrom(dir, `pair-${i}`, `[meta]\nname = "pair ${i}"\n[services.a]\nimage = "${IMAGE}"\n[services.b]\nimage = "${IMAGE}"\n[[steps]]\nservice = "b"\nrun = "ping -c1 -W2 a >/dev/null"\n`)
      const big = specFrom(dir, 'big', `[meta]\nname = "big"\n${['a', 'b', 'c', 'd'].map(id => `[services.${id}]\nimage = "${IMAGE}"\n`).join('')}[[steps]]\nservice = "a"\nrun = "ping -c1 -W2 d >/dev/null"\n`)
      const runs = Promise.all([pair(1), pair(2), big, pair(3), pair(1)].map(spec => run(small, spec)))
      const results = await Promise.race([runs, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('deadlock: runs did not finish in 60 s')), 60_000))])
      expect(results.map(r => [r.name, r.status])).toEqual([['pair 1', 'pass'], ['pair 2', 'pass'], ['big', 'pass'], ['pair 3', 'pass'], ['pair 1', 'pass']])
      // Networks go with their last container: never more than the containers that use them.
      expect(small.stats().networks).toBeLessThanOrEqual(small.stats().live)
      expect(sessionNetworks(small).length).toBe(small.stats().networks)
    }
    finally {
      await small.close()
    }
    expect(sessionNetworks(small)).toEqual([])
  })

  it('lets an aborted wait for a slot go at once', async () => {
    const one = await ContainerPool.create({ maxContainers: 1 })
    let held: Lease | undefined
    try {
      held = await one.acquire(specFrom(dir, 'holder', box('holder', 'env = { HOLD = "1" }')))
      const controller = new AbortController()
      const waiting = one.acquire(specFrom(dir, 'waiter', box('waiter', 'env = { HOLD = "2" }')), { signal: controller.signal })
      await new Promise(r => setTimeout(r, 200))
      expect(one.stats()).toMatchObject({ live: 1, waiting: 1 })
      controller.abort()
      await expect(waiting).rejects.toMatchObject({ code: 'CLNRM_ABORTED' })
      expect(one.stats().waiting).toBe(0)
    }
    finally {
      await held?.release()
      await one.close()
    }
  })
})
