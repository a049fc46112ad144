import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import type { ViteDevServer } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clnrmContainers, IMAGE } from './engine.ts'
import type { LocalRegistry, RegistryGate } from './registry.ts'
import { docker, pushImage, startGate, startRegistry } from './registry.ts'
import type { VitePage } from './vite-project.ts'
import { inPanel, openVitePage, repo, repoTempDir, viteProject } from './vite-project.ts'
const artifacts = join(repo, 'test/artifacts')
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')

/**
 * `vite dev` with the plugin on a project whose test images are not on this machine: one is in a
 * real registry on loopback (Debian's docker-registry) behind a gate that holds its 8 MB layer, so
 * the pull is seen in progress; the other is in no registry. Real Vite, engine and Chromium.
 */
describe('vite dev: image pulls in the panel and in Vite\'s terminal (real registry on 127.0.0.1)', () => {
  let dir: string
  let registry: LocalRegistry
  let gate: RegistryGate
  let server: ViteDevServer
  let page: Page
  let vite: VitePage | undefined
  const terminal: string[] = []
  const created: string[] = []
  let alpha: string
  let ghost: string

  // Vite's terminal says a pull is still going every PULL_HEARTBEAT_MS (10 s); here every 300 ms.
  const interval = process.env.CLNRM_PROGRESS_INTERVAL_MS

  beforeAll(async () => {
    process.env.CLNRM_PROGRESS_INTERVAL_MS = '300'
    dir = repoTempDir('vite-pull')
    registry = await startRegistry(join(dir, '.registry'))
    // The layer's first megabyte goes through; the rest waits for the test.
    gate = await startGate(registry.host, 1_000_000)
    const path = `clnrm-vpull-${process.pid}`
    const pushed = `${registry.host}/${path}/alpha:1`
    alpha = `${gate.host}/${path}/alpha:1`
    ghost = `${gate.host}/${path}/ghost:1`
    created.push(pushed, alpha)
    await pushImage(pushed, join(dir, '.build'), 8_000_000)
    expect(() => docker('image', 'inspect', alpha)).toThrow()

    viteProject({
      'index.html': '<!doctype html><html><head><title>app</title><meta name="viewport" content="width=device-width, initial-scale=1"></head><body><p id="app">app</p></body></html>\n',
      'tests/alpha.clnrm.toml': `[meta]\nname = "alpha"\n[services.box]\nimage = "${alpha}"\n[[steps]]\nname = "has its layer"\nrun = "test -f /blob"\n`,
      'tests/ghost.clnrm.toml': `[meta]\nname = "ghost"\n[services.box]\nimage = "${ghost}"\n[[steps]]\nname = "runs"\nrun = "true"\n`,
    }, dir)
    // The registry's data and the image's build folder live in dir: it goes after the registry.
    vite = await openVitePage(dir, { terminal, server: { watch: { ignored: ['**/.registry/**', '**/.build/**'] } }, viewport: { width: 1000, height: 800 }, keepDir: true })
    ;({ server, page } = vite)
    // The user opened the panel in an earlier visit (the choice lasts for the tab).
    await page.evaluate('sessionStorage.setItem("clnrm:panel", "open")')
    await page.reload()
    await page.waitForSelector('clnrm-results', { state: 'attached' })
  }, 180_000)

  afterAll(async () => {
    if (interval === undefined) delete process.env.CLNRM_PROGRESS_INTERVAL_MS
    else process.env.CLNRM_PROGRESS_INTERVAL_MS = interval
    gate?.allow(Infinity)
    await vite?.close()
    expect(clnrmContainers(process.pid)).toEqual([])
    gate?.close()
    registry?.stop()
    for (const image of created) {
      try {
        docker('rmi', image)
      }
      catch {}
    }
    rmSync(dir, { recursive: true, force: true })
  })

  const pullRow = (image: string, state: string): string => `clnrm-results ul.pulls > li[data-image="${image}"][data-state="${state}"]`
  const said = (): string => terminal.join('\n')
  /** Vite's terminal lines saying a pull of `image` is still going: `pulling <image>: <amounts>, 1.20s so far`. */
  const beats = (image: string): RegExpMatchArray[] => [...said().matchAll(new RegExp(`\\[clnrm\\] pulling ${escape(image)}: ([^\\n]*), \\S+(?: \\S+)? so far`, 'g'))]

  it('while tests wait on a pull: a line per image with its state and amounts, the failure with its next step, announced, in place; Vite\'s terminal says each', async () => {
    // The layer is held after its first megabyte: the pull is in progress, and stays so.
    await page.waitForSelector(pullRow(alpha, 'pulling'), { timeout: 60_000 })
    await expect.poll(() => inPanel<string>(page, `return root.querySelector('ul.pulls > li[data-image="${alpha}"] .amounts').textContent`), { timeout: 30_000 }).toMatch(/^\d\/\d layers?, [\d.]+ (kB|MB)\/8\.\d MB$/)
    expect(await inPanel<string>(page, `return root.querySelector('ul.pulls > li[data-image="${alpha}"] .pull-text').textContent`)).toBe(`pulling ${alpha}`)
    // The image the registry does not have: its line says why and what to do.
    await page.waitForSelector(pullRow(ghost, 'failed'), { timeout: 30_000 })
    const failed = await inPanel<string>(page, `return root.querySelector('ul.pulls > li[data-image="${ghost}"]').textContent`)
    expect(failed).toContain(`could not pull ${ghost} from ${gate.host}`)
    expect(failed).toMatch(/manifest unknown|not found/)
    expect(failed).toContain(`hint: ${gate.host} has no image ${ghost}: check the name and tag in the test file, push it there (docker push ${ghost})`)
    // Nothing has a result yet: the panel says what it waits for, and so does the badge.
    expect(await inPanel<string>(page, 'return root.querySelector(".empty").textContent')).toBe('waiting for images the tests need…')
    expect(await inPanel<string>(page, 'return root.querySelector("button.badge").getAttribute("aria-label")')).toContain('pulling 1 image')
    // The existing live region announces each pull's state (not each byte).
    const summary = await inPanel<{ text: string; live: string | null; role: string | null }>(page, 'const s = root.querySelector(".summary"); return { text: s.textContent, live: s.getAttribute("aria-live"), role: s.getAttribute("role") }')
    expect(summary.live).toBe('polite')
    expect(summary.role).toBe('status')
    expect(summary.text).toContain(`pulling ${alpha}, tests wait for it`)
    expect(summary.text).toContain(`could not pull ${ghost}: `)
    // The progress bar has the bytes so far.
    const bar = await inPanel<{ value: number; max: number }>(page, `const b = root.querySelector('ul.pulls > li[data-image="${alpha}"] progress'); return { value: b.value, max: b.max }`)
    expect(bar.max).toBeGreaterThan(8_000_000)
    expect(bar.value).toBeGreaterThan(0)
    expect(bar.value).toBeLessThan(bar.max)

    // More bytes: the line's text changes in place, nothing in the panel moves.
    const layout = (): Promise<string> => inPanel<string>(page, `return JSON.stringify([...root.querySelectorAll('.panel header, ul.tests, ul.pulls > li, footer')].map(e => { const r = e.getBoundingClientRect(); return [e.tagName, Math.round(r.top), Math.round(r.height)] }))`)
    const before = await layout()
    const amountsBefore = await inPanel<string>(page, `return root.querySelector('ul.pulls > li[data-image="${alpha}"] .amounts').textContent`)
    const node = await page.evaluateHandle(`document.querySelector('clnrm-results').shadowRoot.querySelector('ul.pulls > li[data-image="${alpha}"]')`)
    gate.allow(3_000_000)
    await expect.poll(() => inPanel<string>(page, `return root.querySelector('ul.pulls > li[data-image="${alpha}"] .amounts').textContent`), { timeout: 30_000 }).not.toBe(amountsBefore)
    expect(await layout()).toBe(before)
    // The same element, patched (not rebuilt).
    expect(await node.evaluate(el => (el as { isConnected: boolean }).isConnected)).toBe(true)
    mkdirSync(artifacts, { recursive: true })
    await page.screenshot({ path: join(artifacts, 'panel-pulls.png') })
    // On a phone: the pulling line stays one line (the name cut, the amounts whole), nothing scrolls sideways.
    await page.setViewportSize({ width: 390, height: 844 })
    await page.emulateMedia({ colorScheme: 'dark' })
    const narrow = await inPanel<{ page: number; view: number; lineHeight: number; amounts: number; amountsShown: number }>(page, `
      const line = root.querySelector('ul.pulls > li[data-image="${alpha}"] .pull-line')
      const amounts = line.querySelector('.amounts')
      return { page: document.documentElement.scrollWidth, view: innerWidth, lineHeight: line.getBoundingClientRect().height, amounts: amounts.scrollWidth, amountsShown: amounts.clientWidth }`)
    expect(narrow.page).toBeLessThanOrEqual(narrow.view)
    expect(narrow.lineHeight).toBeLessThan(2 * 12 * 1.45)
    expect(narrow.amountsShown).toBe(narrow.amounts)
    await page.screenshot({ path: join(artifacts, 'panel-pulls-390-dark.png') })
    await page.setViewportSize({ width: 1000, height: 800 })
    await page.emulateMedia({ colorScheme: 'light' })

    // Vite's terminal: a line per image as it starts, and the failure with its hint.
    expect(said()).toContain(`[clnrm] pulling ${alpha} from ${gate.host}; tests using it wait for it`)
    expect(said()).toMatch(new RegExp(`\\[clnrm\\] ✗ could not pull ${escape(ghost)} from ${escape(gate.host)} after \\S+: [^\\n]*(manifest unknown|not found)[^\\n]*\\n  hint: ${escape(gate.host)} has no image ${escape(ghost)}`))
    // While the layer is held, a line every interval with the amounts so far; none for the failed image.
    await expect.poll(() => beats(alpha).filter(m => /^\d\/\d layers?, [\d.]+ (kB|MB)\/8\.\d MB$/.test(m[1]!)).length, { timeout: 30_000 }).toBeGreaterThanOrEqual(2)
    expect(beats(ghost)).toEqual([])
  }, 120_000)

  it('once the pull ends: Vite\'s terminal says so, the tests run, the pulled line goes, the failed one stays while a test uses the image', async () => {
    gate.allow(Infinity)
    expect(said()).not.toContain(`pulled ${alpha}`)
    await page.waitForSelector('clnrm-results li[data-file="tests/alpha.clnrm.toml"][data-status="pass"]', { timeout: 60_000 })
    await page.waitForSelector('clnrm-results li[data-file="tests/ghost.clnrm.toml"][data-status="error"]', { timeout: 60_000 })
    await expect.poll(said, { timeout: 30_000 }).toMatch(new RegExp(`\\[clnrm\\] ✓ pulled ${escape(alpha)} in \\S+ \\(\\d/\\d layers, 8\\.\\d MB/8\\.\\d MB\\)`))
    // The first run has results: the pulled image's line went; the failed one stays (ghost still uses it).
    await page.waitForSelector(`clnrm-results ul.pulls > li[data-image="${alpha}"]`, { state: 'detached', timeout: 30_000 })
    expect(await page.locator(pullRow(ghost, 'failed')).count()).toBe(1)
    // The dev loop tried the missing image again for the run: quietly, the same failure is said once.
    expect(said().split(`could not pull ${ghost}`).length - 1).toBe(1)
    expect(said()).toMatch(/\[clnrm\] [^\n]*1 passed, 1 could not run/)

    // The test no longer uses the image: its line goes with the next reload.
    writeFileSync(join(dir, 'tests/ghost.clnrm.toml'), `[meta]\nname = "ghost"\n[services.box]\nimage = "${IMAGE}"\n[[steps]]\nname = "runs"\nrun = "true"\n`)
    await page.waitForSelector('clnrm-results li[data-file="tests/ghost.clnrm.toml"][data-status="pass"]', { timeout: 60_000 })
    await page.waitForSelector('clnrm-results ul.pulls', { state: 'hidden', timeout: 30_000 })
    expect(await inPanel<string>(page, 'return root.querySelector(".summary").textContent')).toBe('clnrm: 2 tests passed, 0 failed')
    // The lines about a pull still going ended with it.
    const pulled = said().indexOf(`pulled ${alpha} in `)
    expect(beats(alpha).length).toBeGreaterThanOrEqual(2)
    expect(beats(alpha).every(m => m.index! < pulled)).toBe(true)
  }, 120_000)
})
