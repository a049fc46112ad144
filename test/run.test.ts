import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { ContainerPool } from '../core/index.ts'
import type { PoolEvent } from '../core/index.ts'
import { clnrmContainers, createRecordingPool, IMAGE, run, specFrom } from './engine.ts'
import { usePool } from './pool-fixture.ts'

describe('running steps in real containers', () => {
  let pool: ContainerPool
  let events: PoolEvent[]
  let dir: string
  usePool(made => ({ pool, events, dir } = made))

  it('passes when every expectation holds, inside the container', async () => {
    const spec = specFrom(dir, 'pass', `
[meta]
name = "all expectations"
[services.box]
image = "${IMAGE}"
env = { FROM_SERVICE = "service-env" }
[[steps]]
name = "every kind"
run = "echo hello from $(hostname); echo warn >&2; echo $FROM_SERVICE $FROM_STEP; exit 4"
env = { FROM_STEP = "step-env" }
expected_exit_code = 4
expected_output_regex = ["(?m)^hello from [0-9a-f]{12}$", "service-env step-env"]
expected_output_regex_not = "error"
expected_stderr_regex = "^warn\\n$"
[[steps]]
name = "argv without a shell"
command = ["echo", "a  b", "$HOME"]
expected_output_regex = '^a  b \\$HOME\\n$'
`)
    const result = await run(pool, spec)
    expect(result.steps.map(s => [s.name, s.status, s.exitCode])).toEqual([['every kind', 'pass', 4], ['argv without a shell', 'pass', 0]])
    expect(result.status).toBe('pass')
    // A container's hostname is its short id: the step ran inside one of this process's containers.
    const printed = /^hello from (\w+)$/m.exec(result.steps[0]!.stdout)![1]
    expect(clnrmContainers(process.pid)).toContain(printed)
  })

  it.each([
    ['exit code', 'run = "exit 2"', 'expected_exit_code = 0', 'exited with 2'],
    ['stdout regex', 'run = "echo nope"', 'expected_output_regex = "^yes$"', 'stdout does not match'],
    ['stdout regex not', 'run = "echo error: boom"', 'expected_output_regex_not = "error"', 'stdout matches'],
    ['stderr regex', 'run = "echo fine >&2"', 'expected_stderr_regex = "panic"', 'stderr does not match'],
  ])('fails on a broken %s expectation, naming it', async (kind, command, expectation, message) => {
    const spec = specFrom(dir, `fail-${kind.replace(/ /g, '-')}`, `[meta]\nname = "${kind}"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "check"\n${command}\n${expectation}\n[[steps]]\nname = "after"\nrun = "true"\n`)
    const result = await run(pool, spec)
    expect(result.status).toBe('fail')
    expect(result.steps[0]!.failure).toMatchObject({ expectation, message: expect.stringContaining(message) })
    expect(result.steps[1]!.status).toBe('skipped')
  })

  it('keeps going after a failure with continue_on_failure', async () => {
    const spec = specFrom(dir, 'continue', `[meta]\nname = "continue"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "fails"\nrun = "exit 1"\ncontinue_on_failure = true\n[[steps]]\nname = "still runs"\nrun = "echo ran"\nexpected_output_regex = "ran"\n`)
    const result = await run(pool, spec)
    expect(result.steps.map(s => s.status)).toEqual(['fail', 'pass'])
    expect(result.status).toBe('fail')
  })

  it('kills a step at its timeout, and the container stays usable', async () => {
    const spec = specFrom(dir, 'timeout', `[meta]\nname = "timeout"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "slow"\nrun = "echo started; sleep 30 & sleep 30"\ntimeout = "300ms"\n`)
    const result = await run(pool, spec)
    expect(result.steps[0]).toMatchObject({ status: 'fail', timedOut: true, failure: { expectation: 'timeout = 300ms' } })
    expect(result.steps[0]!.durationMs).toBeLessThan(10_000)
    const next = specFrom(dir, 'after-timeout', `[meta]\nname = "after"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "ps"\nrun = "ps -o stat,comm | grep -v '^Z' | grep -c sleep || true"\n`)
    const after = await run(pool, next)
    expect(after.status).toBe('pass')
    expect(after.timings.reused.box).toBe(true)
    // The killed process group is gone: no live sleep is left in the reused container.
    expect(after.steps[0]!.stdout.trim()).toBe('0')
  })

  it('enforces the test-level timeout', async () => {
    const spec = specFrom(dir, 'budget', `[meta]\nname = "budget"\ntimeout = "400ms"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "slow"\nrun = "sleep 5"\n`)
    const result = await run(pool, spec)
    expect(result.steps[0]!.failure?.expectation).toBe('[meta] timeout = 400ms')
  })

  it('reaches one service from another by its id on a private network', async () => {
    const spec = specFrom(dir, 'network', `
[meta]
name = "network"
[services.web]
image = "${IMAGE}"
command = ["httpd", "-f", "-p", "8080", "-h", "/etc"]
ports = [8080]
wait_for = { port = 8080 }
[services.client]
image = "${IMAGE}"
[[steps]]
name = "fetch"
service = "client"
run = "wget -qO- http://web:8080/passwd && echo port=$SERVICE_WEB_PORT_8080"
expected_output_regex = ["^root:", '(?m)^port=\\d+$']
`)
    const result = await run(pool, spec)
    expect(result.steps[0]!.failure).toBeUndefined()
    expect(result.status).toBe('pass')
  })

  it('publishes ports on 127.0.0.1 for the host', async () => {
    const spec = specFrom(dir, 'ports', `[meta]\nname = "ports"\n[services.web]\nimage = "${IMAGE}"\ncommand = ["httpd", "-f", "-p", "8080", "-h", "/etc"]\nports = [8080]\nwait_for = 8080\n[[steps]]\nrun = "true"\n`)
    const lease = await pool.acquire(spec)
    try {
      const port = lease.env.SERVICE_WEB_PORT_8080
      expect(Number(port)).toBeGreaterThan(0)
      const response = await fetch(`http://127.0.0.1:${port}/group`)
      expect(await response.text()).toMatch(/^root:/)
    }
    finally {
      await lease.release()
    }
  })

  it('mounts volumes relative to the test file, read-only when asked', async () => {
    execFileSync('sh', ['-c', `mkdir -p ${dir}/data && echo volume-content > ${dir}/data/file.txt`])
    const spec = specFrom(dir, 'volume', `[meta]\nname = "volume"\n[services.box]\nimage = "${IMAGE}"\nvolumes = [{ host_path = "data", container_path = "/data", read_only = true }]\n[[steps]]\nname = "read"\nrun = "cat /data/file.txt"\nexpected_output_regex = "(?m)^volume-content$"\n[[steps]]\nname = "read-only"\nrun = "touch /data/x"\nexpected_exit_code = 1\n`)
    const result = await run(pool, spec)
    expect(result.steps.map(s => s.status)).toEqual(['pass', 'pass'])
  })

  it('waits for a log line and for a health check before the first step', async () => {
    const spec = specFrom(dir, 'ready', `
[meta]
name = "ready"
[services.logger]
image = "${IMAGE}"
command = ["sh", "-c", "sleep 0.3; touch /tmp/up; echo server ready; sleep 3600"]
wait_for = "server ready"
[services.healthy]
image = "${IMAGE}"
command = ["sh", "-c", "sleep 0.3; touch /tmp/healthy; sleep 3600"]
health_check = { cmd = "test -e /tmp/healthy", interval = "50ms", timeout = "10s" }
[[steps]]
service = "logger"
run = "test -e /tmp/up"
[[steps]]
service = "healthy"
run = "test -e /tmp/healthy"
`)
    expect((await run(pool, spec)).status).toBe('pass')
  })

  it('starts the services of a test in parallel', async () => {
    const spec = specFrom(dir, 'parallel', `[meta]\nname = "parallel"\n${['a', 'b', 'c'].map(id => `[services.${id}]\nimage = "${IMAGE}"\nenv = { ID = "${id}-parallel" }\n`).join('')}[[steps]]\nservice = "a"\nrun = "true"\n`)
    const before = events.length
    expect((await run(pool, spec)).status).toBe('pass')
    const order = events.slice(before).filter(e => e.type === 'pool:container-starting' || e.type === 'pool:container-ready').map(e => e.type)
    // All three were starting before the first was ready.
    expect(order.slice(0, 3)).toEqual(['pool:container-starting', 'pool:container-starting', 'pool:container-starting'])
  })

  it('reuses containers for the next run, and is faster', async () => {
    const spec = specFrom(dir, 'reuse', `[meta]\nname = "reuse"\n[services.box]\nimage = "${IMAGE}"\nenv = { UNIQUE = "reuse-test" }\n[[steps]]\nrun = "echo $UNIQUE"\n`)
    const first = await run(pool, spec)
    const second = await run(pool, spec)
    expect(first.timings.reused.box).toBe(false)
    expect(second.timings.reused.box).toBe(true)
    expect(second.timings.acquireMs).toBeLessThan(first.timings.acquireMs)
  })

  it('keeps reuse hermetic: a file written in one run is absent in the next', async () => {
    const spec = specFrom(dir, 'hermetic', `[meta]\nname = "hermetic"\n[services.box]\nimage = "${IMAGE}"\nenv = { UNIQUE = "hermetic-test" }\n[[steps]]\nname = "fresh"\nrun = "pwd; ls -A; test ! -e marker && touch marker"\n`)
    const first = await run(pool, spec)
    const second = await run(pool, spec)
    expect([first.status, second.status]).toEqual(['pass', 'pass'])
    expect(second.timings.reused.box).toBe(true)
    // The same path, emptied: the second run's listing is empty (no marker), as the first's was.
    expect(second.steps[0]!.stdout).toMatch(/^\/tmp\/clnrm-run-\S+\n$/)
    expect(second.steps[0]!.stdout).toBe(first.steps[0]!.stdout)
  })

  it('runs reset before handing a reused container over', async () => {
    const spec = specFrom(dir, 'reset', `[meta]\nname = "reset"\n[services.db]\nimage = "${IMAGE}"\nreset = "rm -f /state"\n[[steps]]\nrun = "test ! -e /state && touch /state"\n`)
    expect((await run(pool, spec)).status).toBe('pass')
    const second = await run(pool, spec)
    expect(second.timings.reused.db).toBe(true)
    expect(second.status).toBe('pass')
  })

  it('replaces a container killed between runs, and reports it', async () => {
    const spec = specFrom(dir, 'killed', `[meta]\nname = "killed"\n[services.box]\nimage = "${IMAGE}"\nenv = { UNIQUE = "killed-test" }\n[[steps]]\nrun = "true"\n`)
    expect((await run(pool, spec)).status).toBe('pass')
    const ids = execFileSync('docker', ['ps', '-q', '--filter', `label=clnrm.pid=${process.pid}`, '--filter', 'label=clnrm.service=box'], { encoding: 'utf8' }).split('\n').filter(Boolean)
    const inspect = JSON.parse(execFileSync('docker', ['inspect', ...ids], { encoding: 'utf8' })) as Array<{ Id: string; Config: { Env: string[] } }>
    const target = inspect.find(c => c.Config.Env.includes('UNIQUE=killed-test'))!
    execFileSync('docker', ['kill', target.Id])
    await new Promise(r => setTimeout(r, 300))
    const again = await run(pool, spec)
    expect(again.status).toBe('pass')
    expect(again.timings.reused.box).toBe(false)
    expect(events).toContainEqual(expect.objectContaining({ type: 'pool:container-replaced', service: 'box' }))
  })

  it('names a missing image and says how to get it', async () => {
    const spec = specFrom(dir, 'missing', `[meta]\nname = "missing"\n[services.box]\nimage = "clnrm-test/does-not-exist:never"\n[[steps]]\nrun = "true"\n`)
    const result = await run(pool, spec)
    expect(result.status).toBe('error')
    expect(result.error).toMatchObject({ code: 'CLNRM_IMAGE_MISSING', message: expect.stringContaining('clnrm-test/does-not-exist:never') })
    expect(result.error!.hint).toMatch(/docker (build|pull)/)
  })

  it('leaves nothing behind when closed', async () => {
    const spec = specFrom(dir, 'close', `[meta]\nname = "close"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nrun = "true"\n`)
    const { pool: own } = await createRecordingPool()
    await run(own, spec)
    expect(clnrmContainers(process.pid).length).toBeGreaterThan(0)
    await own.close()
    // Only this file's other pool remains; the closed one removed its containers.
    const remaining = execFileSync('docker', ['ps', '-aq', '--filter', `label=clnrm.session=${own.sessionId}`], { encoding: 'utf8' }).trim()
    expect(remaining).toBe('')
  })

  it('keeps at most maxContainers live, evicting idle ones, and stops idle containers after idleTimeoutMs', async () => {
    const seen: PoolEvent[] = []
    const small = await ContainerPool.create({ maxContainers: 1, idleTimeoutMs: 300, onEvent: e => seen.push(e) })
    try {
      const a = specFrom(dir, 'limit-a', `[meta]\nname = "a"\n[services.box]\nimage = "${IMAGE}"\nenv = { LIMIT = "a" }\n[[steps]]\nrun = "true"\n`)
      const b = specFrom(dir, 'limit-b', `[meta]\nname = "b"\n[services.box]\nimage = "${IMAGE}"\nenv = { LIMIT = "b" }\n[[steps]]\nrun = "true"\n`)
      await (await small.acquire(a)).release()
      await (await small.acquire(b)).release()
      expect(seen).toContainEqual({ type: 'pool:container-removed', service: 'box', reason: 'evicted' })
      expect(small.stats().live).toBe(1)
      // The idle timer fires after 300 ms; the engine's removal takes what it takes on a busy machine.
      await expect.poll(() => seen, { timeout: 10_000 }).toContainEqual({ type: 'pool:container-removed', service: 'box', reason: 'idle' })
      expect(small.stats().live).toBe(0)
    }
    finally {
      await small.close()
    }
  })
})

