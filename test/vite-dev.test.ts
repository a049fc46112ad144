import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { Server, Socket } from 'node:net'
import { connect, createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { launchChromium } from './chromium.ts'
import type { Page } from 'playwright-core'
import type { ViteDevServer } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clnrmContainers, IMAGE } from './engine.ts'
import { spawnCli } from './cli-process.ts'
import type { VitePage } from './vite-project.ts'
import { openVitePage, repo, viteProject } from './vite-project.ts'

/** A one-step test whose step prints `out` and expects `want`. */
export const oneStep = (name: string, out: string, want: string): string =>
  `[meta]\nname = "${name}"\n\n[services.box]\nimage = "${IMAGE}"\n\n[[steps]]\nname = "prints"\nrun = "echo ${out}"\nexpected_output_regex = "^${want}"\n`

/** The 1-based line of the first line of `text` that contains `needle`. */
const lineOf = (text: string, needle: string): number => text.split('\n').findIndex(l => l.includes(needle)) + 1


/** What Vite's error overlay shows, read from its shadow DOM; `null` when there is none. */
export function overlayText(page: Page): Promise<{ message: string; file: string; frame: string } | null> {
  return page.evaluate(`(() => {
    const el = document.querySelector('vite-error-overlay')
    if (!el) return null
    const part = s => el.shadowRoot.querySelector(s)?.textContent ?? ''
    return { message: part('.message'), file: part('.file'), frame: part('.frame') }
  })()`)
}

