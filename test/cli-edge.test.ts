import { execFileSync, spawn } from 'node:child_process'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { spawnCli, waitUntil } from './cli-process.ts'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir } from './helpers.ts'

const cliIndex = resolve(import.meta.dirname, '../dist/cli/index.mjs')
const bin = resolve(import.meta.dirname, '../dist/cli/bin.mjs')
const LOOP = '[meta]\nname = "loop"\n<% for (let i = 0; i < 10; i--) {} %>\n'
const valid = (name: string): string => `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "ok"\nrun = "true"\n`

describe('the CLI edge: exit codes, the exit guard, render deadlines (built CLI)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('exits even when something keeps the event loop alive after the command: says what, and keeps the exit code', async () => {
    // A program embedding runMain leaks an interval; the guard must still end the process.
    await writeFile(join(dir, 'ok.clnrm.toml'), valid('ok'))
    await writeFile(join(dir, 'bad.clnrm.toml'), '[meta]\nname = 1\n')
    const script = (args: string[]): string[] => ['--input-type=module', '-e', `setInterval(() => {}, 1000); const { runMain } = await import(${JSON.stringify(cliIndex)}); await runMain(${JSON.stringify(args)})`]
    const ok = spawnCli([], dir, { script: script(['validate', 'ok.clnrm.toml']) })
    const exit = await ok.exited
    expect(exit.code).toBe(0)
    expect(exit.ms).toBeLessThan(20_000)
    expect(clnrmContainers(ok.pid)).toEqual([])
    // Node lists the stdio pipes too; the leaked interval is the Timeout.
    expect(ok.stderr()).toMatch(/clnrm: still running 2s after finishing \(kept alive by [^)]*\bTimeout\b[^)]*\); exiting with code 0\. DEBUG=clnrm shows more\./)
    const bad = spawnCli([], dir, { script: script(['validate', 'bad.clnrm.toml']), env: { DEBUG: 'clnrm' } })
    expect((await bad.exited).code).toBe(1)
    expect(bad.stderr()).toMatch(/clnrm: active resources: [^\n]*\bTimeout\b/)
  })

  it('a command that ends normally exits without the guard\'s note', async () => {
    await writeFile(join(dir, 'ok.clnrm.toml'), valid('ok'))
    const cli = spawnCli(['run', '.'], dir)
    const exit = await cli.exited
    expect(exit.code).toBe(0)
    expect(cli.stderr()).not.toMatch(/still running/)
    expect(clnrmContainers(cli.pid)).toEqual([])
  })

  it('an internal error exits 70 with a one-line cause; DEBUG=clnrm adds the stack', async () => {
    await writeFile(join(dir, 'afile'), '')
    const plain = spawnCli(['init', 'afile/sub'], dir)
    const exit = await plain.exited
    expect(exit.code).toBe(70)
    expect(exit.ms).toBeLessThan(20_000)
    expect(plain.stderr()).toMatch(/^clnrm: internal error: ENOTDIR: not a directory, mkdir '[^']*afile\/sub'\nRun again with DEBUG=clnrm for the stack, and please report it\.\n$/)
    const debug = spawnCli(['init', 'afile/sub'], dir, { env: { DEBUG: 'clnrm' } })
    expect((await debug.exited).code).toBe(70)
    expect(debug.stderr()).toMatch(/\n\s+at /)
  })

  it('documents the exit codes in --help of the CLI and of each command', async () => {
    for (const args of [['--help'], ['run', '--help'], ['dev', '--help'], ['validate', '--help']]) {
      const help = spawnCli(args, dir)
      expect((await help.exited).code).toBe(0)
      expect(help.stdout()).toMatch(/Exit codes:\n {2}0 {4}every test passed[^\n]*\n {2}1 {4}a test failed, or a test file is invalid\n {2}2 {4}usage error, invalid clnrm\.toml, or no Docker engine\n {2}70 {3}internal error/)
    }
  })

  it('a template that loops forever is a located CLNRM_TEMPLATE_TIMEOUT in validate, render and run, within the deadline', async () => {
    await mkdir(join(dir, 'tests'))
    await writeFile(join(dir, 'tests/loop.clnrm.toml.eta'), LOOP)
    await writeFile(join(dir, 'tests/_spin.eta'), '# a partial\n\n<% while (true) {} %>\n')
    await writeFile(join(dir, 'tests/nested.clnrm.toml.eta'), '[meta]\nname = "nested"\n<%~ include("./_spin") %>\n')
    const validate = spawnCli(['validate', 'tests'], dir)
    const exit = await validate.exited
    expect(exit.code).toBe(1)
    expect(exit.ms).toBeLessThan(30_000)
    expect(validate.stdout()).toMatch(/tests\/loop\.clnrm\.toml\.eta:3:1 error CLNRM_TEMPLATE_TIMEOUT\n {4}Template did not finish rendering within 2s: is a loop endless\?/)
    // In a partial, the partial's line is named.
    expect(validate.stdout()).toMatch(/tests\/_spin\.eta:3:1 error CLNRM_TEMPLATE_TIMEOUT/)

    const render = spawnCli(['render', 'tests/loop.clnrm.toml.eta', '--render-timeout', '300ms'], dir)
    expect((await render.exited).code).toBe(1)
    expect(render.stderr()).toMatch(/loop\.clnrm\.toml\.eta:3:1 error CLNRM_TEMPLATE_TIMEOUT\n {2}Template did not finish rendering within 0\.3s/)
    expect((await spawnCli(['render', 'tests/loop.clnrm.toml.eta', '--render-timeout', 'soon'], dir).exited).code).toBe(2)

    await writeFile(join(dir, 'clnrm.toml'), 'render_timeout = "250ms"\n')
    await writeFile(join(dir, 'tests/ok.clnrm.toml'), valid('ok'))
    const run = spawnCli(['run', 'tests'], dir)
    expect((await run.exited).code).toBe(1)
    expect(run.stderr()).toMatch(/tests\/loop\.clnrm\.toml\.eta:3:1 error CLNRM_TEMPLATE_TIMEOUT\n {2}Template did not finish rendering within 0\.25s/)
    expect(run.stdout()).toMatch(/✓ ok/)
    expect(run.stdout()).toMatch(/Tests: 1 passed, 2 invalid \(3\)/)
    expect(clnrmContainers(run.pid)).toEqual([])
  })
})

