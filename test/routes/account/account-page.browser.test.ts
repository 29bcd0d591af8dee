/**
 * The account page (/account) in a real browser: Debian's Chromium driven by playwright-core,
 * with Chromium's own virtual authenticator (DevTools' WebAuthn domain) as the passkey device.
 * One person's visit, clicking what they would click: sign in with the password, turn on an
 * authenticator app, add a passkey, then sign in each way the account now allows, end another
 * session and remove the passkey. What the page shows and what the database holds are both
 * checked, and the page has to work under its Content-Security-Policy with nothing loaded from
 * anywhere but the server.
 *
 * The server listens on localhost with PUBLIC_URL pointing there: passkeys are bound to the
 * origin and RP ID (localhost) the configuration derives from it. One engine (SQLite) is enough:
 * the API on the other engines is covered by the other test files.
 *
 * Screenshots of each step are saved under test-artifacts/account/ (git-ignored).
 */
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { chromium, type Browser, type CDPSession, type Locator, type Page } from 'playwright-core'
import { buildApp } from '../../../src/app.js'
import { totpStep } from '../../../src/auth/totp.js'
import { CHROMIUM, CHROMIUM_ARGS, chromiumMissing, chromiumSkip } from '../../support/chromium.js'
import { register, testConfig, uniqueUser } from '../../support/app.js'
import { codeAt, loginRequest } from '../mfa/support.js'
import { passkeyRows, recoveryCodeRows, sessionRows } from '../passkeys/support.js'
import { freePort } from '../../support/processes.js'

const SCREENSHOTS = path.resolve('test-artifacts', 'account')
/** Generous: the machine's cores are shared with the rest of the suite. */
const UI_TIMEOUT_MS = 30_000
const OTHER_DEVICE = 'Other device/1.0'

const skip = chromiumSkip

/** Reports the page's Content-Security-Policy violations on the console (init scripts are exempt). */
const REPORT_CSP_VIOLATIONS = `document.addEventListener('securitypolicyviolation', (event) =>
  console.error('CSP violation: ' + event.violatedDirective + ' blocked ' + event.blockedURI))`

/** What the page did: every URL it requested, what failed, what the policy refused, what threw. */
interface Recording {
  requests: string[]
  failed: string[]
  cspViolations: string[]
  pageErrors: string[]
}

function record(page: Page): Recording {
  const recording: Recording = { requests: [], failed: [], cspViolations: [], pageErrors: [] }
  page.on('request', (request) => recording.requests.push(request.url()))
  page.on('requestfailed', (request) =>
    recording.failed.push(`${request.url()}: ${request.failure()?.errorText}`),
  )
  page.on('console', (message) => {
    if (/CSP violation|Refused to|Content[- ]Security[- ]Policy/i.test(message.text()))
      recording.cspViolations.push(message.text())
  })
  page.on('pageerror', (error) => recording.pageErrors.push(String(error)))
  return recording
}

/**
 * Chromium's virtual authenticator for this page: a platform authenticator holding discoverable
 * credentials, verifying its user and approving every request at once (no prompt in headless).
 */
async function addVirtualAuthenticator(cdp: CDPSession) {
  await cdp.send('WebAuthn.enable')
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  })
  return authenticatorId
}

let shots = 0
/** A screenshot of the whole page, numbered in the order of the visit. */
const screenshot = (page: Page, name: string) =>
  page.screenshot({
    path: path.join(SCREENSHOTS, `${String(++shots).padStart(2, '0')}-${name}.png`),
    fullPage: true,
  })

/** The text of an element, once it is visible. */
async function visibleText(locator: Locator): Promise<string> {
  await locator.waitFor({ state: 'visible' })
  return (await locator.innerText()).trim()
}

/**
 * The status line once it says `expected`. It is visible while empty and keeps the previous step's
 * message until the page has its answer, so reading it right after a click races the request.
 */