describe('vite dev: overlay, terminal and test globs (real Vite, engine and Chromium)', () => {
  let dir: string
  let server: ViteDevServer
  let page: Page
  let vite: VitePage | undefined
  const terminal: string[] = []
  const attached = { state: 'attached' } as const
  const row = (file: string, status: string): string => `clnrm-results li[data-file="${file}"][data-status="${status}"]`

  beforeAll(async () => {
    vite = await openVitePage(viteProject({
      // The project's globs: a test beside the code it checks, outside tests/.
      'clnrm.toml': 'tests = ["checks/**/*.clnrm.toml", "src/**/*.clnrm.toml"]\n',
      'checks/a.clnrm.toml': oneStep('a', 'alpha', 'alpha'),
      'checks/b.clnrm.toml': oneStep('b', 'beta', 'beta'),
      'src/widget.clnrm.toml': oneStep('widget', 'widget', 'widget'),
    }), { terminal })
    ;({ dir, server, page } = vite)
  }, 180_000)
  afterAll(() => vite?.close())

  it('runs the tests clnrm.toml names (a colocated one too), as clnrm validate finds them', async () => {
    await page.waitForSelector('clnrm-results[data-status="pass"][data-pass="3"]', { timeout: 120_000, ...attached })
    for (const file of ['checks/a.clnrm.toml', 'checks/b.clnrm.toml', 'src/widget.clnrm.toml']) await page.waitForSelector(row(file, 'pass'), attached)
    const validate = spawnCli(['validate'], dir)
    expect((await validate.exited).code).toBe(0)
    expect(validate.stdout()).toContain('src/widget.clnrm.toml')
    expect(validate.stdout()).toMatch(/3 files: 3 valid/)
    // The terminal says what ran, with no page needed.
    await expect.poll(() => terminal.join('\n')).toMatch(/\[clnrm\] .*3 passed.*\(3 files\) in \d+ ms/)
  })

  it('answers a rerun from the panel with the reload that runs it; the notice ends with that reload\'s results', async () => {
    if (await page.evaluate('document.querySelector("clnrm-results").dataset.open') !== 'true') await page.click('clnrm-results button.badge')
    // The answer may be followed at once by the reload's results: record the reload the notice waited for.
    await page.evaluate(`(() => {
      const root = document.querySelector('clnrm-results').shadowRoot
      const notice = root.querySelector('.notice')
      window.__waitedFor = []
      new MutationObserver(() => notice.dataset.reload && window.__waitedFor.push(notice.dataset.reload)).observe(notice, { attributes: true, attributeFilter: ['data-reload'] })
    })()`)
    await page.click('clnrm-results li[data-file="src/widget.clnrm.toml"] button.rerun-test')
    await expect.poll(() => page.evaluate('window.__waitedFor'), { timeout: 10_000 }).toHaveLength(1)
    const [waited] = await page.evaluate('window.__waitedFor') as string[]
    const panel = <T>(body: string): Promise<T> => page.evaluate(`(() => { const root = document.querySelector('clnrm-results').shadowRoot; ${body} })()`) as Promise<T>
    await expect.poll(() => panel<string>('return root.querySelector("footer .ran").textContent'), { timeout: 20_000 }).toBe('ran src/widget.clnrm.toml (rerun)')
    // The reload that ran it is the one the notice waited for, and the notice is gone with its results.
    expect(await panel<string>('return root.querySelector("footer").dataset.reload')).toBe(waited)
    await expect.poll(() => panel<string>('return root.querySelector(".notice").textContent')).toBe('')
  })

  it('prints one line per failure with file:line:col, and a summary, per reload', async () => {
    const mark = terminal.length
    writeFileSync(join(dir, 'checks/a.clnrm.toml'), oneStep('a', 'alpha', 'omega'))
    await page.waitForSelector(row('checks/a.clnrm.toml', 'fail'), { timeout: 20_000, ...attached })
    const line = lineOf(readFileSync(join(dir, 'checks/a.clnrm.toml'), 'utf8'), 'expected_output_regex')
    await expect.poll(() => terminal.slice(mark).join('\n')).toMatch(/\[clnrm\] .*1 failed.*\(1 file\)/)
    const said = terminal.slice(mark).join('\n')
    expect(said).toContain(`✗ checks/a.clnrm.toml:${line}:1 step "prints": expected_output_regex = "^omega": stdout does not match`)
    expect(said).not.toMatch(/expected expected/)
  })

  it('keeps the overlay on a current failure: shows the other when the shown one is fixed, again after a page reload, and goes when all pass', async () => {
    writeFileSync(join(dir, 'checks/b.clnrm.toml'), oneStep('b', 'beta', 'gamma'))
    await page.waitForSelector(row('checks/b.clnrm.toml', 'fail'), { timeout: 20_000, ...attached })
    // The newest failure is shown: b's, with a code frame of its failing key and the output.
    await expect.poll(async () => (await overlayText(page))?.message ?? '', { timeout: 10_000 }).toContain('b: step "prints": stdout does not match')
    const b = (await overlayText(page))!
    const bLine = lineOf(readFileSync(join(dir, 'checks/b.clnrm.toml'), 'utf8'), 'expected_output_regex')
    expect(b.file).toBe(`${join(dir, 'checks/b.clnrm.toml')}:${bLine}:1`)
    expect(b.frame).toContain(`> ${bLine} | expected_output_regex = "^gamma"`)
    expect(b.frame).toMatch(/\| \^{21}/)
    expect(b.message).toContain('expected_output_regex = "^gamma"')
    expect(b.message).toContain('│ beta')
    expect(b.message).not.toMatch(/expected expected/)

    // Fix the one shown: the overlay shows a's failure, which is still current.
    writeFileSync(join(dir, 'checks/b.clnrm.toml'), oneStep('b', 'beta', 'beta'))
    await page.waitForSelector(row('checks/b.clnrm.toml', 'pass'), { timeout: 20_000, ...attached })
    await expect.poll(async () => (await overlayText(page))?.message ?? '', { timeout: 10_000 }).toContain('a: step "prints": stdout does not match')
    expect((await overlayText(page))!.frame).toContain('expected_output_regex = "^omega"')

    // A page reload while a fails: the overlay is raised again.
    await page.reload()
    await expect.poll(async () => (await overlayText(page))?.message ?? '', { timeout: 10_000 }).toContain('a: step "prints": stdout does not match')

    // All fixed: no overlay.
    writeFileSync(join(dir, 'checks/a.clnrm.toml'), oneStep('a', 'alpha', 'alpha'))
    await page.waitForSelector('clnrm-results[data-status="pass"][data-pass="3"]', { timeout: 20_000, ...attached })
    await page.waitForSelector('vite-error-overlay', { state: 'detached', timeout: 10_000 })
    await page.reload()
    await page.waitForSelector('clnrm-results[data-pass="3"]', { timeout: 10_000, ...attached })
    expect(await overlayText(page)).toBeNull()
  })

  it('raises an invalid file in the overlay with its TOML code frame, and says it in the terminal', async () => {
    const mark = terminal.length
    writeFileSync(join(dir, 'checks/a.clnrm.toml'), oneStep('a', 'alpha', 'alpha').replace('run = ', 'rnu = '))
    await page.waitForSelector(row('checks/a.clnrm.toml', 'invalid'), { timeout: 20_000, ...attached })
    await expect.poll(async () => (await overlayText(page))?.message ?? '', { timeout: 10_000 }).toContain('checks/a.clnrm.toml')
    expect((await overlayText(page))!.frame).toContain('rnu = "echo alpha"')
    await expect.poll(() => terminal.slice(mark).join('\n')).toMatch(/✗ checks\/a\.clnrm\.toml:\d+:1 CLNRM_UNKNOWN_KEY/)
    writeFileSync(join(dir, 'checks/a.clnrm.toml'), oneStep('a', 'alpha', 'alpha'))
    await page.waitForSelector('clnrm-results[data-status="pass"][data-pass="3"]', { timeout: 20_000, ...attached })
    await page.waitForSelector('vite-error-overlay', { state: 'detached', timeout: 10_000 })
  })

  it('removes the session\'s containers when the dev server closes', async () => {
    await server.close()
    expect(clnrmContainers(process.pid)).toEqual([])
  })
})

