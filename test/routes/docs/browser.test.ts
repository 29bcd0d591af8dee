/**
 * Swagger UI (/docs) and ReDoc (/redoc) in a real browser: Debian's Chromium driven by
 * playwright-core, clicking what a person would click. The pages' code has to work under the
 * server's Content-Security-Policy, with nothing loaded from anywhere but the server itself.
 *
 * One engine (SQLite) is enough here: what this file tests is the docs pages and the browser's
 * round trips through them; the API on PostgreSQL and MariaDB is covered by the other test files.
 *
 * Screenshots of each step are saved under test-artifacts/browser/ (git-ignored).
 */
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core'
import { buildApp } from '../../../src/app.js'
import {
  bearer,
  login,
  register,
  testConfig,
  uniqueSku,
  uniqueUser,
  type ProductBody,
} from '../../support/app.js'
import { CHROMIUM, CHROMIUM_ARGS, chromiumMissing, chromiumSkip } from '../../support/chromium.js'

const SCREENSHOTS = path.resolve('test-artifacts', 'browser')
/** Generous: the machine's cores are shared with the rest of the suite, and the bundles are megabytes. */
const UI_TIMEOUT_MS = 30_000

const skip = chromiumSkip

/** What a browser context did: every URL it requested, what failed, what was refused, what threw. */
interface Recording {
  requests: string[]
  failed: string[]
  cspViolations: string[]
  pageErrors: string[]
}

/**
 * Reports the page's Content-Security-Policy violations on the console, whatever the browser's
 * own wording of them. Init scripts are injected by the browser, so the policy does not stop them.
 */
const REPORT_CSP_VIOLATIONS = `document.addEventListener('securitypolicyviolation', (event) =>
  console.error('CSP violation: ' + event.violatedDirective + ' blocked ' + event.blockedURI))`

/** A fresh browser context (no cookies, no storage) and a page in it, with everything recorded. */
async function openPage(
  browser: Browser,
): Promise<{ context: BrowserContext; page: Page; recording: Recording }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  context.setDefaultTimeout(UI_TIMEOUT_MS)
  await context.addInitScript(REPORT_CSP_VIOLATIONS)
  const recording: Recording = { requests: [], failed: [], cspViolations: [], pageErrors: [] }
  context.on('request', (request) => recording.requests.push(request.url()))
  context.on('requestfailed', (request) =>
    recording.failed.push(`${request.url()}: ${request.failure()?.errorText}`),
  )
  const page = await context.newPage()
  page.on('console', (message) => {
    if (/CSP violation|Refused to|Content[- ]Security[- ]Policy/i.test(message.text()))
      recording.cspViolations.push(message.text())
  })
  page.on('pageerror', (error) => recording.pageErrors.push(String(error)))
  return { context, page, recording }
}

/**
 * Every request stayed on the server: its origin is the server's, or it is a data: URL (inline
 * images of the pages' own code, not requests to anyone). A blob: URL (ReDoc's search worker) has
 * the origin of the page that made it, so it passes the same origin check.
 */
function assertStayedOnServer(recording: Recording, origin: string) {
  assert.ok(recording.requests.length > 0, 'requests were recorded')
  const elsewhere = recording.requests.filter(
    (url) => !url.startsWith('data:') && new URL(url).origin !== origin,
  )
  assert.deepEqual(elsewhere, [], `requests that left ${origin}`)
  assert.deepEqual(recording.failed, [], 'requests that failed')
  assert.deepEqual(recording.cspViolations, [], 'Content-Security-Policy violations')
  assert.deepEqual(recording.pageErrors, [], 'errors thrown by the page')
}

/** A screenshot of what is on screen, or of one element of the page. */
const screenshot = (target: Page | Locator, name: string) =>
  target.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) })