async function statusSays(status: Locator, expected: string) {
  await status
    .filter({ hasText: expected })
    .waitFor({ state: 'visible' })
    .catch(() => undefined) // the assertion below says what it said instead
  assert.equal((await status.innerText()).trim(), expected)
}

describe('the account page in a browser', { skip }, () => {
  let app: FastifyInstance
  let origin: string
  let browser: Browser

  before(async () => {
    if (chromiumMissing)
      throw new Error(`${CHROMIUM} is missing, and CI must run the browser test: apt-get install -y chromium`)
    mkdirSync(SCREENSHOTS, { recursive: true })
    const port = await freePort()
    origin = `http://localhost:${port}`
    const config = testConfig({ DATABASE_URL: 'sqlite::memory:', PORT: String(port), PUBLIC_URL: origin })
    assert.equal(config.webauthnRpId, 'localhost')
    assert.deepEqual(config.webauthnOrigins, [origin])
    app = await buildApp(config, { logger: false })
    await app.listen({ host: '127.0.0.1', port })
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 })
  })

  after(async () => {
    await browser?.close()
    await app?.close()
  })

  test('a user turns on an authenticator app and a passkey, signs in with each, ends a session and removes the passkey', async () => {
    const user = await register(app, uniqueUser())
    // A session on another device, started before any second factor: the one the user ends later.
    const elsewhere = await loginRequest(app, user.email, user.password, OTHER_DEVICE)
    assert.equal(elsewhere.statusCode, 200, elsewhere.body)

    const context = await browser.newContext({ viewport: { width: 1000, height: 900 } })
    context.setDefaultTimeout(UI_TIMEOUT_MS)
    await context.addInitScript(REPORT_CSP_VIOLATIONS)
    const page = await context.newPage()
    const recording = record(page)
    const cdp = await context.newCDPSession(page)
    const authenticatorId = await addVirtualAuthenticator(cdp)

    const visit = new Visit(app, page, user)
    const answer = await page.goto(`${origin}/account`)
    const csp = answer?.headers()['content-security-policy'] ?? ''
    assert.match(csp, /script-src 'self'(;|$)/)
    assert.match(csp, /connect-src 'self'(;|$)/)
    await page.locator('#sign-in').waitFor({ state: 'visible' })
    await screenshot(page, 'sign-in')

    // 1. The password alone, as the account has no second factor yet.
    await visit.signInWithPassword(user.email)
    await visit.assertSignedIn()
    assert.equal(await visibleText(page.locator('#totp-status')), 'Off.')
    assert.equal(await visibleText(page.locator('#passkey-list')), 'No passkey yet.')
    assert.equal(await page.locator('#session-list > li').count(), 2)
    assert.equal(await visit.newestAmr(), 'pwd')
    await screenshot(page, 'signed-in')

    const { secret } = await visit.enrolTotp()
    await visit.addAndRenamePasskey()
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId })
    assert.deepEqual(
      credentials.map(({ isResidentCredential, rpId }) => ({ isResidentCredential, rpId })),
      [{ isResidentCredential: true, rpId: 'localhost' }],
      'the virtual authenticator holds one discoverable credential for localhost',
    )
    const recoveryCodes = await visit.regenerateRecoveryCodes()

    // 2. Each way in the account now has: the password then a passkey, a passkey alone, the
    // password then a code of the app, the password then a recovery code.
    await visit.signOut()
    await visit.signInWithPassword(user.name)
    await visit.secondStepOffers()
    await page.getByRole('button', { name: 'Use a passkey' }).click()
    await visit.assertSignedIn()
    assert.equal(await visit.newestAmr(), 'pwd hwk mfa')
    await screenshot(page, 'signed-in-with-password-and-passkey')

    await visit.signOut()
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    await visit.assertSignedIn()
    assert.equal(await visit.newestAmr(), 'hwk user mfa')
    await screenshot(page, 'signed-in-with-passkey')

    await visit.signOut()
    await visit.signInWithPassword(user.email)
    await page
      .locator('#second-step')
      .getByLabel('Code of your authenticator app')
      .fill(await visit.nextCode(secret))
    await page.getByRole('button', { name: 'Verify the code' }).click()
    await visit.assertSignedIn()
    assert.equal(await visit.newestAmr(), 'pwd otp mfa')

    await visit.signOut()
    await visit.signInWithPassword(user.email)
    await page.locator('#second-step').getByLabel('Or one of your recovery codes').fill(recoveryCodes[0]!)
    await page.getByRole('button', { name: 'Use the recovery code' }).click()
    await visit.assertSignedIn()
    assert.equal(await visit.newestAmr(), 'pwd mfa')
    const used = (await recoveryCodeRows(app, user.id)).filter((row) => row.used_at !== null)
    assert.equal(used.length, 1)
    assert.match(await visibleText(page.locator('#recovery-status')), /^9 unused recovery codes left\.$/)
    await screenshot(page, 'signed-in-with-recovery-code')

    // 3. Sessions: this browser's and the other device's; every other one was signed out.
    await visit.endOtherSession()
    // 4. The passkey goes, then the authenticator app: the account is back to the password alone.
    await visit.removePasskey()
    await visit.turnOffTotp()

    assert.ok(recording.requests.includes(`${origin}/vendor/simplewebauthn-browser.js`))
    const elsewhereRequests = recording.requests.filter((url) => new URL(url).origin !== origin)
    assert.deepEqual(elsewhereRequests, [], `requests that left ${origin}`)
    assert.deepEqual(recording.failed, [], 'requests that failed')
    assert.deepEqual(recording.cspViolations, [], 'Content-Security-Policy violations')
    assert.deepEqual(recording.pageErrors, [], 'errors thrown by the page')
    await context.close()
  })
})

