import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { launchChromium } from './chromium.ts'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitUntil } from './cli-process.ts'
import { clnrmContainers, IMAGE } from './engine.ts'
import { tempDir, writeFiles } from './helpers.ts'
import { freePort } from './registry.ts'

const root = resolve(import.meta.dirname, '..')
const vitestCli = join(root, 'node_modules/vitest/vitest.mjs')

// A user's project, as in vitest-plugin.test.ts: `clnrm/vitest` is this checkout's build. The
// first line is a comment, so a describe located at `[meta]` (line 2) differs from a default 1:1.
const files: Record<string, string> = {
  'package.json': '{ "name": "vitest-ui-user", "private": true, "type": "module" }\n',
  'vitest.config.ts': `import { defineConfig } from 'vitest/config'
import { clnrm } from 'clnrm/vitest'

export default defineConfig({ plugins: [clnrm()] })
`,
  'tests/pass.clnrm.toml': `# passes
[meta]
name = "passing"

[services.box]
image = "${IMAGE}"

[[steps]]
name = "say hello"
run = "echo hello"
expected_output_regex = "^hello"

[[steps]]
name = "say bye"
run = "echo bye"
expected_output_regex = "^bye"
`,
  'tests/fail.clnrm.toml': `# fails at its second step
[meta]
name = "failing"

[services.box]
image = "${IMAGE}"

[[steps]]
name = "first"
run = "echo one"

[[steps]]
name = "wrong output"
run = "echo two"
expected_output_regex = "^three"
`,
}

/** 1-based line of the first line of `file`'s fixture text containing `needle`, plus `offset`. */
function lineOf(file: string, needle: string, offset = 0): number {
  const index = files[file]!.split('\n').findIndex(l => l.includes(needle))
  if (index < 0) throw new Error(`${file} has no line with ${needle}`)
  return index + 1 + offset
}

