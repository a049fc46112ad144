import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ResultsPayload, TestView } from '../plugin-vite/protocol.ts'
import { spansView } from '../plugin-vite/views.ts'
import { failing, held, spanIdOf } from './otel-fixtures.ts'
import type { VitePage } from './vite-project.ts'
import { writeFiles } from './helpers.ts'
import { OVERLAY_SCRIPT, openVitePage, repo, repoTempDir } from './vite-project.ts'

const artifacts = join(repo, 'test/artifacts')

// The panel's own module in a bare Vite page, fed hand-made results: the waterfall is checked
// against the contract alone. browser.test.ts drives the same panel with the playground's real spans.
describe('the panel\'s span waterfall, in a real browser', () => {
  let page: Page
  let vite: VitePage | undefined
  beforeAll(async () => {
    const dir = repoTempDir('waterfall')
    writeFiles(dir, { 'index.html': `<!doctype html><html><head><title>waterfall</title></head><body style="background:#fff"><h1>app</h1>${OVERLAY_SCRIPT}</body></html>` })
    vite = await openVitePage(dir, { configFile: false, server: { fs: { allow: [repo] } }, viewport: { width: 1000, height: 800 } })
    page = vite.page
    await page.waitForSelector('clnrm-results', { state: 'attached' })
  }, 120_000)
  afterAll(() => vite?.close())

  async function show(tests: TestView[]): Promise<void> {
    const payload: ResultsPayload = {
      tests,
      counts: { pass: tests.filter(t => t.status === 'pass').length, fail: tests.filter(t => t.status === 'fail').length, running: 0, warned: 0 },
      ready: true,
      lastReload: { id: 3, changed: ['tests/checkout.clnrm.toml'], totalLatencyMs: 180, phases: [['detect', 2], ['debounce', 30], ['run', 60], ['settle', 52], ['display', 1]].map(([name, ms]) => ({ name: name as string, ms: ms as number })), templateCacheHitRate: 1, configCacheHitRate: 1, containerReuseRate: 1 },
    }
    await page.evaluate(`document.querySelector('clnrm-results').update(${JSON.stringify(payload)})`)
  }
  const view = async (name: string, status: TestView['status'], verdict: typeof failing): Promise<TestView> => ({
    file: `/p/tests/${name}.clnrm.toml`,
    relative: `tests/${name}.clnrm.toml`,
    name,
    status,
    durationMs: 120,
    ...await spansView(verdict, async () => ({ file: `/p/tests/${name}.clnrm.toml`, line: 14, column: 1 })),
  })
  const failingRows = 'clnrm-results li[data-file="tests/checkout.clnrm.toml"] .waterfall .span-row'

  it('draws one bar per span, a colour per service with a legend, and highlights the failing rule\'s span', async () => {
    // A span name with markup: the panel shows it as text.
    const tricky = { ...held, spans: held.spans.map(s => (s.name === 'late.flush' ? { ...s, name: '<img src=x onerror="window.pwned=1">' } : s)) }
    await show([await view('checkout', 'fail', failing), await view('<b>inventory</b>', 'pass', tricky)])
    await page.waitForSelector(failingRows)
    // Read in the page (the test's own types have no DOM).
    const rows = await page.evaluate(`[...document.querySelector('clnrm-results').shadowRoot.querySelectorAll('li[data-file="tests/checkout.clnrm.toml"] .waterfall .span-row')].map((el) => {
      const bar = el.querySelector('.bar')
      const track = el.querySelector('.track').getBoundingClientRect()
      const box = bar.getBoundingClientRect()
      return {
        id: el.dataset.spanId,
        service: el.dataset.service,
        text: el.textContent.replace(/\\s+/g, ' ').trim(),
        colour: getComputedStyle(bar).backgroundColor,
        outline: getComputedStyle(bar).outlineStyle,
        highlighted: el.hasAttribute('data-highlighted'),
        left: (box.left - track.left) / track.width,
        width: box.width / track.width,
      }
    })`) as Array<{ id: string; service: string; text: string; colour: string; outline: string; highlighted: boolean; left: number; width: number }>
    expect(rows).toHaveLength(failing.spans.length)
    // The service is written in each row, not only coloured.
    expect(rows.map(r => r.text)).toEqual([
      'GET /checkout web 12ms',
      'checkout.validate web 2.0ms',
      '▸ checkout.charge (error) payments 5.5ms',
      'db\\x1b[2Jquery payments 0.40ms',
      'late.flush worker 2.0ms',
    ])
    const colourOf = new Map(rows.map(r => [r.service, r.colour]))
    expect(new Set(colourOf.values()).size).toBe(3)
    for (const r of rows) expect(r.colour).toBe(colourOf.get(r.service))
    // Bars sit by start and duration on a 0..15 ms axis (the last span ends at 15 ms).
    expect(rows[0]!.left).toBeCloseTo(0, 2)
    expect(rows[0]!.width).toBeCloseTo(12.25 / 15, 2)
    expect(rows[2]!.left).toBeCloseTo(4 / 15, 2)
    expect(rows[4]!.left + rows[4]!.width).toBeCloseTo(1, 2)
    // Exactly the span the failed rule names is highlighted.
    expect(rows.filter(r => r.highlighted).map(r => r.id)).toEqual([spanIdOf('3')])
    expect(rows[2]!.outline).toBe('solid')
    expect(rows[0]!.outline).toBe('none')
    const legend = await page.$$eval('clnrm-results li[data-file="tests/checkout.clnrm.toml"] .legend > span', els => els.map(e => e.textContent))
    expect(legend).toEqual(['web', 'payments', 'worker'])
    const rule = await page.textContent('clnrm-results li[data-file="tests/checkout.clnrm.toml"] .rule-failure')
    expect(rule?.replace(/\s+/g, ' ')).toContain('✗ expect.span[checkout.charge].attrs.all · tests/checkout.clnrm.toml:14 expected payment.method = "card" actual no checkout.charge span has payment.method = "card" closest checkout.charge in payments (0000000000000003) ≠ payment.method is "cash", not "card"')
    expect(await page.textContent('clnrm-results li[data-file="tests/checkout.clnrm.toml"] details.spans summary')).toBe('1 of 3 span rules failed over 5 spans · settled in 52ms')
    // The passing test: its rules held, its names shown as text, no script ran.
    const other = await page.$$eval('clnrm-results li[data-status]', els => els.map(e => ({ file: e.getAttribute('data-file'), summary: e.querySelector('summary')?.textContent, names: [...e.querySelectorAll('.span-name')].map(n => n.textContent), imgs: e.querySelectorAll('img').length })))
    expect(other[1]).toEqual({ file: 'tests/<b>inventory</b>.clnrm.toml', summary: '3 span rules held over 5 spans · settled in 40ms', names: expect.arrayContaining(['checkout.charge (error)', '<img src=x onerror="window.pwned=1">']), imgs: 0 })
    expect(await page.evaluate('window.pwned')).toBeUndefined()
    expect(await page.textContent('clnrm-results footer.timings')).toContain('run 60 · settle 52 · display 1')
    mkdirSync(artifacts, { recursive: true })
    await page.screenshot({ path: join(artifacts, 'panel-waterfall.png') })
  })

  it('keeps a waterfall the user folded folded across updates', async () => {
    await page.click('clnrm-results li[data-file="tests/checkout.clnrm.toml"] details.spans summary')
    await show([await view('checkout', 'fail', failing)])
    expect(await page.$eval('clnrm-results li[data-file="tests/checkout.clnrm.toml"] details.spans', d => d.hasAttribute('open'))).toBe(false)
    await page.click('clnrm-results li[data-file="tests/checkout.clnrm.toml"] details.spans summary')
    await show([await view('checkout', 'fail', failing)])
    expect(await page.$eval('clnrm-results li[data-file="tests/checkout.clnrm.toml"] details.spans', d => d.hasAttribute('open'))).toBe(true)
  })
})