/** The steps of the visit: clicks on the page, and checks of what the database then holds. */
class Visit {
  constructor(
    private readonly app: FastifyInstance,
    private readonly page: Page,
    private readonly user: { id: number; name: string; email: string; password: string },
  ) {}

  private get status() {
    return this.page.locator('#status')
  }

  async signInWithPassword(username: string) {
    const signIn = this.page.locator('#sign-in')
    await signIn.getByLabel('Name or email').fill(username)
    await signIn.getByLabel('Password').fill(this.user.password)
    await signIn.getByRole('button', { name: 'Sign in', exact: true }).click()
  }

  async assertSignedIn() {
    await this.page.locator('#account').waitFor({ state: 'visible' })
    assert.equal(await visibleText(this.page.locator('#user-name')), this.user.name)
    assert.equal(await visibleText(this.page.locator('#user-email')), this.user.email)
    // The last list the page loads: once it is there, the page is done loading.
    await this.page.locator('#session-list > li').first().waitFor()
  }

  async signOut() {
    const before = await sessionRows(this.app, this.user.id)
    await this.page.getByRole('button', { name: 'Sign out' }).click()
    await this.page.locator('#sign-in').waitFor({ state: 'visible' })
    await statusSays(this.status, 'You are signed out.')
    // The session the page had is ended, and nothing of the account stays on the page.
    const after = await sessionRows(this.app, this.user.id)
    assert.equal(after.at(-1)?.id, before.at(-1)?.id)
    assert.notEqual(after.at(-1)?.revoked_at, null)
    assert.equal(await this.page.locator('#passkey-list > li, #session-list > li').count(), 0)
  }

  /** How the newest session of the user was authenticated (`amr`, as stored). */
  async newestAmr() {
    return (await sessionRows(this.app, this.user.id)).at(-1)?.amr
  }

  async secondStepOffers() {
    const step = this.page.locator('#second-step')
    await step.waitFor({ state: 'visible' })
    await step.getByLabel('Code of your authenticator app').waitFor()
    await step.getByLabel('Or one of your recovery codes').waitFor()
    await step.getByRole('button', { name: 'Use a passkey' }).waitFor()
    await screenshot(this.page, 'second-step')
  }