describe('usage errors name the option as --help does and suggest what was meant (built CLI)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  const usage = async (args: string[]): Promise<string> => {
    const cli = spawnCli(args, dir)
    const exit = await cli.exited
    expect(exit.code).toBe(2)
    expect(exit.ms).toBeLessThan(20_000)
    expect(cli.stdout()).toBe('')
    return cli.stderr()
  }

  it('an unknown command suggests the closest one and points at clnrm --help; a far miss lists the commands', async () => {
    expect(await usage(['rnu'])).toBe('error Unknown command "rnu". Did you mean "run"?\nRun `clnrm --help` for usage.\n')
    expect(await usage(['vaildate', 'x'])).toMatch(/^error Unknown command "vaildate"\. Did you mean "validate"\?\n/)
    expect(await usage(['help', 'rnu'])).toBe('error Unknown command "rnu". Did you mean "run"?\nRun `clnrm --help` for usage.\n')
    const far = await usage(['xyzzy'])
    expect(far).toMatch(/^error Unknown command "xyzzy"\nhint: Commands: dev, run, validate,[^\n]*\nRun `clnrm --help` for usage\.\n$/)
    expect(far).not.toMatch(/Did you mean/)
  })

  it('an unknown option names the command and suggests the closest option; another command\'s option says whose it is', async () => {
    expect(await usage(['run', '--fail-fats'])).toBe('error Unknown option --fail-fats for "clnrm run". Did you mean --fail-fast?\nRun `clnrm run --help` for usage.\n')
    expect(await usage(['dev', '--debuonce', '50'])).toMatch(/^error Unknown option --debuonce for "clnrm dev"\. Did you mean --debounce\?\n/)
    expect(await usage(['run', '--no-colr'])).toMatch(/Did you mean --no-color\?/)
    // Not every unknown word is a typo of something.
    const far = await usage(['run', '--foo'])
    expect(far).toMatch(/^error Unknown option --foo for "clnrm run"\nhint: Options of clnrm run: -j\/--jobs, (?:[^\n]*, )?--fail-fast,/)
    expect(far).not.toMatch(/Did you mean/)
    expect(await usage(['validate', '--fail-fast'])).toMatch(/^error Unknown option --fail-fast for "clnrm validate"\nhint: --fail-fast is an option of clnrm run\.\n/)
    expect(await usage(['run', '-x'])).toMatch(/^error Unknown option -x for "clnrm run"\n/)
  })

  it('a missing value names the option as --help shows it (-o, --output <file>)', async () => {
    const help = spawnCli(['run', '--help'], dir)
    await help.exited
    expect(help.stdout()).toMatch(/-o, --output <file> /)
    for (const args of [['run', '-o'], ['run', '--output'], ['run', '-o', '--reporter', 'json']]) {
      expect(await usage(args)).toMatch(/^error Option -o, --output <file> needs a value\nhint: Write the json\/junit report to a file[^\n]*Give it as --output <file> or -o <file>\.\nRun `clnrm run --help` for usage\.\n$/)
    }
    expect(await usage(['dev', '-j'])).toMatch(/^error Option -j, --jobs <n> needs a value\n/)
  })
})

