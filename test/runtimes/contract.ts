import { execFile, execFileSync, spawn } from 'node:child_process'
import { cp, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixture, tempDir } from '../helpers.ts'

const exec = promisify(execFile)
const root = resolve(import.meta.dirname, '../..')

/** How to start the CLI under one runtime: a command and the arguments before clnrm's own. */
export interface Runtime {
  name: string
  command: string
  prefix: string[]
  /** Extra environment for the process. */
  env?: Record<string, string>
}

const bin = (name: string): string => join(root, 'node_modules/.bin', name)

export const node: Runtime = { name: 'node', command: process.execPath, prefix: [join(root, 'dist/cli/bin.mjs')] }
export const bun: Runtime = { name: 'bun', command: bin('bun'), prefix: [join(root, 'dist/cli/bin.mjs')] }
export const bunSource: Runtime = { name: 'bun (source)', command: bin('bun'), prefix: [join(root, 'cli/bin.ts')] }
export const deno: Runtime = { name: 'deno', command: bin('deno'), prefix: ['run', '-A', join(root, 'dist/cli/bin.mjs')] }

/** Runs the CLI and returns its exit code and output, without throwing on a non-zero exit. */
export async function runCli(runtime: Runtime, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(runtime.command, [...runtime.prefix, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', ...runtime.env }, timeout: 120_000 })
    return { code: 0, stdout, stderr }
  }
  catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string }
    if (typeof e.code !== 'number') throw error
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

/** The same CLI behaviour, asserted under every runtime. */
export function cliContract(runtime: Runtime): void {
  describe(`clnrm CLI on ${runtime.name}`, () => {
    let dir: string
    let cleanup: () => Promise<void>
    beforeAll(async () => {
      ({ dir, cleanup } = await tempDir())
      await cp(fixture('valid'), join(dir, 'valid'), { recursive: true })
      await cp(fixture('invalid'), join(dir, 'invalid'), { recursive: true })
      await cp(fixture('clnrm.toml'), join(dir, 'clnrm.toml'))
    })
    afterAll(() => cleanup())

    it('prints help and its version', async () => {
      const help = await runCli(runtime, ['--help'], dir)
      expect(help.code).toBe(0)
      expect(help.stdout).toMatch(/Usage: clnrm <command>/)
      const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'))
      expect((await runCli(runtime, ['--version'], dir)).stdout.trim()).toBe(version)
    })

    it('validates valid files (exit 0) and invalid ones (exit 1, with locations)', async () => {
      expect((await runCli(runtime, ['validate', 'valid'], dir)).code).toBe(0)
      const bad = await runCli(runtime, ['validate', 'invalid/step-unknown-service.clnrm.toml', '--reporter', 'json'], dir)
      expect(bad.code).toBe(1)
      expect(JSON.parse(bad.stdout).files[0].diagnostics).toContainEqual(expect.objectContaining({ code: 'CLNRM_UNKNOWN_SERVICE', line: 8, column: 11 }))
    })

    it('renders templates with --var and prints dry-run plans', async () => {
      const render = await runCli(runtime, ['render', 'valid/templated.clnrm.toml.eta', '--var', 'suffix=cli'], dir)
      expect(render.code).toBe(0)
      expect(render.stdout).toContain('name = "templated cli"')
      const plan = await runCli(runtime, ['dry-run', 'valid/modern.clnrm.toml', '--reporter', 'json'], dir)
      expect(plan.code).toBe(0)
      expect(JSON.parse(plan.stdout).plans[0].services.map((s: { id: string }) => s.id)).toEqual(['web', 'client'])
    })

    it('exits 2 on usage errors', async () => {
      const result = await runCli(runtime, ['validate', '--bogus'], dir)
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(/bogus/)
    })
  })
}

/** A running `clnrm dev --reporter ndjson`, read line by line. */
export interface DevProcess {
  pid: number
  /** Resolves with the first NDJSON line matching, from any line seen so far or later. */
  waitFor: (match: (line: Record<string, any>) => boolean, timeoutMs?: number) => Promise<Record<string, any>>
  send: (text: string) => void
  /** Every NDJSON line so far, in order. */
  lines: () => ReadonlyArray<Record<string, any>>
  /** What the process wrote to stderr so far. */
  stderr: () => string
  exited: Promise<number | null>
  kill: (signal: NodeJS.Signals) => void
}

const running = new Set<ReturnType<typeof spawn>>()
afterAll(() => {
  for (const child of running) child.kill('SIGKILL')
})

/** Starts `clnrm dev --reporter ndjson` under a runtime. */
export function startDev(runtime: Runtime, args: string[], cwd: string): DevProcess {
  const child = spawn(runtime.command, [...runtime.prefix, 'dev', '--reporter', 'ndjson', ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', ...runtime.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const lines: Array<Record<string, any>> = []
  const waiters = new Set<() => void>()
  let buffer = ''
  let stderr = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString()
    const parts = buffer.split('\n')
    buffer = parts.pop()!
    for (const part of parts) if (part.trim()) lines.push(JSON.parse(part))
    for (const wake of waiters) wake()
  })
  child.stderr!.on('data', (chunk: Buffer) => void (stderr += chunk.toString()))
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  // A failed test must not leave a dev process running (and spinning on a closed pipe).
  running.add(child)
  void exited.then(() => running.delete(child))
  return {
    pid: child.pid!,
    waitFor: (match, timeoutMs = 90_000) => new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = lines.find(match)
        if (found) {
          waiters.delete(wake)
          clearTimeout(timer)
          resolve(found)
        }
        return Boolean(found)
      }
      const wake = (): void => void check()
      const timer = setTimeout(() => {
        waiters.delete(wake)
        reject(new Error(`timed out; lines: ${JSON.stringify(lines).slice(-2000)}; stderr: ${stderr.slice(-2000)}`))
      }, timeoutMs)
      if (!check()) waiters.add(wake)
    }),
    send: text => void child.stdin!.write(text),
    lines: () => lines,
    stderr: () => stderr,
    exited,
    kill: signal => void child.kill(signal),
  }
}