  /** The code the app shows now, or the next one when the current step's code was already used. */
  async nextCode(secret: string) {
    const factor = await this.app.db
      .selectFrom('totp_factors')
      .select('last_used_step')
      .where('user_id', '=', this.user.id)
      .executeTakeFirstOrThrow()
    return codeAt(secret, Math.max(totpStep(Date.now()), Number(factor.last_used_step) + 1))
  }

  async enrolTotp() {
    const { page } = this
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click()
    const secret = await visibleText(page.locator('#totp-secret'))
    assert.match(secret, /^[A-Z2-7]{32}$/)
    const qr = page.getByRole('img', { name: 'QR code of the key' })
    await qr.waitFor()
    assert.equal(await qr.evaluate((svg) => svg.namespaceURI), 'http://www.w3.org/2000/svg')
    assert.equal(await qr.locator('path').count(), 2)
    await screenshot(page, 'totp-qr-code')

    await page.getByLabel('The 6-digit code the app shows now').fill(codeAt(secret, totpStep(Date.now())))
    await page.getByRole('button', { name: 'Turn on' }).click()
    const codes = await this.shownRecoveryCodes()
    await statusSays(this.status, 'The authenticator app is on.')
    assert.match(await visibleText(page.locator('#totp-status')), /^On\b/)
    assert.match(await visibleText(page.locator('#recovery-codes .note')), /not shown again/)
    assert.equal(await page.locator('#totp-setup').isHidden(), true)
    await screenshot(page, 'totp-on-recovery-codes')
    await page.getByRole('button', { name: 'I have saved them' }).click()

    const factor = await this.app.db
      .selectFrom('totp_factors')
      .select(['confirmed_at', 'secret_encrypted'])
      .where('user_id', '=', this.user.id)
      .executeTakeFirstOrThrow()
    assert.notEqual(factor.confirmed_at, null)
    assert.ok(!factor.secret_encrypted.includes(secret), 'the secret is stored encrypted')
    assert.equal((await recoveryCodeRows(this.app, this.user.id)).length, 10)
    return { secret, codes }
  }

  private async shownRecoveryCodes() {
    const items = this.page.locator('#recovery-list > li')
    await items.first().waitFor()
    const codes = await items.allInnerTexts()
    assert.equal(codes.length, 10)
    for (const code of codes) assert.match(code, /^[0-9a-z]{4}(-[0-9a-z]{4}){3}$/)
    return codes
  }

  async addAndRenamePasskey() {
    const { page } = this
    await page.getByLabel('Name of a new passkey (optional)').fill('Laptop')
    await page.getByRole('button', { name: 'Add a passkey' }).click()
    await statusSays(this.status, 'The passkey “Laptop” is added.')
    await page.locator('#passkey-list > li', { hasText: 'Laptop' }).waitFor()
    // TOTP came first: the recovery codes are not shown again for the passkey.
    assert.equal(await page.locator('#recovery-codes').isHidden(), true)
    await screenshot(page, 'passkey-added')

    await page.getByRole('button', { name: 'Rename Laptop' }).click()
    await page.getByLabel('New name of Laptop').fill('Work laptop')
    await page.getByRole('button', { name: 'Save' }).click()
    await page.getByRole('button', { name: 'Remove Work laptop' }).waitFor()
    await statusSays(this.status, 'The passkey is renamed.')
    const rows = await passkeyRows(this.app, this.user.id)
    assert.deepEqual(
      rows.map((row) => row.name),
      ['Work laptop'],
    )
    await screenshot(page, 'passkey-renamed')
  }

