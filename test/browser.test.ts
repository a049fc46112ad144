import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import type { ViteDevServer } from 'vite'
import { build } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clnrmContainers } from './engine.ts'
import type { VitePage } from './vite-project.ts'
import { copyPlayground, edit, openVitePage, repo } from './vite-project.ts'

const artifacts = join(repo, 'test/artifacts')

describe('the playground in vite dev, in a real browser', () => {
  let dir: string
  let server: ViteDevServer
  let page: Page
  // What Vite's terminal shows: with no page open, that is the only view.
  const terminal: string[] = []
  let vite: VitePage | undefined
  beforeAll(async () => {
    vite = await openVitePage(copyPlayground(), { terminal, level: 'warn' })
    ;({ dir, server, page } = vite)
  }, 180_000)
  afterAll(() => vite?.close())

  const badge = 'clnrm-results'
  const row = (file: string, status: string): string => `clnrm-results li[data-file="${file}"][data-status="${status}"]`
  // Status is asserted on the element whether or not the panel is open (a full reload closes it).
  const attached = { state: 'attached' } as const

  it('shows the badge and a panel of passing tests', async () => {
    await page.waitForSelector(`${badge}[data-status="pass"][data-pass="4"]`, { timeout: 120_000, state: 'attached' })
    await page.click('clnrm-results button.badge')
    for (const file of ['tests/pages.clnrm.toml.eta', 'tests/api.clnrm.toml.eta', 'tests/app-source.clnrm.toml', 'tests/checkout.clnrm.toml']) {
      await page.waitForSelector(row(file, 'pass'), { timeout: 5000 })  // visible: the panel is open
    }
    // The app itself still works: Vite serves it, and its HMR is untouched.
    await expect.poll(() => page.textContent('#status')).toBe('API ok (playground)')
  })

  it('shows a failure within 1 s of the save, pointing at the failing step, and raises Vite\'s overlay', async () => {
    const started = Date.now()
    edit(join(dir, 'tests/pages.clnrm.toml.eta'), '<title>clnrm playground</title>', '<title>another app</title>')
    await page.waitForSelector(row('tests/pages.clnrm.toml.eta', 'fail'), { timeout: 1000, ...attached })
    console.log(`save → failure shown in the browser: ${Date.now() - started} ms`)
    const text = await page.textContent(row('tests/pages.clnrm.toml.eta', 'fail'))
    expect(text).toContain('index has the app\'s title')
    expect(text).toContain('expected_output_regex = "<title>another app</title>"')
    // The link points at the failing pattern in the template: its line and column.
    const lines = readFileSync(join(dir, 'tests/pages.clnrm.toml.eta'), 'utf8').split('\n')
    const line = lines.findIndex(l => l.startsWith('expected_output_regex')) + 1
    expect(text).toContain(`tests/pages.clnrm.toml.eta:${line}:${lines[line - 1]!.indexOf('"<title>') + 1}`)
    await page.waitForSelector('vite-error-overlay', { timeout: 5000 })
    expect(await page.evaluate('document.querySelector("vite-error-overlay").shadowRoot.textContent')).toContain('[plugin:clnrm] pages are served: step "index has the app\'s title": stdout does not match')
    mkdirSync(artifacts, { recursive: true })
    await page.screenshot({ path: join(artifacts, 'playground-failure-overlay.png') })
    // Under Vite's overlay, the panel shows the failure too.
    await page.evaluate('document.querySelector("vite-error-overlay").remove()')
    await page.screenshot({ path: join(artifacts, 'playground-failure-panel.png') })
  })

  it('is back to pass after the fix, and the overlay is gone', async () => {
    edit(join(dir, 'tests/pages.clnrm.toml.eta'), '<title>another app</title>', '<title>clnrm playground</title>')
    await page.waitForSelector(row('tests/pages.clnrm.toml.eta', 'pass'), { timeout: 5000, ...attached })
    await page.waitForSelector(`${badge}[data-status="pass"][data-pass="4"]`, { timeout: 5000, ...attached })
    await page.waitForSelector('vite-error-overlay', { state: 'detached', timeout: 5000 })
  })

  it('reruns the test whose [watch] modules import an edited app module', async () => {
    edit(join(dir, 'src/api.ts'), '\'/api/status.json\'', '\'/api/missing.json\'')
    // Vite reloads the page (api.ts has no HMR boundary); the panel gets the results either way.
    await page.waitForSelector(row('tests/app-source.clnrm.toml', 'fail'), { timeout: 10_000, ...attached })
    // The others still pass (they mount the app's files, so they reran too).
    await page.waitForSelector(`${badge}[data-pass="3"][data-fail="1"]`, { timeout: 10_000, ...attached })
    edit(join(dir, 'src/api.ts'), '\'/api/missing.json\'', '\'/api/status.json\'')
    await page.waitForSelector(row('tests/app-source.clnrm.toml', 'pass'), { timeout: 10_000, ...attached })
  })

  it('shows a valid file\'s warning in the panel, on the badge and in Vite\'s terminal', async () => {
    const file = join(dir, 'tests/app-source.clnrm.toml')
    edit(file, 'name = "the app reads an API that exists"', 'name = "the app reads an API that exists"\nowner = "team-a"')
    await page.waitForSelector('clnrm-results li[data-file="tests/app-source.clnrm.toml"][data-warnings="1"]', { timeout: 10_000, ...attached })
    await page.waitForSelector(`${badge}[data-warned="1"]`, { timeout: 5000, ...attached })
    const text = await page.textContent('clnrm-results li[data-file="tests/app-source.clnrm.toml"]')
    expect(text).toContain('tests/app-source.clnrm.toml:3:1 warning CLNRM_UNKNOWN_KEY')
    await expect.poll(() => terminal.join('\n')).toMatch(/\[clnrm\] ⚠ tests\/app-source\.clnrm\.toml:3:1 .*owner/)
    edit(file, '\nowner = "team-a"', '')
    await page.waitForSelector(`${badge}[data-warned="0"][data-pass="4"]`, { timeout: 10_000, ...attached })
  })

  it('notes output it shows cut, on a passing test too', async () => {
    const file = join(dir, 'tests/app-source.clnrm.toml')
    const original = readFileSync(file, 'utf8')
    writeFileSync(file, `${original}\n[[steps]]\nname = "long output"\nrun = "yes x | head -c 1500000"\n`)
    await page.waitForSelector('clnrm-results li[data-file="tests/app-source.clnrm.toml"] .truncated', { timeout: 10_000, ...attached })
    expect(await page.textContent('clnrm-results li[data-file="tests/app-source.clnrm.toml"] .truncated')).toBe('note: step "long output" stdout of 1.4 MiB shown as its first and last 512 KiB')
    expect(await page.getAttribute('clnrm-results li[data-file="tests/app-source.clnrm.toml"]', 'data-status')).toBe('pass')
    writeFileSync(file, original)
    await page.waitForSelector('clnrm-results li[data-file="tests/app-source.clnrm.toml"][data-status="pass"]:not(:has(.truncated))', { timeout: 10_000, ...attached })
  })

  it('draws the traced test\'s spans as a waterfall, and highlights the span a failing rule names', async () => {
    const traced = 'clnrm-results li[data-file="tests/checkout.clnrm.toml"]'
    // The client's span and the shop's four (its SDK joined the client's trace through traceparent).
    const rows = (): Promise<Array<{ name: string; service: string; colour: string; highlighted: boolean }>> => page.evaluate(`[...document.querySelector('clnrm-results').shadowRoot.querySelectorAll('li[data-file="tests/checkout.clnrm.toml"] .waterfall .span-row')].map(el => ({
      name: el.querySelector('.span-name').textContent, service: el.dataset.service, colour: getComputedStyle(el.querySelector('.bar')).backgroundColor, highlighted: el.hasAttribute('data-highlighted'),
    }))`)
    await page.waitForSelector(`${traced}[data-status="pass"] .waterfall .span-row`, { timeout: 10_000, ...attached })
    const passing = await rows()
    expect(passing.map(r => `${r.name} ${r.service}`)).toEqual(['buy client', 'GET shop', 'checkout shop', 'checkout.validate shop', 'checkout.charge shop'])
    expect(passing[0]!.colour).not.toBe(passing[1]!.colour)
    expect(new Set(passing.slice(1).map(r => r.colour)).size).toBe(1)
    expect(passing.some(r => r.highlighted)).toBe(false)
    expect(await page.textContent(`${traced} details.spans summary`)).toMatch(/^7 span rules held over 5 spans/)

    const file = join(dir, 'tests/checkout.clnrm.toml')
    edit(file, '"payment.provider" = "fakepay"', '"payment.provider" = "stripe"')
    await page.waitForSelector(`${traced}[data-status="fail"] .rule-failure`, { timeout: 10_000, ...attached })
    expect(await page.getAttribute(`${traced} .rule-failure`, 'data-rule')).toBe('expect.span[checkout.charge].attrs.all')
    expect((await rows()).filter(r => r.highlighted).map(r => r.name)).toEqual(['▸ checkout.charge'])
    // Vite's overlay names the rule too (no step failed, so the rule is the failure).
    await page.waitForSelector('vite-error-overlay', { timeout: 5000 })
    expect(await page.evaluate('document.querySelector("vite-error-overlay").shadowRoot.textContent')).toContain('[plugin:clnrm] checkout is traced: span rule expect.span[checkout.charge].attrs.all did not hold')
    await page.evaluate('document.querySelector("vite-error-overlay").remove()')
    // The panel scrolled to the traced test, so the screenshot shows its waterfall.
    await page.evaluate(`document.querySelector('clnrm-results').shadowRoot.querySelector('li[data-file="tests/checkout.clnrm.toml"]').scrollIntoView()`)
    mkdirSync(artifacts, { recursive: true })
    await page.screenshot({ path: join(artifacts, 'playground-waterfall.png') })
    edit(file, '"payment.provider" = "stripe"', '"payment.provider" = "fakepay"')
    await page.waitForSelector(`${traced}[data-status="pass"]`, { timeout: 10_000, ...attached })
  })

  it('keeps the results across a full page reload, and saves a screenshot', async () => {
    const footer = await page.textContent('clnrm-results footer.timings')
    expect(footer).toMatch(/last reload \d+(\.\d+)?ms: detect [\d.]+ · debounce [\d.]+/)
    await page.reload()
    await page.waitForSelector(`${badge}[data-status="pass"][data-pass="4"]`, { timeout: 5000, ...attached })
    // Replayed, not rerun: the last reload is the same one. The user opened the panel: it is open again.
    await page.waitForSelector('clnrm-results footer.timings', { timeout: 5000 })
    expect(await page.textContent('clnrm-results footer.timings')).toBe(footer)
    mkdirSync(artifacts, { recursive: true })
    await page.screenshot({ path: join(artifacts, 'playground-panel.png') })
    expect(existsSync(join(artifacts, 'playground-panel.png'))).toBe(true)
  })

  it('removes the session\'s containers when the dev server closes', async () => {
    expect(clnrmContainers(process.pid).length).toBeGreaterThan(0)
    await server.close()
    expect(clnrmContainers(process.pid)).toEqual([])
  })
})

describe('vite build', () => {
  it('gets nothing from the plugin, and starts no container', async () => {
    const dir = copyPlayground()
    try {
      await build({ root: dir, configFile: join(dir, 'vite.config.ts'), logLevel: 'silent', build: { outDir: join(dir, 'out') } })
      const files = readdirSync(join(dir, 'out'), { recursive: true }).map(String).filter(f => /\.(js|html|css)$/.test(f))
      expect(files.length).toBeGreaterThan(0)
      for (const file of files) expect(readFileSync(join(dir, 'out', file), 'utf8')).not.toMatch(/clnrm-results|@clnrm\/client|clnrm:results/)
      expect(clnrmContainers(process.pid)).toEqual([])
    }
    finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