describe('clnrm init ends with the next commands for the package manager in use (built CLI)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  // The test runner itself may run under npm: the user agent is always set explicitly.
  const init = async (args: string[], agent = ''): Promise<string> => {
    const cli = spawnCli(['init', ...args], dir, { env: { npm_config_user_agent: agent } })
    expect((await cli.exited).code).toBe(0)
    return cli.stdout()
  }
  const next = (text: string): string => text.slice(text.indexOf('\nNext:\n'))

  it('npm by default: install, then npx clnrm validate, run and dev; no Vite lines without a Vite config', async () => {
    const out = await init([])
    expect(next(out)).toBe('\nNext:\n  npm install -D clnrm\n  npx clnrm validate\n  npx clnrm run\n  npx clnrm dev\n')
  })

  it('the lockfile names the manager, an installed clnrm skips the install line, a directory argument is passed on', async () => {
    await writeFile(join(dir, 'package.json'), '{ "devDependencies": { "clnrm": "^0.1.0" } }\n')
    await writeFile(join(dir, 'pnpm-lock.yaml'), 'lockfileVersion: 9.0\n')
    expect(next(await init(['e2e']))).toBe('\nNext:\n  pnpm exec clnrm validate e2e\n  pnpm exec clnrm run e2e\n  pnpm exec clnrm dev e2e\n')
    await writeFile(join(dir, 'yarn.lock'), '')
    await rm(join(dir, 'pnpm-lock.yaml'))
    expect(next(await init(['y']))).toMatch(/^\nNext:\n {2}yarn clnrm validate y\n/)
  })

  it('the tool that started clnrm wins over the lockfile (bunx, pnpm dlx)', async () => {
    await writeFile(join(dir, 'package-lock.json'), '{}\n')
    expect(next(await init(['b'], 'bun/1.2.0 npm/? node/v22.0.0 linux x64'))).toBe('\nNext:\n  bun add -d clnrm\n  bunx clnrm validate b\n  bunx clnrm run b\n  bunx clnrm dev b\n')
    expect(next(await init(['p'], 'pnpm/9.0.0 npm/? node/v20.19.0 linux x64'))).toMatch(/^\nNext:\n {2}pnpm add -D clnrm\n {2}pnpm exec clnrm validate p\n/)
  })

  it('under Deno: deno run -A npm:clnrm, and no install line', async () => {
    const deno = resolve(import.meta.dirname, '../node_modules/.bin/deno')
    const out = spawnCommand(deno, ['run', '-A', bin, 'init'], dir, { DENO_NO_UPDATE_CHECK: '1', npm_config_user_agent: '' })
    expect((await out.exited).code).toBe(0)
    expect(next(out.stdout())).toBe('\nNext:\n  deno run -A npm:clnrm validate\n  deno run -A npm:clnrm run\n  deno run -A npm:clnrm dev\n')
  })

  it('with a Vite config, the exact plugin lines (and the tests glob when the tests are not at the Vite root)', async () => {
    await writeFile(join(dir, 'package.json'), '{ "devDependencies": { "clnrm": "^0.1.0", "vite": "^8.0.0" } }\n')
    await writeFile(join(dir, 'vite.config.ts'), 'export default {}\n')
    const here = await init([])
    expect(here).toMatch(/\nIn vite\.config\.ts, add the plugin so `vite dev` runs the tests too:\n {2}import \{ clnrm \} from 'clnrm\/vite'\n {2}plugins: \[clnrm\(\)\]\n$/)
    const sub = await init(['e2e'])
    expect(sub).toContain(`  plugins: [clnrm({ tests: 'e2e/tests/**/*.clnrm.toml{,.eta}' })]\n`)
    // The lines are real: the export exists under that name in the built plugin.
    const plugin = await import(resolve(import.meta.dirname, '../dist/plugin-vite/index.mjs')) as Record<string, unknown>
    expect(typeof plugin.clnrm).toBe('function')
  })
})