  /** This session began with the password alone: the page asks for it before new codes. */
  async regenerateRecoveryCodes() {
    const { page } = this
    const before = await recoveryCodeRows(this.app, this.user.id)
    await page.getByRole('button', { name: 'Get new recovery codes' }).click()
    const dialog = page.getByRole('dialog')
    await dialog.waitFor()
    assert.equal(await visibleText(dialog.locator('p')), 'This change needs your password.')
    await screenshot(page, 'password-asked')
    await dialog.getByLabel('Password').fill(this.user.password)
    await dialog.getByRole('button', { name: 'Confirm' }).click()
    const codes = await this.shownRecoveryCodes()
    assert.equal(await dialog.isHidden(), true)
    const after = await recoveryCodeRows(this.app, this.user.id)
    assert.equal(after.length, 10)
    assert.equal(after.filter((row) => before.some((old) => old.code_hash === row.code_hash)).length, 0)
    await screenshot(page, 'new-recovery-codes')
    await page.getByRole('button', { name: 'I have saved them' }).click()
    return codes
  }

  async endOtherSession() {
    const { page } = this
    const items = page.locator('#session-list > li')
    assert.equal(await items.count(), 2)
    assert.match(await items.filter({ hasText: '(this browser)' }).innerText(), /HeadlessChrome/)
    await screenshot(page, 'sessions')
    await items.filter({ hasText: OTHER_DEVICE }).getByRole('button', { name: 'End this session' }).click()
    await statusSays(this.status, 'The session is ended: its device is signed out.')
    await items.filter({ hasText: OTHER_DEVICE }).waitFor({ state: 'detached' })
    assert.equal(await items.count(), 1)
    const sessions = await sessionRows(this.app, this.user.id)
    assert.deepEqual(
      sessions.map((session) => ({ amr: session.amr, ended: session.revoked_at !== null })),
      [
        { amr: 'pwd', ended: true }, // the other device
        { amr: 'pwd', ended: true }, // this browser, before any second factor
        { amr: 'pwd hwk mfa', ended: true },
        { amr: 'hwk user mfa', ended: true },
        { amr: 'pwd otp mfa', ended: true },
        { amr: 'pwd mfa', ended: false }, // this browser, now
      ],
    )
  }

  async removePasskey() {
    const { page } = this
    await page.getByRole('button', { name: 'Remove Work laptop' }).click()
    await this.passwordIfAsked(page.locator('#passkey-list > li', { hasText: 'No passkey yet.' }))
    await statusSays(this.status, 'The passkey “Work laptop” is removed.')
    assert.deepEqual(await passkeyRows(this.app, this.user.id), [])
    // The authenticator app stays: a password login still asks for a second factor.
    assert.match(await visibleText(page.locator('#totp-status')), /^On\b/)
    await screenshot(page, 'passkey-removed')
  }

  async turnOffTotp() {
    const { page } = this
    await page.getByRole('button', { name: 'Turn off the authenticator app' }).click()
    await this.passwordIfAsked(page.getByRole('button', { name: 'Set up an authenticator app' }))
    await statusSays(this.status, 'The authenticator app is off.')
    assert.equal(await visibleText(page.locator('#totp-status')), 'Off.')
    // It was the last second factor: the recovery codes went with it.
    assert.match(await visibleText(page.locator('#recovery-status')), /^You get recovery codes with/)
    const factors = await this.app.db
      .selectFrom('totp_factors')
      .select('user_id')
      .where('user_id', '=', this.user.id)
      .execute()
    assert.deepEqual(factors, [])
    assert.deepEqual(await recoveryCodeRows(this.app, this.user.id), [])
    await screenshot(page, 'totp-off')
  }

  /**
   * This session proved a second factor at its login, minutes ago: a change that needs
   * re-authentication is then made at once, and the page asks for the password only if the API
   * wants it (past 5 minutes, on a very slow machine). Waits until `done` shows.
   */
  private async passwordIfAsked(done: Locator) {
    const dialog = this.page.getByRole('dialog')
    await dialog.or(done).first().waitFor()
    if (await dialog.isVisible()) {
      await dialog.getByLabel('Password').fill(this.user.password)
      await dialog.getByRole('button', { name: 'Confirm' }).click()
    }
    await done.waitFor()
  }
}
