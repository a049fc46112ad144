import type { Browser } from 'playwright-core'
import { chromium } from 'playwright-core'

/** Debian's Chromium, headless, as every browser test drives it (no Playwright download here). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  })
}