/**
 * A stand-in for an engine that stops and starts: a unix socket that forwards to the real engine
 * while it is open. Nothing listens on it before `open` or after `close`, as when Docker is off;
 * the real engine everyone else uses is never touched.
 */
function engineProxy(path: string): { open: () => Promise<void>; close: () => Promise<void> } {
  let server: Server | undefined
  const sockets = new Set<Socket>()
  return {
    open: () => new Promise((done, fail) => {
      rmSync(path, { force: true })
      server = createNetServer((client) => {
        const upstream = connect('/var/run/docker.sock')
        for (const s of [client, upstream]) {
          sockets.add(s)
          s.on('close', () => sockets.delete(s))
          s.on('error', () => s.destroy())
        }
        client.pipe(upstream).pipe(client)
      })
      server.once('error', fail)
      server.listen(path, () => done())
    }),
    close: () => new Promise((done) => {
      for (const s of sockets) s.destroy()
      if (!server) return done()
      server.close(() => done())
      server = undefined
    }),
  }
}

describe('vite dev without an engine (spawned vite, real engine behind a socket that comes and goes, Chromium)', () => {
  it('shows the engine error in the panel, the overlay and the terminal, with a hint naming nothing of this repository, and runs the tests once the engine answers, at start and later', async () => {
    const dir = viteProject({ 'tests/a.clnrm.toml': oneStep('a', 'alpha', 'alpha') })
    const socket = join(tmpdir(), `clnrm-engine-${process.pid}.sock`)
    const proxy = engineProxy(socket)
    const vite = spawnCli([], dir, { env: { DOCKER_HOST: `unix://${socket}` }, script: [join(repo, 'node_modules/vite/bin/vite.js'), '--port', '0', '--strictPort', 'false'] })
    const browser = await launchChromium()
    try {
      const url = /Local:\s+(http:\S+)/.exec(await vite.until(/Local:\s+http:\S+/))![1]!
      const page = await browser.newPage()
      await page.goto(url)
      // No engine at start: said everywhere, never an endless spinner.
      await expect.poll(async () => (await overlayText(page))?.message ?? '', { timeout: 30_000 }).toContain(`No Docker engine is reachable at DOCKER_HOST=unix://${socket}`)
      const overlay = (await overlayText(page))!.message
      expect(overlay).toMatch(/hint: Start Docker/)
      expect(overlay).not.toMatch(/scripts\/|npm run/)
      // The badge says it failed rather than spinning.
      await page.waitForSelector('clnrm-results[data-engine="unreachable"][data-status="fail"]', { timeout: 10_000, state: 'attached' })
      expect(await page.getAttribute('clnrm-results button.badge', 'aria-label')).toContain('No Docker engine is reachable')
      expect(await page.evaluate(`document.querySelector('clnrm-results').shadowRoot.querySelector('.empty').textContent`)).toContain('No Docker engine is reachable')
      await vite.until(/No Docker engine is reachable at DOCKER_HOST=/)
      expect(vite.output()).not.toMatch(/scripts\/|npm run/)

      // The engine answers: the tests run, the overlay goes.
      await proxy.open()
      await page.waitForSelector('clnrm-results[data-pass="1"][data-engine=""]', { timeout: 60_000, state: 'attached' })
      await page.waitForSelector('vite-error-overlay', { state: 'detached', timeout: 10_000 })
      await vite.until(/engine reachable again[\s\S]*1 passed/)

      // It goes away during the session: the save that meets it says so; back, the test reruns.
      await proxy.close()
      writeFileSync(join(dir, 'tests/a.clnrm.toml'), oneStep('a', 'beta', 'beta'))
      await page.waitForSelector('clnrm-results[data-engine="unreachable"]', { timeout: 60_000, state: 'attached' })
      await expect.poll(async () => (await overlayText(page))?.message ?? '', { timeout: 10_000 }).toContain('No Docker engine is reachable')
      const mark = vite.output().length
      await proxy.open()
      await page.waitForSelector('clnrm-results[data-pass="1"][data-fail="0"][data-engine=""]', { timeout: 60_000, state: 'attached' })
      await page.waitForSelector('vite-error-overlay', { state: 'detached', timeout: 10_000 })
      await expect.poll(() => vite.output().slice(mark), { timeout: 10_000 }).toMatch(/1 passed/)
      // NO_COLOR (set by spawnCli) is honoured: plain text, no escape sequences.
      // eslint-disable-next-line no-control-regex
      expect(vite.output()).not.toMatch(/\x1B\[/)
    }
    finally {
      await browser.close()
      vite.child.kill('SIGTERM')
      await vite.exited
      await proxy.close()
      rmSync(dir, { recursive: true, force: true })
      rmSync(socket, { force: true })
    }
    expect(clnrmContainers(vite.pid)).toEqual([])
  }, 240_000)
})
