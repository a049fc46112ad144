import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { stripVTControlCharacters } from 'node:util'
import type { Browser, Page } from 'playwright-core'
import type { Logger, ServerOptions, ViteDevServer } from 'vite'
import { createLogger, createServer } from 'vite'
import { launchChromium } from './chromium.ts'
import { writeFiles } from './helpers.ts'

/** This checkout's root. */
export const repo: string = resolve(import.meta.dirname, '..')

/** A `vite.config.ts` that loads the clnrm plugin, as a user writes it. */
export const VITE_CONFIG = 'import { defineConfig } from \'vite\'\nimport { clnrm } from \'clnrm/vite\'\n\nexport default defineConfig({ plugins: [clnrm()] })\n'

/** The script tag that loads the panel's own module into a bare page (served through `/@fs`). */
export const OVERLAY_SCRIPT: string = `<script type="module" src="/@fs${repo}/plugin-vite/client/overlay.ts"></script>`

/**
 * A fresh directory `test/.tmp-<name>-…` inside the repository: there `clnrm/vite` resolves to this
 * package and `/@fs` paths to its files. The caller removes it (`VitePage.close` does).
 */
export function repoTempDir(name: string): string {
  return mkdtempSync(join(repo, 'test', `.tmp-${name}-`))
}

/** A copy of the playground inside the repository, so `clnrm/vite` resolves to this package. */
export function copyPlayground(): string {
  const dir = repoTempDir('playground')
  cpSync(join(repo, 'playground'), dir, { recursive: true })
  return dir
}

/**
 * A small Vite app with the clnrm plugin (an `index.html`, a `vite.config.ts`) plus `files`, which
 * may replace either; written into `dir` (default: a fresh `test/.tmp-vite-dev-…`).
 */
export function viteProject(files: Record<string, string>, dir: string = repoTempDir('vite-dev')): string {
  writeFiles(dir, {
    'index.html': '<!doctype html><html><head><title>app</title></head><body><p id="app">app</p></body></html>\n',
    'vite.config.ts': VITE_CONFIG,
    ...files,
  })
  return dir
}

/**
 * A Vite logger at `level` that also records each message it is given at that level or above,
 * without ANSI colours (CI=true turns them on), into `lines`: what Vite's terminal shows.
 */
export function recordingLogger(lines: string[], level: 'info' | 'warn'): Logger {
  const logger = createLogger(level)
  for (const method of level === 'info' ? ['info', 'warn', 'error'] as const : ['warn', 'error'] as const) {
    const original = logger[method]
    logger[method] = (message, options) => {
      lines.push(stripVTControlCharacters(message))
      original(message, options)
    }
  }
  return logger
}

/** How to serve a project: its config, what its terminal records, more server options. */
export interface ViteOptions {
  /** `false` for a bare page with no config file. @default `<dir>/vite.config.ts` */
  configFile?: false
  /** Records the terminal into this array (see `recordingLogger`); without it Vite is silent. */
  terminal?: string[]
  /** The level the recorded terminal shows. @default 'info' */
  level?: 'info' | 'warn'
  /** Merged over `{ port: 0 }`: a free port, chosen by the system. */
  server?: ServerOptions
}

/** Starts a Vite dev server on `dir` (with its plugins: the clnrm plugin for a project's config) on a free port. */
export async function startVite(dir: string, options: ViteOptions = {}): Promise<ViteDevServer> {
  const server = await createServer({
    root: dir,
    configFile: options.configFile ?? join(dir, 'vite.config.ts'),
    server: { port: 0, ...options.server },
    ...(options.terminal ? { customLogger: recordingLogger(options.terminal, options.level ?? 'info') } : { logLevel: 'silent' }),
  })
  try {
    await server.listen()
  }
  catch (error) {
    await server.close()
    throw error
  }
  return server
}

/** A Vite dev server with a Chromium page on it. */
export interface VitePage {
  dir: string
  server: ViteDevServer
  browser: Browser
  page: Page
  /** Closes the browser and the server, then removes `dir` (unless `keepDir`). */
  close: () => Promise<void>
}

/**
 * Serves `dir` with Vite (`startVite`) and opens its page in Chromium. Close it in `afterAll`;
 * a set-up that fails half-way closes what it started.
 */
export async function openVitePage(dir: string, options: ViteOptions & {
  /** The page's size. @default Playwright's default */
  viewport?: { width: number; height: number }
  /** Leave `dir` for the caller to remove (something else still uses it). */
  keepDir?: boolean
  /** Runs once the server listens, before the page opens (e.g. to answer the page's messages). */
  beforePage?: (server: ViteDevServer) => void
} = {}): Promise<VitePage> {
  let server: ViteDevServer | undefined
  let browser: Browser | undefined
  const close = async (): Promise<void> => {
    await browser?.close()
    await server?.close()
    if (!options.keepDir) rmSync(dir, { recursive: true, force: true })
  }
  try {
    server = await startVite(dir, options)
    options.beforePage?.(server)
    browser = await launchChromium()
    const page = await browser.newPage(options.viewport && { viewport: options.viewport })
    await page.goto(server.resolvedUrls!.local[0]!)
    return { dir, server, browser, page, close }
  }
  catch (error) {
    await close()
    throw error
  }
}

/**
 * Evaluates a function body in `page` with `host` (the `clnrm-results` element) and `root` (its
 * shadow root, where the panel lives) in scope; what the body returns comes back.
 */
export function inPanel<T>(page: Page, body: string): Promise<T> {
  return page.evaluate(`(() => { const host = document.querySelector('clnrm-results'); const root = host.shadowRoot; ${body} })()`) as Promise<T>
}

/** Replaces the first `from` in `file` by `to`, as a save in an editor; throws when `file` lacks `from`. */
export function edit(file: string, from: string, to: string): void {
  const text = readFileSync(file, 'utf8')
  if (!text.includes(from)) throw new Error(`${file} does not contain ${from}`)
  writeFileSync(file, text.replace(from, to))
}