/** A running `clnrm dev` with human output, as a person sees it in a terminal (no colour). */
export interface HumanDevProcess {
  pid: number
  output: () => string
  /** Waits for `pattern` in what was printed after offset `from`; the deadline only proves it does not hang. */
  until: (pattern: RegExp, from?: number, timeoutMs?: number) => Promise<string>
  /** Sends `q` and resolves with the exit code. */
  quit: () => Promise<number | null>
}

/** Starts `clnrm dev` with the human reporter under a runtime. */
export function startHumanDev(runtime: Runtime, args: string[], cwd: string): HumanDevProcess {
  const child = spawn(runtime.command, [...runtime.prefix, 'dev', ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', ...runtime.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => void (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => void (out += d.toString()))
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  running.add(child)
  void exited.then(() => running.delete(child))
  return {
    pid: child.pid!,
    output: () => out,
    async until(pattern, from = 0, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs
      while (!pattern.test(out.slice(from))) {
        if (Date.now() > deadline) throw new Error(`no ${pattern} in:\n${out.slice(from)}`)
        await new Promise(r => setTimeout(r, 50))
      }
      return out.slice(from)
    },
    quit: () => {
      child.stdin!.write('q\n')
      return exited
    },
  }
}

/** `clnrm dev` on a runtime: save, see the rerun, quit, nothing left behind. */
export function devContract(runtime: Runtime): void {
  describe(`clnrm dev on ${runtime.name}`, () => {
    it('reruns a saved test and removes its containers on quit', async () => {
      const { dir, cleanup } = await tempDir()
      try {
        expect((await runCli(runtime, ['init'], dir)).code).toBe(0)
        const dev = startDev(runtime, [], dir)
        await dev.waitFor(line => line.type === 'ready')
        const file = join(dir, 'tests/hello.clnrm.toml')
        await writeFile(file, (await readFile(file, 'utf8')).replace('"^hello from "', '"^goodbye"'))
        const failed = await dev.waitFor(line => line.type === 'test' && line.reload > 1 && line.name === 'hello')
        expect(failed).toMatchObject({ status: 'fail', failingStep: { name: 'say hello', expectation: 'expected_output_regex = "^goodbye"' } })
        await writeFile(file, (await readFile(file, 'utf8')).replace('"^goodbye"', '"^hello from "'))
        await dev.waitFor(line => line.type === 'test' && line.reload > failed.reload && line.name === 'hello' && line.status === 'pass')
        const reload = await dev.waitFor(line => line.type === 'reload' && line.id > failed.reload)
        expect(reload.selected).toEqual([{ file, reason: 'changed' }])
        dev.send('q\n')
        expect(await dev.exited).toBe(0)
        expect(clnrmContainersOf(dev.pid)).toEqual([])
      }
      finally {
        await cleanup()
      }
    }, 180_000)
  })
}

/** Containers labelled with a clnrm process's pid. */
export function clnrmContainersOf(pid: number): string[] {
  return execFileSync('docker', ['ps', '-aq', '--filter', `label=clnrm.pid=${pid}`], { encoding: 'utf8' }).split('\n').filter(Boolean)
}
