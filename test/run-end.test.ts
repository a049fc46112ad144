import { describe, expect, it } from 'vitest'
import type { ContainerPool } from '../core/index.ts'
import { IMAGE, run, specFrom, top } from './engine.ts'
import { usePool } from './pool-fixture.ts'

/**
 * The end of a run on a reused container (the shell's `__clnrm_end`): what a run leaves running
 * is dead before the next run starts, the service's own processes are not, and every run gets an
 * empty workdir, on the real engine and the real pool.
 */
describe('the end of a run in a reused container', () => {
  let pool: ContainerPool
  let dir: string
  usePool(made => ({ pool, dir } = made))

  it('kills what test A left running (its step\'s group, a setsid daemon, a double fork) before B runs, and spares a process the service started after A began', async () => {
    // The service starts a process of its own once /tmp/go exists: after the shell's handshake, so
    // the end of A's run meets it for the first time, without A's token in its environment.
    const service = `[services.box]\nimage = "${IMAGE}"\ncommand = ["sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.05; done; n=1001; sleep $n & exec sleep 1002"]\n`
    const a = specFrom(dir, 'end-a', `[meta]\nname = "a"\n${service}[[steps]]\nrun = "sleep 301 & setsid sleep 302 > /dev/null 2>&1 & (sleep 303 &); setsid sh -c '(sleep 304 &)' ; touch /tmp/go; while ! ps -o args | grep -q '^sleep 1001'; do sleep 0.05; done; echo a"\nexpected_output_regex = '^a\\s*$'\n`)
    const b = specFrom(dir, 'end-b', `[meta]\nname = "b"\n${service}[[steps]]\nrun = "ps -o args"\nexpected_output_regex = "(?m)^sleep 1001$"\nexpected_output_regex_not = "sleep 30[1-4]"\n`)
    const first = await run(pool, a)
    expect(first.status, JSON.stringify(first.steps)).toBe('pass')
    const second = await run(pool, b)
    expect(second.timings.reused.box).toBe(true)
    expect(second.status, second.steps[0]!.stdout).toBe('pass')
    // B's own process list is the judge; the engine's view agrees once B has ended.
    const lease = await pool.acquire(b)
    const id = lease.services.box!.containerId
    await lease.release()
    expect(top(id)).not.toMatch(/sleep 30[1-4]/)
    expect(top(id)).toMatch(/\d+\s+sleep 1001\b/)
  })

  it('never shows A\'s leftover output in B\'s, though the leftover writes until it is killed', async () => {
    const service = `[services.box]\nimage = "${IMAGE}"\nenv = { UNIQUE = "chatty" }\n`
    const a = specFrom(dir, 'chatty-a', `[meta]\nname = "chatty a"\n${service}[[steps]]\nrun = "(while :; do echo A-LEFTOVER; echo A-LEFTOVER >&2; sleep 0.01; done) & setsid sh -c 'while :; do echo A-DAEMON; sleep 0.01; done' & sleep 0.1; echo a"\n`)
    const b = specFrom(dir, 'chatty-b', `[meta]\nname = "chatty b"\n${service}[[steps]]\nrun = "sleep 0.3; echo b"\nexpected_output_regex = '^b\\s*$'\n[[steps]]\nrun = "sleep 0.1; echo b2"\nexpected_output_regex = '^b2\\s*$'\n`)
    expect((await run(pool, a)).status).toBe('pass')
    const result = await run(pool, b)
    expect(result.timings.reused.box).toBe(true)
    expect(result.steps.map(s => [s.status, s.stdout, s.stderr])).toEqual([['pass', 'b\n', ''], ['pass', 'b2\n', '']])
  })

  it('gives every run an empty workdir: what a run left in it (files, dot files, a directory, the directory swapped for a symlink) is gone', async () => {
    const service = `[services.box]\nimage = "${IMAGE}"\nenv = { UNIQUE = "workdirs" }\n`
    const step = (name: string, script: string): ReturnType<typeof specFrom> => specFrom(dir, name, `[meta]\nname = "${name}"\n${service}[[steps]]\nrun = "echo \\"$(pwd -P) [$(ls -A)]\\"; ${script}"\n`)
    const results = []
    results.push(await run(pool, step('writes', 'echo x > .hidden; mkdir sub; echo y > sub/z')))
    results.push(await run(pool, step('after-writes', 'true')))
    // A run that swaps its workdir for a symlink to an (empty) directory elsewhere.
    results.push(await run(pool, step('swaps', 'mkdir -p /tmp/elsewhere && d=$(pwd) && cd / && rm -rf \\"$d\\" && ln -s /tmp/elsewhere \\"$d\\"')))
    results.push(await run(pool, step('after-swap', 'test ! -L \\"$(pwd -L)\\" && test -d /tmp/elsewhere')))
    expect(results.map(r => r.status), JSON.stringify(results.map(r => r.steps[0]))).toEqual(['pass', 'pass', 'pass', 'pass'])
    expect(results.slice(1).map(r => r.timings.reused.box)).toEqual([true, true, true])
    const seen = results.map(r => /^(\S+) \[(.*)\]$/.exec(r.steps[0]!.stdout.trim())!.slice(1))
    // Every run starts in an empty, real directory under /tmp (not the symlink's target).
    expect(seen.map(([, listing]) => listing)).toEqual(['', '', '', ''])
    expect(seen.every(([path]) => path!.startsWith('/tmp/clnrm-run-'))).toBe(true)
  })
})