/** Spawns any command with plain output, collecting stdout and stderr. */
function spawnCommand(command: string, args: string[], cwd: string, env: Record<string, string> = {}): { stdout: () => string; exited: Promise<{ code: number | null; ms: number }> } {
  const started = performance.now()
  const child = spawn(command, args, { cwd, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => void (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => void (out += d.toString()))
  return { stdout: () => out, exited: new Promise(done => child.once('exit', code => done({ code, ms: performance.now() - started }))) }
}

describe('progress while services start (built CLI, real engine)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir())
    // Two tests with two services each, one of them with a long name: more than 40 columns.
    // Their `box` definitions differ, so each test starts services of its own (the pool would
    // otherwise let the second test reuse the first one's group and print no start for it).
    for (const name of ['alpha', 'beta']) {
      await writeFile(join(dir, `${name}.clnrm.toml`), `[meta]\nname = "${name}"\n[services.box]\nimage = "${IMAGE}"\nenv = { TEST = "${name}" }\n[services.database-with-a-long-name]\nimage = "${IMAGE}"\ncommand = ["sleep", "60"]\n[[steps]]\nname = "ok"\nservice = "box"\nrun = "true"\n`)
    }
  })
  afterEach(() => cleanup())

  it('in a 40-column terminal: one live line per test with its services, none wider than the terminal', async () => {
    // A real pseudo-terminal (util-linux script), 40 columns wide; `exec` keeps the shell's pid for the CLI.
    const pty = spawnCommand('script', ['-qfec', `stty cols 40 rows 20; echo "pid=$$"; exec ${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} run . -j 2`, '/dev/null'], dir)
    const exit = await pty.exited
    expect(exit.code).toBe(0)
    expect(exit.ms).toBeLessThan(60_000)
    const raw = pty.stdout()
    const pid = Number(/pid=(\d+)/.exec(raw)?.[1])
    // The screen's lines: split where the terminal moves to a new line, escapes dropped.
    const visible = raw.replace(/\x1B\[[0-9;]*[A-Za-z]/g, '').split(/\r\n|\r|\n/)
    const live = visible.filter(line => line.startsWith('starting '))
    expect(live.length).toBeGreaterThan(0)
    for (const line of visible) expect([...line].length, line).toBeLessThanOrEqual(40)
    // One line per test, naming it and its services, cut with an ellipsis rather than wrapped.
    expect(live.every(line => /^starting (alpha|beta)\.clnrm\.toml: /.test(line))).toBe(true)
    expect(live.some(line => line.endsWith('…'))).toBe(true)
    expect(raw).toMatch(/\x1B\[\d+A/)
    expect(visible.join('\n')).toMatch(/✓ alpha[\s\S]*Tests: 2 passed|✓ beta[\s\S]*Tests: 2 passed/)
    expect(clnrmContainers(pid)).toEqual([])
  })

  // Progress goes to stderr: whether stderr is a terminal decides live lines and their colours,
  // whatever stdout is. Both cases through a real pseudo-terminal (util-linux script) with one
  // stream redirected to a file by the shell; no NO_COLOR, so colours are on where a terminal is.
  const inPty = async (redirect: string): Promise<{ screen: string; file: string; pid: number }> => {
    const pty = spawnCommand('script', ['-qfec', `stty cols 80 rows 20; echo "pid=$$"; exec ${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} run . -j 2 ${redirect} redirected.txt`, '/dev/null'], dir, { NO_COLOR: '', FORCE_COLOR: '', CI: '', GITHUB_ACTIONS: '' })
    const exit = await pty.exited
    expect(exit.code).toBe(0)
    expect(exit.ms).toBeLessThan(60_000)
    const screen = pty.stdout()
    return { screen, file: await readFile(join(dir, 'redirected.txt'), 'utf8'), pid: Number(/pid=(\d+)/.exec(screen)?.[1]) }
  }

  it('stdout to a file, stderr a terminal (clnrm run > out.txt): live lines on the terminal, the report in the file with no escapes', async () => {
    const { screen, file, pid } = await inPty('>')
    // Live lines, redrawn in place and dim, on the terminal (stderr).
    expect(screen).toMatch(/\x1B\[\d+A/)
    expect(screen).toMatch(/\x1B\[2mstarting (alpha|beta)\.clnrm\.toml: /)
    // No plain log lines there: they are for logs.
    expect(screen).not.toMatch(/^starting box \(/m)
    // The report went to the file, without a colour or a cursor move.
    expect(file).toMatch(/Tests: 2 passed/)
    expect(file).not.toMatch(/\x1B/)
    expect(clnrmContainers(pid)).toEqual([])
  })

  it('stdout a terminal, stderr to a file (clnrm run 2> log): plain progress lines in the log with no escapes, the report on the terminal', async () => {
    const { screen, file, pid } = await inPty('2>')
    for (const test of ['alpha', 'beta']) expect(file).toContain(`starting box (${IMAGE}) for ${test}.clnrm.toml\n`)
    expect(file).toMatch(/^ready box for alpha\.clnrm\.toml in [\d.]+m?s$/m)
    expect(file).not.toMatch(/\x1B/)
    // The terminal has the report (in colour) and no live lines.
    expect(screen).toMatch(/Tests: [^\n]*2 passed/)
    expect(screen).toMatch(/\x1B\[3\dm/)
    expect(screen).not.toMatch(/\x1B\[\d+A/)
    expect(screen).not.toContain('starting ')
    expect(clnrmContainers(pid)).toEqual([])
  })

  it('in a log (no terminal): a plain line per service, and each ready line names its test', async () => {
    const cli = spawnCli(['run', '.', '-j', '2'], dir, { env: { COLUMNS: '40' } })
    expect((await cli.exited).code).toBe(0)
    const err = cli.stderr()
    for (const test of ['alpha', 'beta']) {
      for (const service of ['box', 'database-with-a-long-name']) {
        expect(err).toContain(`starting ${service} (${IMAGE}) for ${test}.clnrm.toml\n`)
        expect(err).toMatch(new RegExp(`^ready ${service} for ${test}\\.clnrm\\.toml in [\\d.]+m?s$`, 'm'))
      }
    }
    // Logs are not cut: a file viewer scrolls.
    expect(err).not.toContain('…')
    expect(err).not.toMatch(/\x1B/)
    expect(clnrmContainers(cli.pid)).toEqual([])
  })
})

describe('Ctrl-C during a running step (built CLI, real engine)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir())
    // The step leaves a mark in its container, then sleeps: SIGINT is sent only once the mark is there.
    await writeFile(join(dir, 'nap.clnrm.toml'), `[meta]\nname = "nap"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "nap"\nrun = "touch /tmp/running && sleep 60"\n`)
  })
  afterEach(() => cleanup())

  const stepRunning = (pid: number): boolean => clnrmContainers(pid).some((id) => {
    try {
      execFileSync('docker', ['exec', id, 'test', '-e', '/tmp/running'], { stdio: 'ignore' })
      return true
    }
    catch {
      return false
    }
  })

  it.each([['run', ['run', '.']], ['dev', ['dev', '.']]] as const)('clnrm %s: exits 130 within 15 s of SIGINT, its containers removed', async (_name, args) => {
    const cli = spawnCli([...args], dir)
    await waitUntil(() => stepRunning(cli.pid), 'the step to run', 60_000)
    cli.child.kill('SIGINT')
    expect(await cli.timeToExit()).toBeLessThan(15_000)
    const exit = await cli.exited
    expect(exit.code).toBe(130)
    expect(cli.stderr()).toMatch(/stopping: removing containers \(Ctrl-C again exits at once\)/)
    expect(cli.stderr()).not.toMatch(/forced exit|internal error/)
    expect(clnrmContainers(cli.pid)).toEqual([])
  })
})