describe('clnrm tests in vitest --ui, driven in Chromium', () => {
  let dir: string
  let cleanup: (() => Promise<void>) | undefined
  let vitest: ChildProcess
  let output = ''
  let exited: Promise<number | null>
  let browser: Browser
  let page: Page
  // What the UI asked Vitest's server to open in the editor (answered here, so no editor starts).
  const opened: string[] = []

  beforeAll(async () => {
    const made = await tempDir('clnrm-vitest-ui-')
    cleanup = made.cleanup
    dir = realpathSync(made.dir)
    writeFiles(dir, files)
    // A checkout whose node_modules predates the devDependency: say so instead of a timeout.
    if (!existsSync(join(root, 'node_modules/@vitest/ui/package.json'))) throw new Error('@vitest/ui (a devDependency) is not installed: run npm install')
    mkdirSync(join(dir, 'node_modules/@vitest'), { recursive: true })
    symlinkSync(join(root, 'node_modules/vitest'), join(dir, 'node_modules/vitest'))
    // Vitest checks that @vitest/ui resolves from the project's root before serving the UI.
    symlinkSync(join(root, 'node_modules/@vitest/ui'), join(dir, 'node_modules/@vitest/ui'))
    symlinkSync(root, join(dir, 'node_modules/clnrm'))

    // A port nobody listens on now (Vitest's UI server binds it right after).
    const port = await freePort()
    // --watch: without a TTY on stdin Vitest would run once and exit, closing the UI.
    // detached: its own process group, so the end of the test can signal Vitest and its workers.
    vitest = spawn(process.execPath, [vitestCli, '--watch', '--ui', '--open=false', '--api.port', String(port), '--api.host', '127.0.0.1'], {
      cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    })
    vitest.stdout!.on('data', (d: Buffer) => void (output += d.toString()))
    vitest.stderr!.on('data', (d: Buffer) => void (output += d.toString()))
    exited = new Promise(done => vitest.once('exit', code => done(code)))
    const url = `http://127.0.0.1:${port}/__vitest__/`
    await waitUntil(() => output.includes(`UI started at ${url}`) || vitest.exitCode !== null, 'the UI\'s URL', 60_000)
    if (!output.includes(`UI started at ${url}`)) throw new Error(`vitest --ui exited (${vitest.exitCode}) without serving the UI:\n${output}`)

    browser = await launchChromium()
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
    // The UI links a web font; nothing outside this machine is reachable, so fail it at once.
    await page.route(url => url.hostname !== '127.0.0.1', route => route.abort())
    await page.route('**/__open-in-editor?**', async (route) => {
      opened.push(new URL(route.request().url()).searchParams.get('file') ?? '')
      await route.fulfill({ status: 200, body: '' })
    })
    await page.goto(url)
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    // A failed assertion must not leave Vitest running (the last test ends it gracefully).
    if (vitest?.exitCode === null && vitest.signalCode === null) {
      try {
        process.kill(-vitest.pid!, 'SIGKILL')
      }
      catch {}
    }
    await cleanup?.()
  })

  const row = (name: string): ReturnType<Page['locator']> => page.locator(`[data-testid=explorer-item][aria-label="${name}"]`)

  /** The explorer's rows on screen, top to bottom, as `name state`. */
  const shown = (): Promise<string[]> => page.$$eval('[data-testid=explorer-item]', rows => rows
    // The virtual list parks the rows of a collapsed entry far above the view.
    .filter(r => r.getBoundingClientRect().top >= 0)
    .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
    .map((r) => {
      // The state icon is an attribute (UnoCSS attributify): i-carbon:close for failed, :checkmark for passed.
      const icons = [...r.querySelectorAll('*')].flatMap(e => e.getAttributeNames())
      const state = icons.includes('i-carbon:close') ? 'failed' : icons.includes('i-carbon:checkmark') ? 'passed' : 'other'
      return `${r.getAttribute('aria-label')} ${state}`
    }))

  /**
   * Opens or closes a file's entry in the explorer (a click on the row toggles it). The explorer
   * may still be re-rendering after a run ends and then drops a click (seen once under CI load),
   * so a click that changed nothing within two seconds is made again.
   */
  async function setOpen(file: string, open: boolean): Promise<void> {
    const isOpen = async (): Promise<boolean> => (await row(file).locator('.i-carbon\\:chevron-down').count()) > 0
    for (let attempt = 0; attempt < 5 && (await isOpen()) !== open; attempt++) {
      await row(file).click()
      for (const end = Date.now() + 2_000; Date.now() < end && (await isOpen()) !== open;) await page.waitForTimeout(100)
    }
    await expect.poll(isOpen).toBe(open)
  }

  /**
   * The code view's editor (CodeMirror 5, reached through its element): the 1-based line of its
   * cursor and that line's text, and the text of the widgets drawn under line `widgetLine`.
   * A string, as the other browser tests do: the tests' types have no DOM.
   */
  const editor = (widgetLine: number): Promise<{ line: number; text: string; widgets: string[] }> => page.evaluate(`(() => {
    const cm = document.querySelector('[data-testid=editor] .CodeMirror')?.CodeMirror
    if (!cm) return { line: 0, text: '', widgets: [] }
    const line = cm.getCursor().line
    return { line: line + 1, text: cm.getLine(line), widgets: (cm.lineInfo(${widgetLine - 1})?.widgets ?? []).map(w => w.node.textContent) }
  })()`)

  it('lists each clnrm file with its clnrm test as a suite and its steps as tests, each with its state', async () => {
    await expect.poll(shown, { timeout: 90_000 }).toEqual([
      'tests/fail.clnrm.toml failed',
      'failing failed',
      'first passed',
      'wrong output failed',
      'tests/pass.clnrm.toml passed',
      'passing passed',
      'say hello passed',
      'say bye passed',
    ])
    // Collapsed, only the files; expanding one shows its describe and steps.
    await setOpen('tests/fail.clnrm.toml', false)
    await setOpen('tests/pass.clnrm.toml', false)
    await expect.poll(shown).toEqual(['tests/fail.clnrm.toml failed', 'tests/pass.clnrm.toml passed'])
    await setOpen('tests/fail.clnrm.toml', true)
    await expect.poll(shown).toEqual(['tests/fail.clnrm.toml failed', 'failing failed', 'first passed', 'wrong output failed', 'tests/pass.clnrm.toml passed'])
    await setOpen('tests/pass.clnrm.toml', true)
  }, 120_000)

  it('shows the failing step\'s clnrm message, and opens the step\'s and the failing key\'s TOML lines in the code view and the editor', async () => {
    const file = 'tests/fail.clnrm.toml'
    const stepLine = lineOf(file, 'name = "wrong output"', -1)
    const keyLine = lineOf(file, 'expected_output_regex = "^three"')
    expect(readFileSync(join(dir, file), 'utf8').split('\n')[stepLine - 1]).toBe('[[steps]]')

    // The report: clnrm's failure and where its key is written.
    await row('wrong output').click()
    const report = page.locator('[data-testid=report]')
    await expect.poll(() => report.textContent()).toContain('StepFailure: stdout does not match\nexpected_output_regex = "^three"')
    expect(await report.locator('[data-testid=stack]').first().textContent()).toContain(`/${file}:${keyLine}:1`)

    // "Open in editor" of the test's header: the TOML file.
    await page.getByRole('button', { name: 'Open in editor' }).click()
    await expect.poll(() => opened.at(-1)).toBe(join(dir, file))

    // The stack's link opens the code view at the failing key.
    await report.locator('[data-testid=stack] [aria-label="Open in Editor"]').first().click()
    await expect.poll(() => page.url()).toContain(`view=editor&line=${keyLine}`)
    await expect.poll(async () => (await editor(keyLine)).line).toBe(keyLine)
    expect((await editor(keyLine)).text).toBe('expected_output_regex = "^three"')

    // "View Test Source Code" of the step: the code view at its [[steps]] line, with the failure
    // drawn under the failing key, whose link asks for the editor at that line and column.
    await row('wrong output').hover()
    await row('wrong output').locator('[data-testid=btn-open-details]').click()
    await expect.poll(() => page.url()).toContain(`view=editor&line=${stepLine}`)
    await expect.poll(async () => (await editor(keyLine)).line).toBe(stepLine)
    expect((await editor(keyLine)).text).toBe('[[steps]]')
    // The code view draws the error widget after it scrolls there: wait for it.
    await expect.poll(async () => (await editor(keyLine)).widgets).toEqual([expect.stringContaining('^ StepFailure: stdout does not match\nexpected_output_regex = "^three"')])
    await page.locator('[data-testid=editor] [aria-label="Open in Editor"]').click()
    await expect.poll(() => opened.at(-1)).toBe(`${join(dir, file)}:${keyLine}:1`)

    // The describe ("View Suite Source Code"): the [meta] line; a passing step: its own [[steps]].
    await row('failing').hover()
    await row('failing').locator('[data-testid=btn-open-details]').click()
    await expect.poll(async () => (await editor(1)).line).toBe(lineOf(file, '[meta]'))
    await row('say bye').hover()
    await row('say bye').locator('[data-testid=btn-open-details]').click()
    const byeLine = lineOf('tests/pass.clnrm.toml', 'name = "say bye"', -1)
    await expect.poll(() => page.url()).toContain(`view=editor&line=${byeLine}`)
    await expect.poll(async () => (await editor(1)).line).toBe(byeLine)
  }, 60_000)

  it('updates in watch mode when a clnrm file is saved with a failing expectation', async () => {
    const file = join(dir, 'tests/pass.clnrm.toml')
    writeFileSync(file, readFileSync(file, 'utf8').replace('"^bye"', '"^later"'))
    await expect.poll(shown, { timeout: 60_000 }).toEqual([
      'tests/fail.clnrm.toml failed',
      'failing failed',
      'first passed',
      'wrong output failed',
      'tests/pass.clnrm.toml failed',
      'passing failed',
      'say hello passed',
      'say bye failed',
    ])
    await row('say bye').click()
    await page.locator('[data-testid=btn-report]').click()
    await expect.poll(() => page.locator('[data-testid=report]').textContent()).toContain('expected_output_regex = "^later"')
  }, 90_000)

  it('leaves no container of the Vitest process once its process group is signalled', async () => {
    // The containers are the main process's (labelled with its pid), warm between runs.
    expect(clnrmContainers(vitest.pid).length).toBeGreaterThan(0)
    process.kill(-vitest.pid!, 'SIGTERM')
    const started = Date.now()
    await exited
    expect(Date.now() - started).toBeLessThan(15_000)
    expect(clnrmContainers(vitest.pid)).toEqual([])
  }, 30_000)
})
