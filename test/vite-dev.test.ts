import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { chromium } from 'playwright-core'
import type { ViteDevServer } from 'vite'
import { createLogger, createServer } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clnrmContainers, IMAGE } from './engine.ts'
import { spawnCli } from './cli-process.ts'

const repo = resolve(import.meta.dirname, '..')

/** A small Vite app inside the repository (so `clnrm/vite` resolves to this package), its tests where clnrm.toml says. */
export function viteProject(files: Record<string, string>): string {
  const dir = mkdtempSync(join(repo, 'test', '.tmp-vite-dev-'))
  const all: Record<string, string> = {
    'index.html': '<!doctype html><html><head><title>app</title></head><body><p id="app">app</p></body></html>\n',
    'vite.config.ts': 'import { defineConfig } from \'vite\'\nimport { clnrm } from \'clnrm/vite\'\n\nexport default defineConfig({ plugins: [clnrm()] })\n',
    ...files,
  }
  for (const [name, text] of Object.entries(all)) {
    mkdirSync(join(dir, name, '..'), { recursive: true })
    writeFileSync(join(dir, name), text)
  }
  return dir
}

/** A one-step test whose step prints `out` and expects `want`. */
export const oneStep = (name: string, out: string, want: string): string =>
  `[meta]\nname = "${name}"\n\n[services.box]\nimage = "${IMAGE}"\n\n[[steps]]\nname = "prints"\nrun = "echo ${out}"\nexpected_output_regex = "^${want}"\n`

/** The 1-based line of the first line of `text` that contains `needle`. */
const lineOf = (text: string, needle: string): number => text.split('\n').findIndex(l => l.includes(needle)) + 1

/** Launches Debian's Chromium headless. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  })
}

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
  let browser: Browser
  let page: Page
  const terminal: string[] = []
  const attached = { state: 'attached' } as const
  const row = (file: string, status: string): string => `clnrm-results li[data-file="${file}"][data-status="${status}"]`

  beforeAll(async () => {
    dir = viteProject({
      // The project's globs: a test beside the code it checks, outside tests/.
      'clnrm.toml': 'tests = ["checks/**/*.clnrm.toml", "src/**/*.clnrm.toml"]\n',
      'checks/a.clnrm.toml': oneStep('a', 'alpha', 'alpha'),
      'checks/b.clnrm.toml': oneStep('b', 'beta', 'beta'),
      'src/widget.clnrm.toml': oneStep('widget', 'widget', 'widget'),
    })
    const logger = createLogger('info')
    for (const level of ['info', 'warn', 'error'] as const) {
      const original = logger[level]
      logger[level] = (message, options) => {
        terminal.push(message)
        original(message, options)
      }
    }
    server = await createServer({ root: dir, configFile: join(dir, 'vite.config.ts'), server: { port: 0 }, customLogger: logger })
    await server.listen()
    browser = await launchChromium()
    page = await browser.newPage()
    await page.goto(server.resolvedUrls!.local[0]!)
  }, 180_000)
  afterAll(async () => {
    await browser?.close()
    await server?.close()
    rmSync(dir, { recursive: true, force: true })
  })

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
