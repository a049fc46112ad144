import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import type { ViteDevServer } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clnrmContainers } from './engine.ts'
import type { VitePage } from './vite-project.ts'
import { copyPlayground, edit, inPanel, openVitePage, repo } from './vite-project.ts'

const artifacts = join(repo, 'test/artifacts')

// The panel against the playground's real runs: reruns asked from the page run in the plugin's
// dev session, and results of real edits patch the panel. panel.test.ts covers the rest fed by hand.
describe('the panel on the playground in vite dev', () => {
  let dir: string
  let server: ViteDevServer
  let page: Page
  let vite: VitePage | undefined
  beforeAll(async () => {
    vite = await openVitePage(copyPlayground(), { viewport: { width: 1000, height: 900 } })
    ;({ dir, server, page } = vite)
    await page.waitForSelector('clnrm-results[data-status="pass"][data-pass="4"]', { timeout: 120_000, state: 'attached' })
  }, 180_000)
  afterAll(() => vite?.close())

  const ran = (): Promise<string> => inPanel(page, 'return root.querySelector("footer .ran").textContent')
  const panelOpen = (): Promise<boolean> => inPanel(page, 'return !root.querySelector(".panel").hidden')
  const row = (file: string): string => `clnrm-results li[data-file="${file}"]`
  const attached = { state: 'attached' } as const

  it('reruns one test from its button: the server runs that test only', async () => {
    await page.click('clnrm-results button.badge')
    await page.click(`${row('tests/api.clnrm.toml.eta')} button.rerun-test`)
    expect(await inPanel(page, 'return root.querySelector(".notice").textContent')).toBe('rerunning API stub answers…')
    // The reload's list of tests comes from the dev session's metrics: one test, rerun.
    await expect.poll(ran, { timeout: 20_000 }).toBe('ran tests/api.clnrm.toml.eta (rerun)')
    await page.waitForSelector('clnrm-results[data-status="pass"][data-pass="4"]', { timeout: 10_000, ...attached })
    // The notice goes once the rerun is done.
    await expect.poll(() => inPanel(page, 'return root.querySelector(".notice").textContent')).toBe('')
  })

  it('reruns all; "rerun failed" with nothing failed says so and runs nothing', async () => {
    await page.click('clnrm-results button[data-rerun="failed"]')
    expect(await inPanel(page, 'return root.querySelector(".notice").textContent')).toBe('nothing failed: no test to rerun')
    await page.click('clnrm-results button[data-rerun="all"]')
    await expect.poll(async () => (await ran()).replace(/^ran /, '').split(', ').sort(), { timeout: 50_000 }).toEqual([
      'tests/api.clnrm.toml.eta (rerun all)', 'tests/app-source.clnrm.toml (rerun all)', 'tests/checkout.clnrm.toml (rerun all)', 'tests/pages.clnrm.toml.eta (rerun all)',
    ].sort())
  }, 60_000)

  it('keeps focus and a selected text range while a save reruns a test, then reruns only the failed one', async () => {
    await page.waitForSelector('clnrm-results[data-status="pass"][data-pass="4"]', { timeout: 20_000, ...attached })
    await inPanel(page, `
      const button = root.querySelector('li[data-file="tests/api.clnrm.toml.eta"] button.rerun-test')
      button.focus()
      button.dataset.marked = 'yes'
      const name = root.querySelector('li[data-file="tests/pages.clnrm.toml.eta"] .name').firstChild
      document.getSelection().setBaseAndExtent(name, 0, name, 5)`)
    expect(await inPanel(page, 'return root.getSelection().toString()')).toBe('pages')
    edit(join(dir, 'tests/pages.clnrm.toml.eta'), '<title>clnrm playground</title>', '<title>another app</title>')
    await page.waitForSelector(`${row('tests/pages.clnrm.toml.eta')}[data-status="fail"]`, { timeout: 10_000, ...attached })
    expect(await inPanel(page, 'return root.activeElement?.dataset.marked')).toBe('yes')
    expect(await inPanel(page, 'return [root.getSelection().toString(), root.getSelection().anchorNode.isConnected]')).toEqual(['pages', true])
    // The save reran the edited test (and the one mounting the playground folder it lies in).
    // The reload's list comes when every test it selected is done, in the order the runs finished
    // (which the two runs race for).
    await expect.poll(ran, { timeout: 20_000 }).toMatch(/^ran (.*, )?tests\/pages\.clnrm\.toml\.eta \(changed\)/)
    // Why the other ran, with its path relative to the root as the files are.
    expect(await ran()).toContain('tests/api.clnrm.toml.eta (mounts .)')
    // Vite's overlay came up too; out of the way for the clicks.
    await page.waitForSelector('vite-error-overlay', { timeout: 5000, ...attached })
    await page.evaluate('document.querySelectorAll("vite-error-overlay").forEach(o => o.remove())')
    // A late result of the save's reload may clear the notice at once: record what it said.
    await inPanel(page, `
      const notice = root.querySelector('.notice')
      window.__notices = []
      new MutationObserver(() => window.__notices.push(notice.textContent)).observe(notice, { childList: true, characterData: true, subtree: true })`)
    await page.click('clnrm-results button[data-rerun="failed"]')
    await expect.poll(() => page.evaluate('window.__notices'), { timeout: 5000 }).toContain('rerunning 1 failed test…')
    await expect.poll(ran, { timeout: 20_000 }).toBe('ran tests/pages.clnrm.toml.eta (rerun failed)')
    edit(join(dir, 'tests/pages.clnrm.toml.eta'), '<title>another app</title>', '<title>clnrm playground</title>')
    await page.waitForSelector('clnrm-results[data-status="pass"][data-pass="4"]', { timeout: 10_000, ...attached })
  })

  it('filters the real tests by name or file', async () => {
    await page.fill('clnrm-results input.filter', 'traced')  // checkout's test name: "checkout is traced"
    const visible = (): Promise<string[]> => inPanel(page, 'return [...root.querySelectorAll("ul.tests > li")].filter(li => li.getBoundingClientRect().height > 0).map(li => li.dataset.file)')
    expect(await visible()).toEqual(['tests/checkout.clnrm.toml'])
    await page.fill('clnrm-results input.filter', '.eta')
    expect(await visible()).toEqual(['tests/api.clnrm.toml.eta', 'tests/pages.clnrm.toml.eta'])
    await page.fill('clnrm-results input.filter', '')
    expect(await visible()).toHaveLength(4)
  })

  it('stays collapsed across a real failure and a page reload once the user collapsed it', async () => {
    expect(await panelOpen()).toBe(true)
    await page.focus('clnrm-results input.filter')
    await page.keyboard.press('Escape')
    expect(await panelOpen()).toBe(false)
    const file = join(dir, 'tests/app-source.clnrm.toml')
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n[[steps]]\nname = "fails"\nrun = "exit 3"\n`)
    await page.waitForSelector(`${row('tests/app-source.clnrm.toml')}[data-status="fail"]`, { timeout: 10_000, ...attached })
    await page.waitForSelector('clnrm-results[data-status="fail"]', { timeout: 10_000, ...attached })
    await page.evaluate('document.querySelectorAll("vite-error-overlay").forEach(o => o.remove())')
    expect(await panelOpen()).toBe(false)
    expect(await inPanel(page, 'return getComputedStyle(root.querySelector("button.badge")).backgroundColor')).toBe('rgb(185, 28, 28)')
    await page.reload()
    await page.waitForSelector('clnrm-results[data-status="fail"][data-fail="1"]', { timeout: 30_000, ...attached }).catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await inPanel(page, 'return JSON.stringify({ ...host.dataset, rows: [...root.querySelectorAll("ul.tests > li")].map(li => li.dataset.file + " " + li.dataset.status) })')}`)
    })
    expect(await panelOpen()).toBe(false)
    // Narrow and dark, with real results: the panel opened by the user fits.
    await page.setViewportSize({ width: 390, height: 844 })
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.evaluate('document.querySelectorAll("vite-error-overlay").forEach(o => o.remove())')
    await page.click('clnrm-results button.badge')
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390)
    mkdirSync(artifacts, { recursive: true })
    await page.screenshot({ path: join(artifacts, 'playground-panel-narrow-dark.png') })
  })

  it('removes the session\'s containers when the dev server closes', async () => {
    expect(clnrmContainers(process.pid).length).toBeGreaterThan(0)
    await server.close()
    expect(clnrmContainers(process.pid)).toEqual([])
  })
})
