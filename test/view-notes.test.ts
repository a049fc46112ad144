import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { clnrmContainers } from './engine.ts'
import { tempDir } from './helpers.ts'
import { node, runCli, startDev } from './runtimes/contract.ts'

// Free-text metadata is the one thing clnrm may ignore, and then every view must say so: a
// warning nobody sees is a silent pass.
const WITH_EXTRA_METADATA = `[meta]
name = "tagged"
owner = "team-a"

[services.box]
image = "clnrm-examples/busybox:1"

[[steps]]
name = "say hi"
run = "echo hi"
expected_output_regex = "hi"
`

describe('what every view must say: warnings of valid files, cut output (built CLI, real engine)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir())
    await writeFile(join(dir, 'clnrm.toml'), '')
    await writeFile(join(dir, 'tagged.clnrm.toml'), WITH_EXTRA_METADATA)
  })
  afterEach(() => cleanup())

  it('clnrm run prints the located warning and still runs the test', async () => {
    const result = await runCli(node, ['run', 'tagged.clnrm.toml'], dir)
    expect(result.code).toBe(0)
    expect(result.stderr).toMatch(/tagged\.clnrm\.toml:3:1 warning CLNRM_UNKNOWN_KEY/)
    expect(result.stdout).toMatch(/✓ tagged/)
  })

  it('clnrm dev shows it once, in human and NDJSON output, and again only when it changes', async () => {
    const dev = startDev(node, ['tagged.clnrm.toml'], dir)
    const warning = await dev.waitFor(line => line.type === 'warning' && line.code === 'CLNRM_UNKNOWN_KEY')
    expect(warning).toMatchObject({ line: 3, column: 1, severity: 'warning', testFile: join(dir, 'tagged.clnrm.toml') })
    await dev.waitFor(line => line.type === 'ready')
    // A save that keeps the warning reruns the test without repeating it; moving it does repeat it.
    const file = join(dir, 'tagged.clnrm.toml')
    await writeFile(file, (await readFile(file, 'utf8')).replace('echo hi', 'echo hi there'))
    await dev.waitFor(line => line.type === 'test' && line.reload === 2 && line.status === 'pass')
    await expect(dev.waitFor(line => line.type === 'warning' && line.reload === 2, 200)).rejects.toThrow(/timed out/)
    await writeFile(file, (await readFile(file, 'utf8')).replace('owner = "team-a"', 'description = "x"\nowner = "team-a"'))
    const moved = await dev.waitFor(line => line.type === 'warning' && line.line === 4)
    // Under load the watcher may report the first save twice (a third reload): the move's reload
    // is any later one, and across all of them the warning was shown exactly twice.
    expect(moved.reload).toBeGreaterThan(2)
    expect(dev.lines().filter(line => line.type === 'warning' && line.code === 'CLNRM_UNKNOWN_KEY')).toHaveLength(2)
    dev.send('q\n')
    expect(await dev.exited).toBe(0)
    expect(clnrmContainers(dev.pid)).toEqual([])
  })

  it('clnrm dev\'s human output shows the warning with its code frame and hint', async () => {
    const bin = resolve(import.meta.dirname, '../dist/cli/bin.mjs')
    const child = spawn(process.execPath, [bin, 'dev', 'tagged.clnrm.toml'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => void (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => void (out += d.toString()))
    const exited = new Promise<number | null>(r => child.once('exit', code => r(code)))
    await expect.poll(() => out, { timeout: 60_000 }).toMatch(/ready: 1 test/)
    child.stdin.write('q\n')
    expect(await exited).toBe(0)
    expect(out).toMatch(/! tagged\.clnrm\.toml 1 warning\n\s+tagged\.clnrm\.toml:3:1 warning CLNRM_UNKNOWN_KEY\n[^\n]*owner[\s\S]*> 3 \| owner = "team-a"/)
    expect(out).toMatch(/✓ tagged/)
  })

  it('clnrm dev\'s NDJSON notes output shown cut, also on a pass', async () => {
    await writeFile(join(dir, 'big.clnrm.toml'), '[meta]\nname = "big"\n[services.box]\nimage = "clnrm-examples/busybox:1"\n[[steps]]\nname = "long"\nrun = "yes x | head -c 1500000; echo done"\nexpected_output_regex = "done\\n$"\n')
    const dev = startDev(node, ['big.clnrm.toml'], dir)
    const result = await dev.waitFor(line => line.type === 'test')
    expect(result.status).toBe('pass')
    expect(result.truncated).toEqual(['step "long" stdout of 1.4 MiB shown as its first and last 512 KiB'])
    dev.send('q\n')
    expect(await dev.exited).toBe(0)
  })
})
