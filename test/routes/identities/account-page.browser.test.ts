/**
 * Signing in with an identity provider in a real browser (Debian's Chromium, playwright-core): the
 * account page's "Sign in with …" button, the test provider's own sign-in form, the redirects back,
 * the one-time code exchanged by the page; then a signed-in user links a provider in a window of its
 * own and unlinks it. What the page shows and what the database holds are both checked, under the
 * page's Content-Security-Policy. One engine (SQLite): the API on the others is covered elsewhere.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { chromium, type Browser, type Page } from 'playwright-core'
import { buildApp } from '../../../src/app.js'
import { CHROMIUM, CHROMIUM_ARGS, chromiumMissing, chromiumSkip } from '../../support/chromium.js'
import { register, testConfig, uniqueUser } from '../../support/app.js'
import { startTestIdentityProvider, type TestIdentityProvider } from '../../support/oidc-provider.js'
import { identityRows, PROVIDER, userByEmail } from './support.js'
import { freePort } from '../../support/processes.js'

/** Generous: the machine's cores are shared with the rest of the suite. */
const UI_TIMEOUT_MS = 30_000

/** Everything that went wrong in a page: what failed to load, what the policy refused, what threw. */
function problemsOf(page: Page): string[] {
  const problems: string[] = []
  page.on('pageerror', (error) => problems.push(`page error: ${String(error)}`))
  page.on('console', (message) => {
    if (/Content[- ]Security[- ]Policy|Refused to/i.test(message.text())) problems.push(message.text())
  })
  return problems
}

async function statusSays(page: Page, expected: string | RegExp) {
  const status = page.locator('#status')
  await status
    .filter({ hasText: expected })
    .waitFor({ state: 'visible' })
    .catch(() => undefined) // the assertion below says what it said instead
  const text = (await status.innerText()).trim()
  if (typeof expected === 'string') assert.equal(text, expected)
  else assert.match(text, expected)
}

/** The test provider's form, in whichever page shows it. */
async function signInAtProvider(page: Page, idp: TestIdentityProvider, sub: string) {
  await page.waitForURL((url) => url.origin === idp.issuer)
  await page.getByLabel('Login').fill(sub)
  await page.getByRole('button', { name: 'Sign in' }).click()
}

describe('identity providers on the account page, in a browser', { skip: chromiumSkip }, () => {
  let app: FastifyInstance
  let idp: TestIdentityProvider
  let origin: string
  let browser: Browser

  before(async () => {
    if (chromiumMissing)
      throw new Error(`${CHROMIUM} is missing, and CI must run the browser test: apt-get install -y chromium`)
    const port = await freePort()
    origin = `http://localhost:${port}`
    idp = await startTestIdentityProvider({ redirectUris: [`${origin}/login/${PROVIDER}/callback`] })
    const config = testConfig({
      DATABASE_URL: 'sqlite::memory:',
      PORT: String(port),
      PUBLIC_URL: origin,
      OIDC_PROVIDERS: JSON.stringify([idp.entry(PROVIDER, 'Test SSO')]),
    })
    app = await buildApp(config, { logger: false })
    await app.listen({ host: '127.0.0.1', port })
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 })
  })

  after(async () => {
    await browser?.close()
    await app?.close()
    await idp?.close()
  })

  test('a person signs in with the provider: a new account, signed in, the code gone from the address', async () => {
    const person = idp.addPerson({ preferred_username: 'Grace Hopper' })
    const context = await browser.newContext()
    context.setDefaultTimeout(UI_TIMEOUT_MS)
    const page = await context.newPage()
    const problems = problemsOf(page)

    await page.goto(`${origin}/account`)
    await page.getByRole('button', { name: 'Sign in with Test SSO' }).click()
    await signInAtProvider(page, idp, person.sub)

    await page.locator('#user-name').filter({ hasText: 'Grace Hopper' }).waitFor({ state: 'visible' })
    assert.equal(await page.locator('#user-email').innerText(), person.email)
    assert.equal(new URL(page.url()).search, '', 'the one-time code left the address bar')
    await page.locator('#identity-list').filter({ hasText: 'Test SSO' }).waitFor({ state: 'visible' })
    assert.match(
      await page.locator('#identity-list').innerText(),
      new RegExp(`Test SSO\\s+as ${person.email}`),
    )

    const user = (await userByEmail(app, person.email!))!
    assert.deepEqual(
      (await identityRows(app, user.id)).map((row) => [row.provider, row.subject]),
      [[PROVIDER, person.sub]],
    )

    // Its only way in cannot be unlinked.
    await page.getByRole('button', { name: 'Unlink Test SSO' }).click()
    await statusSays(page, /last way to log in/)
    assert.equal((await identityRows(app, user.id)).length, 1)

    // A reload forgets the token: the page asks to sign in again, and the provider signs in again.
    await page.reload()
    await page.locator('#sign-in').waitFor({ state: 'visible' })
    assert.deepEqual(problems, [])
    await context.close()
  })

  test('a signed-in user links the provider in a window of its own, then unlinks it', async () => {
    const user = await register(app, uniqueUser())
    const person = idp.addPerson()
    const context = await browser.newContext()
    context.setDefaultTimeout(UI_TIMEOUT_MS)
    const page = await context.newPage()
    const problems = problemsOf(page)

    await page.goto(`${origin}/account`)
    await page.locator('#login-username').fill(user.email)
    await page.locator('#login-password').fill(user.password)
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.getByRole('button', { name: 'Link Test SSO' }).waitFor({ state: 'visible' })

    await page.getByRole('button', { name: 'Link Test SSO' }).click()
    // Linking needs the password again.
    await page.locator('#reauth-password').fill(user.password)
    const popupOpened = context.waitForEvent('page')
    await page.getByRole('button', { name: 'Confirm' }).click()
    const popup = await popupOpened
    await signInAtProvider(popup, idp, person.sub)

    await statusSays(page, 'The provider is linked: you can sign in with it.')
    assert.match(
      await page.locator('#identity-list').innerText(),
      new RegExp(`Test SSO\\s+as ${person.email}`),
    )
    assert.deepEqual(
      (await identityRows(app, user.id)).map((row) => row.subject),
      [person.sub],
    )

    await page.getByRole('button', { name: 'Unlink Test SSO' }).click()
    await statusSays(page, 'Test SSO is unlinked.')
    assert.deepEqual(await identityRows(app, user.id), [])
    assert.deepEqual(problems, [])
    await context.close()
  })
})
