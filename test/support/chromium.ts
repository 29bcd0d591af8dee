/**
 * Debian's Chromium as the browser tests launch it (playwright-core), and whether they run: in CI a
 * missing browser fails the run (a skipped browser test is not a passed one); elsewhere the test is
 * skipped, saying how to get the browser.
 */
import { existsSync } from 'node:fs'

export const CHROMIUM = '/usr/bin/chromium'
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
]

export const chromiumMissing = !existsSync(CHROMIUM)

export const chromiumSkip =
  chromiumMissing && !process.env.CI
    ? `${CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium) to run the browser test`
    : false