/** The text of an element, once it is visible. */
async function visibleText(locator: Locator): Promise<string> {
  await locator.waitFor({ state: 'visible' })
  return (await locator.innerText()).trim()
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** A Swagger UI operation, by method and path as the OpenAPI document names them. */
const swaggerOperation = (page: Page, method: string, apiPath: string) =>
  page
    .locator(`.opblock.opblock-${method}`)
    .filter({ has: page.locator(`.opblock-summary-path[data-path="${apiPath}"]`) })

/** Expands an operation, ready to execute. */
async function expand(operation: Locator) {
  await operation.locator('.opblock-summary-control').click()
  // The docs turn "Try it out" on for every operation (uiConfig.tryItOutEnabled): its button
  // already offers to cancel it, and Execute is there.
  assert.equal(await visibleText(operation.locator('.try-out__btn')), 'Cancel')
  return operation
}

/** Clicks Execute and reads the live response Swagger UI then shows. */
async function execute(operation: Locator) {
  await operation.locator('button.execute').click()
  const response = operation.locator('.live-responses-table tbody .response')
  const description = response.locator('.response-col_description')
  return {
    status: await visibleText(response.locator('.response-col_status')),
    body: await visibleText(description.locator('.microlight').first()),
    details: await visibleText(description),
    curl: await visibleText(operation.locator('.curl-command .curl')),
  }
}

describe('the docs in a browser', { skip }, () => {
  let app: FastifyInstance
  let base: string
  let origin: string
  let browser: Browser

  before(async () => {
    if (chromiumMissing)
      throw new Error(`${CHROMIUM} is missing, and CI must run the browser test: apt-get install -y chromium`)
    mkdirSync(SCREENSHOTS, { recursive: true })
    app = await buildApp(testConfig({ DATABASE_URL: 'sqlite::memory:' }), { logger: false })
    base = await app.listen({ host: '127.0.0.1', port: 0 })
    origin = new URL(base).origin
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 })
  })

  after(async () => {
    await browser?.close()
    await app?.close()
  })

  test('in Swagger UI, Authorize logs in through /login; "Try it out" then reads the user and creates a product', async () => {
    const user = await register(app, uniqueUser())
    const sku = uniqueSku()
    const { context, page, recording } = await openPage(browser)

    await page.goto(`${base}/docs`)
    assert.match(await visibleText(page.locator('.info .title')), /^FastAuth API\b/)

    // Authorize: the OAuth2 password flow form, filled in as a person would.
    await page.locator('.auth-wrapper button.authorize').click()
    const dialog = page.locator('.dialog-ux .modal-ux')
    await dialog.locator('#oauth_username').waitFor({ state: 'visible' })
    // A login name and a password, nothing that does not apply (no scopes, no client credentials).
    const unused = /Scopes are used|client_id|client_secret|Client credentials location/
    assert.doesNotMatch(await dialog.innerText(), unused)
    await dialog.locator('#oauth_username').fill(user.email)
    await dialog.locator('#oauth_password').fill(user.password)
    await dialog.locator('button.modal-btn.authorize', { hasText: 'Authorize' }).click()
    // Once /login answered with a token, the form gives way to "Authorized" and a Logout button;
    // when it did not, the dialog shows the error (and waiting any longer would not help).
    const logout = dialog.locator('button', { hasText: /^Logout$/ })
    const authError = dialog.locator('.errors')
    await logout.or(authError).first().waitFor({ state: 'visible' })
    assert.equal(
      await authError.count(),
      0,
      `Swagger UI could not log in: ${await authError.allInnerTexts()}`,
    )
    assert.match(await dialog.innerText(), /\bAuthorized\b/)
    assert.doesNotMatch(await dialog.innerText(), unused)
    assert.match(await dialog.innerText(), new RegExp(`username:\\s*${escapeRegExp(user.email)}`))
    await screenshot(page, '1-docs-authorized')
    await dialog.locator('button.btn-done', { hasText: 'Close' }).click()
    await dialog.waitFor({ state: 'detached' })
    await page.locator('.auth-wrapper button.authorize.locked').waitFor({ state: 'visible' })

    // GET /current-user, sent with the token Swagger UI got.
    const readUser = await expand(swaggerOperation(page, 'get', '/current-user'))
    const currentUser = await execute(readUser)
    assert.match(currentUser.curl, /Authorization: Bearer [\w-]+\.[\w-]+\.[\w-]+/)
    assert.equal(currentUser.status, '200')
    const shownUser = JSON.parse(currentUser.body) as { id: number; email: string; name: string }
    assert.equal(shownUser.email, user.email)
    assert.equal(shownUser.id, user.id)
    await screenshot(readUser, '2-docs-current-user')

    // POST /product/: the example body replaced with a product of our own.
    const createProduct = await expand(swaggerOperation(page, 'post', '/product/'))
    const body = createProduct.locator('textarea.body-param__text')
    await body.waitFor({ state: 'visible' })
    const example = JSON.parse(await body.inputValue()) as Record<string, unknown>
    assert.deepEqual(Object.keys(example).sort(), ['description', 'name', 'price', 'product_id'])
    const product = { product_id: sku, name: 'Desk lamp', description: 'Created in Swagger UI.', price: 4500 }
    await body.fill(JSON.stringify(product, null, 2))
    const created = await execute(createProduct)
    assert.equal(created.status, '201')
    const shownProduct = JSON.parse(created.body) as ProductBody
    assert.equal(shownProduct.product_id, sku)
    assert.equal(shownProduct.owner_id, user.id)
    assert.match(created.details, new RegExp(`location: /product/${shownProduct.id}\\b`, 'i'))
    await screenshot(createProduct, '3-docs-product-created')

    // The product is really stored, and belongs to the user who authorized in the browser.
    const token = await login(app, user.email, user.password)
    const stored = await app.inject({ url: `/product/${shownProduct.id}`, headers: bearer(token) })
    assert.equal(stored.statusCode, 200)
    const { product_id, name, description, price, owner_id } = stored.json<ProductBody>()
    assert.deepEqual({ product_id, name, description, price, owner_id }, { ...product, owner_id: user.id })

    assert.ok(recording.requests.includes(`${origin}/login`), 'Authorize posted to this server’s /login')
    assertStayedOnServer(recording, origin)
    await context.close()
  })

  test('ReDoc renders every operation of the document, under its summary, with its method and path', async () => {
    const doc = (await app.inject('/openapi.json')).json<{
      paths: Record<string, Record<string, { summary?: string; tags?: string[] }>>
    }>()
    const operations = Object.entries(doc.paths).flatMap(([apiPath, item]) =>
      Object.entries(item).map(([method, operation]) => ({ method, apiPath, ...operation })),
    )
    assert.ok(operations.length >= 20, `${operations.length} operations in the document`)
    const { context, page, recording } = await openPage(browser)

    await page.goto(`${base}/redoc`)
    // ReDoc's section ids: the tag, the path as a JSON pointer token, the method.
    const section = (tag: string | undefined, method: string, apiPath: string) =>
      page.locator(
        `[data-section-id="tag/${tag}/paths/${apiPath.replaceAll('~', '~0').replaceAll('/', '~1')}/${method}"]`,
      )
    for (const { method, apiPath, summary, tags } of operations) {
      const rendered = section(tags?.[0], method, apiPath)
      assert.equal(await visibleText(rendered.locator('h2')), summary)
      assert.match(await rendered.innerText(), new RegExp(`\\b${method}\\s*${escapeRegExp(apiPath)}\\s`, 'i'))
    }
    await screenshot(section('products', 'post', '/product/'), '4-redoc-create-product')

    assertStayedOnServer(recording, origin)
    await context.close()
  })
})
