import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import type { ViteDevServer } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PANEL_Z_INDEX, VITE_OVERLAY_Z_INDEX } from '../plugin-vite/client/layers.ts'
import type { RerunRequest, RerunStarted, ResultsPayload, TestView } from '../plugin-vite/protocol.ts'
import { RERUN_EVENT, RERUN_STARTED_EVENT, RESULTS_EVENT } from '../plugin-vite/protocol.ts'
import { spansView } from '../plugin-vite/views.ts'
import { failing } from './otel-fixtures.ts'
import type { VitePage } from './vite-project.ts'
import { writeFiles } from './helpers.ts'
import { inPanel, OVERLAY_SCRIPT, openVitePage, repo, repoTempDir } from './vite-project.ts'

const artifacts = join(repo, 'test/artifacts')

/** WCAG relative luminance of a computed `rgb(…)`/`rgba(…)` colour. */
function luminance(colour: string): number {
  const [r, g, b] = colour.match(/[\d.]+/g)!.slice(0, 3).map(Number).map((v) => {
    const c = v / 255
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4
  })
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!
}
/** WCAG contrast ratio of two colours (1 to 21). */
function contrast(a: string, b: string): number {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x)
  return (light! + 0.05) / (dark! + 0.05)
}

// The panel's own module in a bare Vite page, fed results over Vite's real HMR channel, as the
// plugin sends them; its rerun requests arrive at this Vite server. panel-playground.test.ts
// drives the same panel with the playground's real runs.
describe('the panel, in a real browser', () => {
  let server: ViteDevServer
  let page: Page
  let vite: VitePage | undefined
  const reruns: RerunRequest[] = []
  /** How this stand-in server answers a rerun request, as the plugin does (none: no answer). */
  let answer: ((request: RerunRequest) => RerunStarted) | undefined
  beforeAll(async () => {
    const dir = repoTempDir('panel')
    writeFiles(dir, { 'index.html': `<!doctype html><html><head><title>panel</title><meta name="viewport" content="width=device-width, initial-scale=1"></head><body><h1>app</h1><p>Some page text.</p>${OVERLAY_SCRIPT}</body></html>` })
    vite = await openVitePage(dir, {
      configFile: false,
      server: { fs: { allow: [repo] } },
      viewport: { width: 1000, height: 800 },
      beforePage: server => server.ws.on(RERUN_EVENT, (data: RerunRequest, client) => {
        reruns.push(data)
        if (answer) client.send(RERUN_STARTED_EVENT, answer(data))
      }),
    })
    ;({ server, page } = vite)
    await page.waitForSelector('clnrm-results', { state: 'attached' })
  }, 120_000)
  afterAll(() => vite?.close())

  const longToken = `${'x'.repeat(400)}/end`
  const base = (name: string, status: TestView['status']): TestView => ({ file: `/p/tests/${name}.clnrm.toml`, relative: `tests/${name}.clnrm.toml`, name, status, durationMs: 120 })
  async function tests(options: { checkout?: TestView['status']; extraFailures?: number; apiMs?: number } = {}): Promise<TestView[]> {
    const checkout = options.checkout ?? 'fail'
    return [
      { ...base('api', 'pass'), durationMs: options.apiMs ?? 80, truncated: ['step "dump" stdout of 1.4 MiB shown as its first and last 512 KiB'] },
      {
        ...base('checkout', checkout),
        ...(checkout === 'fail' && { failure: { step: 'pay', expectation: 'expected_output_regex = "paid"', message: 'stdout does not match', excerpt: `paying…\n${longToken}\n`, location: { file: '/p/tests/checkout.clnrm.toml', line: 9, column: 1 } } }),
        ...await spansView(failing, async () => ({ file: '/p/tests/checkout.clnrm.toml', line: 14, column: 1 })),
      },
      ...Array.from({ length: options.extraFailures ?? 0 }, (_, i) => ({ ...base(`broken-${i}`, 'invalid' as const), problems: [{ code: 'CLNRM_TOML_SYNTAX', message: 'expected a value', location: { file: `/p/tests/broken-${i}.clnrm.toml`, line: 2, column: 7 } }] })),
      { ...base('a-test-file-with-a-rather-long-name-that-does-not-fit-on-a-phone', 'pass') },
    ]
  }
  /** Sends results the way the plugin does: a `clnrm:results` message on Vite's HMR channel. */
  async function send(list: TestView[], reloadId = 1): Promise<void> {
    const payload: ResultsPayload = {
      tests: list,
      counts: { pass: list.filter(t => t.status === 'pass').length, fail: list.filter(t => ['fail', 'error', 'invalid'].includes(t.status)).length, running: list.filter(t => t.status === 'running').length, warned: 0 },
      ready: true,
      lastReload: { id: reloadId, changed: [], totalLatencyMs: 180, phases: [{ name: 'run', ms: 60 }], templateCacheHitRate: 1, configCacheHitRate: 1, containerReuseRate: 1, tests: [{ relative: 'tests/checkout.clnrm.toml', reason: 'changed', status: 'fail' }] },
    }
    server.ws.send(RESULTS_EVENT, payload)
    await page.waitForFunction(`document.querySelector('clnrm-results').dataset.fail === '${payload.counts.fail}' && document.querySelector('clnrm-results').shadowRoot.querySelectorAll('ul.tests > li').length === ${list.length}`, undefined, { timeout: 5000 })
  }
  /** A fresh tab state: nothing chosen, nothing filtered. */
  async function fresh(): Promise<void> {
    await page.evaluate('sessionStorage.clear()')
    await page.reload()
    await page.waitForSelector('clnrm-results', { state: 'attached' })
  }
  const panelOpen = (): Promise<boolean> => inPanel(page, 'return !root.querySelector(".panel").hidden && root.querySelector(".panel").getBoundingClientRect().height > 0')
  const active = (): Promise<string> => inPanel(page, 'const a = root.activeElement; return document.activeElement === host && a ? [a.tagName.toLowerCase(), ...a.classList].join(".") : String(document.activeElement?.tagName)')

  it('follows the colour scheme: light and dark colours differ, both readable, color-scheme set', async () => {
    await send(await tests())
    expect(await panelOpen()).toBe(true)  // a new failure opened it: the user has not chosen
    const colours = (): Promise<Record<string, string>> => inPanel(page, `
      const css = (selector, property) => getComputedStyle(root.querySelector(selector))[property]
      return {
        scheme: getComputedStyle(host).colorScheme,
        background: css('.panel', 'backgroundColor'),
        text: css('.panel', 'color'),
        dim: css('.count', 'color'),
        link: css('li[data-file="tests/api.clnrm.toml"] a', 'color'),
        pass: css('li[data-status="pass"] .icon', 'color'),
        fail: css('li[data-status="fail"] .icon', 'color'),
        note: css('.truncated', 'color'),
        code: css('pre', 'backgroundColor'),
        codeText: css('pre', 'color'),
        badge: css('button.badge', 'backgroundColor'),
        badgeText: css('button.badge .fail', 'color'),
        service: css('.span-service', 'color'),
      }`)
    const seen: Record<string, Record<string, string>> = {}
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme })
      const c = await colours()
      seen[scheme] = c
      expect(c.scheme).toBe('light dark')
      for (const text of ['text', 'dim', 'link', 'pass', 'fail', 'note', 'service']) {
        expect.soft(contrast(c[text]!, c.background!), `${scheme} ${text} ${c[text]} on ${c.background}`).toBeGreaterThanOrEqual(4.5)
      }
      expect(contrast(c.codeText!, c.code!)).toBeGreaterThanOrEqual(4.5)
      // The badge of a failing run: white on red, in both schemes.
      expect(contrast(c.badgeText!, c.badge!)).toBeGreaterThanOrEqual(4.5)
      mkdirSync(artifacts, { recursive: true })
      await page.screenshot({ path: join(artifacts, `panel-${scheme}.png`) })
    }
    expect(luminance(seen.light!.background!)).toBeGreaterThan(0.8)
    expect(luminance(seen.dark!.background!)).toBeLessThan(0.05)
    for (const key of ['background', 'text', 'dim', 'link']) expect(seen.light![key]).not.toBe(seen.dark![key])
    await page.emulateMedia({ colorScheme: 'light' })
  })

  it('fits a 390 px wide viewport: no horizontal page scroll, long output wraps in its own box', async () => {
    await page.setViewportSize({ width: 390, height: 844 })
    try {
      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme: scheme })
        await send(await tests())
        const box = await inPanel<{ scrollWidth: number; left: number; right: number; panelOverflow: number; preOverflow: number; badgeRight: number }>(page, `
          const panel = root.querySelector('.panel').getBoundingClientRect()
          const pre = root.querySelector('pre')
          return {
            scrollWidth: document.documentElement.scrollWidth,
            left: panel.left, right: panel.right,
            panelOverflow: root.querySelector('.panel').scrollWidth - root.querySelector('.panel').clientWidth,
            preOverflow: pre.scrollWidth - pre.clientWidth,
            badgeRight: root.querySelector('button.badge').getBoundingClientRect().right,
          }`)
        expect(box.scrollWidth).toBeLessThanOrEqual(390)
        expect(box.left).toBeGreaterThanOrEqual(0)
        expect(box.right).toBeLessThanOrEqual(390)
        expect(box.badgeRight).toBeLessThanOrEqual(390)
        expect(box.panelOverflow).toBeLessThanOrEqual(0)
        // The 400-character token of the failing output wraps inside its <pre>.
        expect(box.preOverflow).toBeLessThanOrEqual(0)
        expect(await inPanel(page, 'return root.querySelector("pre").textContent')).toContain(longToken)
        await page.screenshot({ path: join(artifacts, `panel-narrow-${scheme}.png`) })
      }
    }
    finally {
      await page.emulateMedia({ colorScheme: 'light' })
      await page.setViewportSize({ width: 1000, height: 800 })
    }
  })

  it('sits below Vite\'s error overlay: the overlay is what shows at the panel\'s centre', async () => {
    await send(await tests())
    expect(await panelOpen()).toBe(true)
    server.ws.send({ type: 'error', err: { message: 'checkout: step "pay": stdout does not match', stack: '', plugin: 'clnrm', id: '/p/tests/checkout.clnrm.toml', frame: '' } })
    await page.waitForSelector('vite-error-overlay', { state: 'attached' })
    const layers = await inPanel<{ panel: string; overlay: string; atCentre: string }>(page, `
      const overlay = document.querySelector('vite-error-overlay')
      const rect = root.querySelector('.panel').getBoundingClientRect()
      return { panel: getComputedStyle(host).zIndex, overlay: getComputedStyle(overlay).zIndex, atCentre: document.elementFromPoint(rect.left + rect.width / 2, rect.top + rect.height / 2).tagName.toLowerCase() }`)
    expect(Number(layers.panel)).toBe(PANEL_Z_INDEX)
    expect(Number(layers.overlay)).toBe(VITE_OVERLAY_Z_INDEX)
    expect(Number(layers.panel)).toBeLessThan(Number(layers.overlay))
    expect(layers.atCentre).toBe('vite-error-overlay')
    await page.screenshot({ path: join(artifacts, 'panel-under-overlay.png') })
    await page.evaluate('document.querySelector("vite-error-overlay").remove()')
    // Without the overlay, the panel is what shows there.
    expect(await inPanel(page, 'const rect = root.querySelector(".panel").getBoundingClientRect(); return document.elementFromPoint(rect.left + rect.width / 2, rect.top + rect.height / 2).tagName.toLowerCase()')).toBe('clnrm-results')
  })

  it('is usable by keyboard: Tab reaches the buttons, Enter toggles with aria-expanded, Esc collapses to the badge', async () => {
    await fresh()
    await send(await tests({ checkout: 'pass' }))
    expect(await panelOpen()).toBe(false)
    await page.keyboard.press('Tab')
    expect(await active()).toBe('button.badge')
    expect(await inPanel(page, 'return getComputedStyle(root.activeElement).outlineStyle')).toBe('solid')  // :focus-visible
    expect(await inPanel(page, 'return root.querySelector("button.badge").getAttribute("aria-expanded")')).toBe('false')
    await page.keyboard.press('Enter')
    expect(await panelOpen()).toBe(true)
    expect(await inPanel(page, 'return root.querySelector("button.badge").getAttribute("aria-expanded")')).toBe('true')
    // Into the panel: its close button, reruns, the filter, then each test's own buttons and links.
    const order: string[] = []
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press('Tab')
      order.push(await active())
    }
    expect(order).toEqual(['button.close', 'button.action', 'button.action', 'input.filter', 'button.toggle', 'a', 'button.rerun-test', 'button.toggle'])
    // The second toggle is the checkout test's: Enter folds its details, Enter shows them again.
    const toggle = 'li[data-file="tests/checkout.clnrm.toml"] button.toggle'
    expect(await inPanel(page, `return root.activeElement === root.querySelector('${toggle}')`)).toBe(true)
    expect(await inPanel(page, `return root.querySelector('${toggle}').getAttribute('aria-expanded')`)).toBe('true')
    await page.keyboard.press('Enter')
    expect(await inPanel(page, `return [root.querySelector('${toggle}').getAttribute('aria-expanded'), root.querySelector('li[data-file="tests/checkout.clnrm.toml"] .details').hidden]`)).toEqual(['false', true])
    await page.keyboard.press('Enter')
    expect(await inPanel(page, `return [root.querySelector('${toggle}').getAttribute('aria-expanded'), root.querySelector('li[data-file="tests/checkout.clnrm.toml"] .details').hidden]`)).toEqual(['true', false])
    await page.keyboard.press('Escape')
    expect(await panelOpen()).toBe(false)
    expect(await inPanel(page, 'return root.querySelector("button.badge").getAttribute("aria-expanded")')).toBe('false')
    expect(await active()).toBe('button.badge')
    // The summary is a polite live region, outside the panel so it speaks while collapsed.
    expect(await inPanel(page, 'const s = root.querySelector("[role=status].summary"); return [s.getAttribute("aria-live"), s.textContent, Boolean(s.closest(".panel"))]')).toEqual(['polite', 'clnrm: 3 tests passed, 0 failed', false])
  })

  it('keeps focus, a text selection, and folds across updates (the rows are patched, not rebuilt)', async () => {
    await page.keyboard.press('Enter')
    await send(await tests())
    await page.click('clnrm-results li[data-file="tests/checkout.clnrm.toml"] details.spans summary')
    // Focus on the checkout test's rerun button; select part of the api test's name.
    await inPanel(page, `
      const button = root.querySelector('li[data-file="tests/checkout.clnrm.toml"] button.rerun-test')
      button.focus()
      button.dataset.marked = 'yes'
      const name = root.querySelector('li[data-file="tests/api.clnrm.toml"] .name').firstChild
      document.getSelection().setBaseAndExtent(name, 0, name, 2)`)
    const before = await inPanel<string>(page, 'return root.getSelection().toString()')
    expect(before).toBe('ap')
    // A run starts (checkout running), then ends with new durations and a new failure.
    await send((await tests({ checkout: 'running' })), 2)
    await send(await tests({ apiMs: 95, extraFailures: 1 }), 3)
    expect(await inPanel(page, 'return root.activeElement?.dataset.marked')).toBe('yes')
    expect(await inPanel(page, 'return root.getSelection().toString()')).toBe('ap')
    expect(await inPanel(page, 'return root.getSelection().anchorNode.isConnected')).toBe(true)
    expect(await inPanel(page, 'return root.querySelector(\'li[data-file="tests/api.clnrm.toml"] .duration\').textContent')).toBe('95ms')
    expect(await inPanel(page, 'return root.querySelector(\'li[data-file="tests/checkout.clnrm.toml"] details.spans\').open')).toBe(false)
  })

  it('shows where output was cut', async () => {
    expect(await inPanel(page, 'const n = root.querySelector(\'li[data-file="tests/api.clnrm.toml"] .truncated\'); return [n.textContent, n.getBoundingClientRect().height > 0]')).toEqual(['note: step "dump" stdout of 1.4 MiB shown as its first and last 512 KiB', true])
  })

  it('filters tests by file or name, and keeps the filter across a reload', async () => {
    await send(await tests())
    await page.fill('clnrm-results input.filter', 'CHECK')
    const visible = (): Promise<string[]> => inPanel(page, 'return [...root.querySelectorAll("ul.tests > li")].filter(li => li.getBoundingClientRect().height > 0).map(li => li.dataset.file)')
    expect(await visible()).toEqual(['tests/checkout.clnrm.toml'])
    expect(await inPanel(page, 'return root.querySelector(".count").textContent')).toBe('1 of 3 test files')
    await page.fill('clnrm-results input.filter', 'nothing-like-this')
    expect(await visible()).toEqual([])
    expect(await inPanel(page, 'return root.querySelector("p.empty").textContent')).toBe('no test file or name contains “nothing-like-this”')
    await page.fill('clnrm-results input.filter', 'long-name')
    await page.reload()
    await send(await tests())
    expect(await inPanel(page, 'return root.querySelector("input.filter").value')).toBe('long-name')
    expect(await visible()).toEqual(['tests/a-test-file-with-a-rather-long-name-that-does-not-fit-on-a-phone.clnrm.toml'])
    // Esc in the filter clears it first, and leaves the panel open.
    await page.focus('clnrm-results input.filter')
    await page.keyboard.press('Escape')
    expect(await visible()).toHaveLength(3)
    expect(await panelOpen()).toBe(true)
  })

  it('stays collapsed to the badge across a new failure and a reload once the user collapsed it; the badge turns red', async () => {
    await fresh()
    await send(await tests({ checkout: 'pass' }))
    await page.click('clnrm-results button.badge')
    await page.click('clnrm-results button.close')
    expect(await panelOpen()).toBe(false)
    await send(await tests({ extraFailures: 1 }))
    expect(await panelOpen()).toBe(false)
    expect(await inPanel(page, 'return [host.dataset.status, getComputedStyle(root.querySelector("button.badge")).backgroundColor]')).toEqual(['fail', 'rgb(185, 28, 28)'])
    await page.reload()
    await send(await tests({ checkout: 'pass' }))
    await send(await tests({ extraFailures: 2 }))
    expect(await panelOpen()).toBe(false)
    // Opened again by the user, it stays open across a reload too.
    await page.click('clnrm-results button.badge')
    await page.reload()
    await send(await tests())
    expect(await panelOpen()).toBe(true)
  })

  it('says when no Docker engine answers: no spinner, a red badge, the message and hint first in the panel, announced', async () => {
    await fresh()
    await send(await tests({ checkout: 'pass' }))
    expect(await panelOpen()).toBe(false)
    const list = await tests({ checkout: 'pass' })
    server.ws.send(RESULTS_EVENT, {
      tests: list, counts: { pass: 3, fail: 0, running: 0, warned: 0 }, ready: false,
      engine: { status: 'unreachable', message: 'No Docker engine is reachable at DOCKER_HOST=unix:///nowhere.sock', hint: 'Start Docker, or point DOCKER_HOST at a running engine.' },
    } satisfies ResultsPayload)
    await page.waitForSelector('clnrm-results[data-engine="unreachable"]', { state: 'attached', timeout: 5000 })
    // Losing the engine opens the panel, as a new failure does (the user had not collapsed it).
    expect(await panelOpen()).toBe(true)
    expect(await inPanel(page, `return {
      badge: root.querySelector('button.badge').textContent.replace(/\\s+/g, ' ').trim(),
      background: getComputedStyle(root.querySelector('button.badge')).backgroundColor,
      first: root.querySelector('.panel > :not(header):not(:empty):not([hidden])').textContent,
      summary: root.querySelector('.summary').textContent,
    }`)).toEqual({
      badge: 'clnrm ✓ 3 ✗ 0 no engine',
      background: 'rgb(185, 28, 28)',
      first: 'No Docker engine is reachable at DOCKER_HOST=unix:///nowhere.sock — Start Docker, or point DOCKER_HOST at a running engine. (retrying; the tests run once it answers)',
      summary: 'clnrm: No Docker engine is reachable at DOCKER_HOST=unix:///nowhere.sock; retrying',
    })
    await send(await tests({ checkout: 'pass' }))
    expect(await inPanel(page, 'return [host.dataset.engine, root.querySelector("p.empty").hidden, root.querySelector(".badge .engine").hidden]')).toEqual(['', true, true])
  })

  it('asks the server to rerun all, the failed tests, or one test; says so when nothing failed', async () => {
    reruns.length = 0
    await send(await tests({ checkout: 'pass' }))
    await page.click('clnrm-results button[data-rerun="failed"]')
    expect(await inPanel(page, 'return root.querySelector(".notice").textContent')).toBe('nothing failed: no test to rerun')
    await page.click('clnrm-results button[data-rerun="all"]')
    await expect.poll(() => reruns.length).toBe(1)
    // Only "all" arrived: "failed" with nothing failed sent nothing.
    expect(reruns).toEqual([{ scope: 'all' }])
    expect(await inPanel(page, 'return root.querySelector(".notice").textContent')).toBe('rerunning 3 tests…')
    await send(await tests(), 4)
    await page.click('clnrm-results button[data-rerun="failed"]')
    await page.click('clnrm-results li[data-file="tests/api.clnrm.toml"] button.rerun-test')
    await expect.poll(() => reruns.length).toBe(3)
    expect(reruns.slice(1)).toEqual([{ scope: 'failed' }, { scope: 'test', file: '/p/tests/api.clnrm.toml' }])
    expect(await inPanel(page, 'return root.querySelector(\'li[data-file="tests/api.clnrm.toml"] button.rerun-test\').getAttribute("aria-label")')).toBe('rerun api')
  })

  it('a rerun\'s notice ends with its own reload\'s results, never with a late result of an older reload', async () => {
    const notice = (): Promise<{ text: string; reload?: string }> => inPanel(page, 'const n = root.querySelector(".notice"); return { text: n.textContent, reload: n.dataset.reload }')
    // A fresh page (the requests of the test before were never answered), and a server that answers each, as the plugin does.
    await fresh()
    await page.click('clnrm-results button.badge')
    await send(await tests(), 10)
    // The plugin answers each request with the reload that runs it; here, reload 12 (11 is a save's, still running).
    reruns.length = 0
    answer = () => ({ reloadId: 12, tests: 1 })
    await page.click('clnrm-results li[data-file="tests/api.clnrm.toml"] button.rerun-test')
    await expect.poll(notice).toEqual({ text: 'rerunning api…', reload: '12' })
    // Reload 11 finishes late: its results are not the rerun's.
    await send(await tests({ apiMs: 81 }), 11)
    expect(await notice()).toEqual({ text: 'rerunning api…', reload: '12' })
    await send(await tests({ apiMs: 82 }), 12)
    await expect.poll(notice).toEqual({ text: '', reload: undefined })

    // Two requests in a row: the answers come in order, and the notice is the newest one's.
    let next = 13
    answer = () => ({ reloadId: next++, tests: 3 })
    await page.click('clnrm-results button[data-rerun="all"]')
    await page.click('clnrm-results button[data-rerun="failed"]')
    await expect.poll(notice).toEqual({ text: 'rerunning 1 failed test…', reload: '14' })
    await send(await tests({ apiMs: 83 }), 13)
    expect((await notice()).text).toBe('rerunning 1 failed test…')
    await send(await tests({ apiMs: 84 }), 14)
    await expect.poll(notice).toEqual({ text: '', reload: undefined })

    // The server had nothing to run (the failure was fixed meanwhile): said so, no reload awaited.
    answer = () => ({ tests: 0 })
    await page.click('clnrm-results button[data-rerun="failed"]')
    await expect.poll(notice).toEqual({ text: 'nothing to rerun', reload: undefined })
    answer = undefined
  })
})
