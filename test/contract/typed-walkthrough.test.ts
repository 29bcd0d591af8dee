/**
 * The README walk-through run by the typed client generated from the OpenAPI document, against a
 * listening server: a schema that says something the server does not do fails to compile or fails here.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Middleware } from 'openapi-fetch'
import { bearerToken, createApiClient, formEncoded, type ApiClient } from '../../client/index.js'
import { describeEachEngine, PRODUCT_FIELDS, uniqueSku, uniqueUser, USER_FIELDS } from '../support/app.js'

// ------------------------------------------------------------------ the README walk-through, typed

const TOKEN_FIELDS = ['access_token', 'expires_in', 'refresh_token', 'token_type']
const SESSION_FIELDS = ['created_at', 'current', 'expires_at', 'id', 'ip', 'last_used_at', 'user_agent']
const JWT = /^[\w-]+\.[\w-]+\.[\w-]+$/
const PROBLEM_JSON = /^application\/problem\+json/

const isTimestamp = (value: string) => !Number.isNaN(Date.parse(value)) && /Z$/.test(value)

/**
 * Without SMTP_URL the server writes each email to its log, links included, and the README says to
 * take the tokens from there: this log keeps those entries.
 */
interface LoggedMail {
  to: string
  subject: string
  links: string[]
}
const mails: LoggedMail[] = []
const mailLogger = {
  level: 'info',
  stream: {
    write(line: string) {
      const entry = JSON.parse(line) as { mail?: LoggedMail }
      if (entry.mail?.links) mails.push(entry.mail)
    },
  },
}

/** The tokens of the links to `page` mailed to `email`, once at least `count` have arrived. */
async function mailedTokens(email: string, page: 'verify-email' | 'reset-password', count = 1) {
  const deadline = Date.now() + 10_000
  for (;;) {
    const tokens = mails
      .filter((mail) => mail.to === email)
      .flatMap((mail) => mail.links)
      .map((link) => new URL(link))
      .filter((url) => url.pathname === `/${page}`)
      .map((url) => url.searchParams.get('token') ?? '')
    if (tokens.length >= count) return tokens
    if (Date.now() > deadline) throw new Error(`no ${page} link mailed to ${email}: ${JSON.stringify(mails)}`)
    await sleep(20)
  }
}

describeEachEngine(
  'the README walk-through through the typed client',
  (ctx) => {
    let base: string
    /** A client without a token, as in the README's first curl calls. */
    let api: ApiClient

    before(async () => {
      base = await ctx.app.listen({ host: '127.0.0.1', port: 0 })
      api = createApiClient(base)
    })

    /** A client that sends this token with every request (README: -H "Authorization: Bearer $TOKEN"). */
    const withToken = (token: string) => {
      const client = createApiClient(base)
      client.use(bearerToken(() => token))
      return client
    }

    async function registerUser() {
      const user = uniqueUser()
      const { data, response } = await api.POST('/users/', { body: user })
      assert.equal(response.status, 201)
      assert.ok(data)
      return { ...user, id: data.id }
    }

    /** POST /login, form-encoded as OAuth2 clients and the README's curl send it. */
    async function logIn(username: string, password: string, userAgent = 'contract-test') {
      const { data, error, response } = await api.POST('/login', {
        ...formEncoded,
        headers: { ...formEncoded.headers, 'user-agent': userAgent },
        body: { username, password },
      })
      assert.equal(response.status, 200, JSON.stringify(error))
      assert.ok(data)
      return data
    }

    /** An access token that the API refuses: 401 problem+json with a Bearer challenge. */
    async function assertRefused(token: string, what: string) {
      const { data, error, response } = await withToken(token).GET('/current-user')
      assert.equal(response.status, 401, `${what}: ${response.status}`)
      assert.equal(data, undefined)
      assert.equal(error?.status, 401)
      assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer/)
    }

    async function assertRefreshRefused(refreshToken: string, what: string) {
      const { data, error, response } = await api.POST('/token/refresh', {
        body: { refresh_token: refreshToken },
      })
      assert.equal(response.status, 401, `${what}: ${response.status}`)
      assert.equal(data, undefined)
      assert.equal(error?.status, 401)
    }

    test('1–3: register, log in with the form and with JSON, then create, list, read, change and delete a product', async () => {
      // 1. Register (public)
      const user = uniqueUser()
      const registered = await api.POST('/users/', { body: user })
      assert.equal(registered.response.status, 201, JSON.stringify(registered.error))
      const me = registered.data
      assert.ok(me)
      assert.deepEqual(Object.keys(me).sort(), USER_FIELDS)
      assert.ok(Number.isInteger(me.id) && me.id > 0)
      assert.deepEqual(
        [me.name, me.email, me.role, me.is_active, me.email_verified],
        [user.name, user.email, 'user', true, false],
      )
      assert.ok(isTimestamp(me.created_at) && isTimestamp(me.updated_at))

      // 2. Log in: form-encoded (username = email or name), or JSON
      const sent: { type: string | null; body: string }[] = []
      const record: Middleware = {
        async onRequest({ request }) {
          sent.push({ type: request.headers.get('content-type'), body: await request.clone().text() })
        },
      }
      const formLogin = async (username: string) => {
        const { data, response } = await api.POST('/login', {
          ...formEncoded,
          body: { username, password: user.password },
          middleware: [record],
        })
        assert.equal(response.status, 200)
        assert.ok(data)
        assert.deepEqual(Object.keys(data).sort(), TOKEN_FIELDS)
        assert.match(data.access_token, JWT)
        assert.equal(data.token_type, 'bearer')
        assert.equal(data.expires_in, 900)
        assert.ok(data.refresh_token.length >= 32)
      }
      await formLogin(user.email)
      await formLogin(user.name)
      const json = await api.POST('/login', {
        body: { username: user.email, password: user.password },
        middleware: [record],
      })
      assert.equal(json.response.status, 200)
      assert.ok(json.data)
      assert.equal(json.data.token_type, 'bearer')
      assert.deepEqual(sent, [
        {
          type: 'application/x-www-form-urlencoded',
          body: new URLSearchParams({ username: user.email, password: user.password }).toString(),
        },
        {
          type: 'application/x-www-form-urlencoded',
          body: new URLSearchParams({ username: user.name, password: user.password }).toString(),
        },
        {
          type: 'application/json',
          body: JSON.stringify({ username: user.email, password: user.password }),
        },
      ])

      // 3. Protected endpoints with the bearer token
      const authed = withToken(json.data.access_token)
      const current = await authed.GET('/current-user')
      assert.equal(current.response.status, 200)
      assert.deepEqual(current.data, me)

      const sku = uniqueSku()
      const created = await authed.POST('/product/', {
        body: { product_id: sku, name: 'Mechanical keyboard', description: 'Tenkeyless', price: 12999 },
      })
      assert.equal(created.response.status, 201, JSON.stringify(created.error))
      const product = created.data
      assert.ok(product)
      assert.deepEqual(Object.keys(product).sort(), PRODUCT_FIELDS)
      assert.equal(created.response.headers.get('location'), `/product/${product.id}`)
      assert.equal(created.response.headers.get('etag'), '"1"')
      assert.deepEqual(
        [product.product_id, product.name, product.description, product.price, product.owner_id],
        [sku, 'Mechanical keyboard', 'Tenkeyless', 12999, me.id],
      )

      const list = await authed.GET('/product/')
      assert.equal(list.response.status, 200)
      assert.ok(list.data)
      assert.deepEqual(
        list.data.items.find((item) => item.id === product.id),
        product,
      )
      const mine = await authed.GET('/product/', { params: { query: { owner_id: me.id } } })
      assert.deepEqual(mine.data, { items: [product], next_cursor: null })

      const one = await authed.GET('/product/{id}', { params: { path: { id: product.id } } })
      assert.equal(one.response.status, 200)
      assert.deepEqual(one.data, product)
      assert.equal(one.response.headers.get('etag'), '"1"')

      const patched = await authed.PATCH('/product/{id}', {
        params: { path: { id: product.id } },
        body: { price: 9999 },
      })
      assert.equal(patched.response.status, 200, JSON.stringify(patched.error))
      assert.deepEqual(patched.data, { ...product, price: 9999, updated_at: patched.data?.updated_at })
      assert.equal(patched.response.headers.get('etag'), '"2"')

      const deleted = await authed.DELETE('/product/{id}', { params: { path: { id: product.id } } })
      assert.equal(deleted.response.status, 204)
      assert.equal(deleted.data, undefined)
      const gone = await authed.GET('/product/{id}', { params: { path: { id: product.id } } })
      assert.equal(gone.response.status, 404)
      assert.match(gone.response.headers.get('content-type') ?? '', PROBLEM_JSON)
      assert.equal(gone.error?.status, 404)
    })

    test('sessions: a refresh rotates the pair; sessions are listed and ended; a password change and a logout end sessions at once', async () => {
      const user = await registerUser()
      const first = await logIn(user.name, user.password, 'laptop')

      const refreshed = await api.POST('/token/refresh', { body: { refresh_token: first.refresh_token } })
      assert.equal(refreshed.response.status, 200, JSON.stringify(refreshed.error))
      const laptop = refreshed.data
      assert.ok(laptop)
      assert.deepEqual(Object.keys(laptop).sort(), TOKEN_FIELDS)
      assert.notEqual(laptop.refresh_token, first.refresh_token)
      assert.notEqual(laptop.access_token, first.access_token)
      // The used token again at once (a retried request whose answer was lost): the same new token.
      const retried = await api.POST('/token/refresh', { body: { refresh_token: first.refresh_token } })
      assert.equal(retried.response.status, 200, JSON.stringify(retried.error))
      assert.equal(retried.data?.refresh_token, laptop.refresh_token)

      const phone = await logIn(user.email, user.password, 'phone')
      const sessions = await withToken(phone.access_token).GET('/sessions')
      assert.equal(sessions.response.status, 200)
      assert.ok(sessions.data)
      assert.equal(sessions.data.items.length, 2)
      for (const session of sessions.data.items) {
        assert.deepEqual(Object.keys(session).sort(), SESSION_FIELDS)
        assert.equal(session.ip, '127.0.0.1')
        assert.ok(isTimestamp(session.created_at) && isTimestamp(session.last_used_at))
      }
      const byAgent = new Map(sessions.data.items.map((session) => [session.user_agent, session]))
      assert.equal(byAgent.get('phone')?.current, true)
      assert.equal(byAgent.get('laptop')?.current, false)

      // DELETE /sessions/{id}: that device is logged out
      const laptopSession = byAgent.get('laptop')
      assert.ok(laptopSession)
      const ended = await withToken(phone.access_token).DELETE('/sessions/{id}', {
        params: { path: { id: laptopSession.id } },
      })
      assert.equal(ended.response.status, 204)
      await assertRefused(laptop.access_token, 'the ended session')
      await assertRefreshRefused(laptop.refresh_token, 'the ended session')

      // PUT /users/me/password: every other session is logged out, this one goes on
      const tablet = await logIn(user.name, user.password, 'tablet')
      const newPassword = `${user.password} and more`
      const changed = await withToken(phone.access_token).PUT('/users/me/password', {
        body: { current_password: user.password, new_password: newPassword },
      })
      assert.equal(changed.response.status, 204, JSON.stringify(changed.error))
      await assertRefused(tablet.access_token, 'another session after the password change')
      assert.equal((await withToken(phone.access_token).GET('/current-user')).response.status, 200)
      const oldPassword = await api.POST('/login', {
        ...formEncoded,
        body: { username: user.name, password: user.password },
      })
      assert.equal(oldPassword.response.status, 401)
      assert.equal(oldPassword.error?.status, 401)
      await logIn(user.name, newPassword)

      // POST /logout: this session's access and refresh tokens stop working at once
      const loggedOut = await withToken(phone.access_token).POST('/logout')
      assert.equal(loggedOut.response.status, 204)
      await assertRefused(phone.access_token, 'the logged-out session')
      await assertRefreshRefused(phone.refresh_token, 'the logged-out session')
    })

    test('lists, versions and retries: filters, sort and cursor; ETag and If-Match on PATCH, PUT and DELETE; Idempotency-Key', async () => {
      const user = await registerUser()
      const authed = withToken((await logIn(user.email, user.password)).access_token)
      const tag = uniqueSku().toLowerCase()
      for (const price of [500, 1500, 9000, 12000, 25000]) {
        const { response } = await authed.POST('/product/', {
          body: { product_id: `${tag}-${price}`, name: `Keyboard ${tag}`, price },
        })
        assert.equal(response.status, 201)
      }

      // Filters and sort; next_cursor gives the next page (same sort and filters)
      const query = { q: tag, min_price: 1000, max_price: 20000, sort: '-price', limit: 2 } as const
      const first = await authed.GET('/product/', { params: { query } })
      assert.equal(first.response.status, 200, JSON.stringify(first.error))
      assert.ok(first.data?.next_cursor)
      assert.deepEqual(
        first.data.items.map((item) => item.price),
        [12000, 9000],
      )
      const second = await authed.GET('/product/', {
        params: { query: { ...query, cursor: first.data.next_cursor } },
      })
      assert.ok(second.data)
      assert.deepEqual(
        second.data.items.map((item) => item.price),
        [1500],
      )
      assert.equal(second.data.next_cursor, null)

      // Safe concurrent edits: GET returns an ETag; a change with a stale one is 412
      const id = first.data.items[0]!.id
      const product = { id }
      const read = await authed.GET('/product/{id}', { params: { path: product } })
      assert.equal(read.response.headers.get('etag'), '"1"')
      const notModified = await authed.GET('/product/{id}', {
        params: { path: product, header: { 'if-none-match': '"1"' } },
      })
      assert.equal(notModified.response.status, 304)

      const patched = await authed.PATCH('/product/{id}', {
        params: { path: product, header: { 'if-match': '"1"' } },
        body: { price: 8999 },
      })
      assert.equal(patched.response.status, 200, JSON.stringify(patched.error))
      assert.equal(patched.data?.price, 8999)
      assert.equal(patched.response.headers.get('etag'), '"2"')
      const stalePatch = await authed.PATCH('/product/{id}', {
        params: { path: product, header: { 'if-match': '"1"' } },
        body: { price: 1 },
      })
      assert.equal(stalePatch.response.status, 412)
      assert.match(stalePatch.response.headers.get('content-type') ?? '', PROBLEM_JSON)
      assert.equal(stalePatch.error?.status, 412)

      const replacement = { product_id: `${tag}-replaced`, name: 'Desk lamp', price: 4500 }
      const put = await authed.PUT('/product/{id}', {
        params: { path: product, header: { 'if-match': '"2"' } },
        body: replacement,
      })
      assert.equal(put.response.status, 200, JSON.stringify(put.error))
      assert.ok(put.data)
      assert.deepEqual(
        [put.data.product_id, put.data.name, put.data.description, put.data.price, put.data.owner_id],
        [replacement.product_id, replacement.name, '', replacement.price, user.id],
      )
      assert.equal(put.response.headers.get('etag'), '"3"')
      const stalePut = await authed.PUT('/product/{id}', {
        params: { path: product, header: { 'if-match': '"2"' } },
        body: replacement,
      })
      assert.equal(stalePut.response.status, 412)
      const staleDelete = await authed.DELETE('/product/{id}', {
        params: { path: product, header: { 'if-match': '"2"' } },
      })
      assert.equal(staleDelete.response.status, 412)
      assert.deepEqual((await authed.GET('/product/{id}', { params: { path: product } })).data, put.data)
      const deleted = await authed.DELETE('/product/{id}', {
        params: { path: product, header: { 'if-match': '"3"' } },
      })
      assert.equal(deleted.response.status, 204)

      // Retry-safe creation: the same Idempotency-Key and body answer the first 201 again
      const key = randomUUID()
      const body = { product_id: `${tag}-lamp`, name: 'Desk lamp', price: 4500 }
      const once = await authed.POST('/product/', { params: { header: { 'idempotency-key': key } }, body })
      const again = await authed.POST('/product/', { params: { header: { 'idempotency-key': key } }, body })
      assert.equal(once.response.status, 201)
      assert.equal(again.response.status, 201)
      assert.ok(once.data)
      assert.deepEqual(again.data, once.data)
      assert.equal(again.response.headers.get('location'), `/product/${once.data.id}`)
      const lamps = await authed.GET('/product/', { params: { query: { q: `${tag}-lamp` } } })
      assert.deepEqual(lamps.data, { items: [once.data], next_cursor: null })
    })

    test('password recovery and email verification, with the links the server writes to its log', async () => {
      const user = await registerUser()
      const authed = withToken((await logIn(user.email, user.password)).access_token)

      // Another verification email (202), then the link verifies the address (204)
      const resent = await authed.POST('/verify-email/resend')
      assert.equal(resent.response.status, 202, JSON.stringify(resent.error))
      const verificationTokens = await mailedTokens(user.email, 'verify-email', 2)
      const verified = await api.POST('/verify-email', { body: { token: verificationTokens.at(-1)! } })
      assert.equal(verified.response.status, 204, JSON.stringify(verified.error))
      assert.equal((await authed.GET('/current-user')).data?.email_verified, true)
      const again = await authed.POST('/verify-email/resend')
      assert.equal(again.response.status, 409)
      assert.equal(again.error?.status, 409)

      // A reset link: always the same 202, whether or not the account exists
      const asked = await api.POST('/password-recovery', { body: { email: user.email } })
      assert.equal(asked.response.status, 202)
      assert.ok(asked.data)
      assert.deepEqual(Object.keys(asked.data), ['detail'])
      const unknown = await api.POST('/password-recovery', { body: { email: `nobody-${user.email}` } })
      assert.equal(unknown.response.status, 202)
      assert.deepEqual(unknown.data, asked.data)

      const [resetToken] = await mailedTokens(user.email, 'reset-password')
      assert.ok(resetToken)
      const newPassword = `${user.password} reset`
      const reset = await api.POST('/reset-password', {
        body: { token: resetToken, new_password: newPassword },
      })
      assert.equal(reset.response.status, 204, JSON.stringify(reset.error))
      const reused = await api.POST('/reset-password', {
        body: { token: resetToken, new_password: newPassword },
      })
      assert.equal(reused.response.status, 400)
      assert.equal(reused.error?.status, 400)

      // Every session of the account is logged out; the new password works
      const current = await authed.GET('/current-user')
      assert.equal(current.response.status, 401)
      await logIn(user.email, newPassword)
    })

    test('errors arrive typed as problem+json: 401 with a Bearer challenge, 409, and 422 naming the field', async () => {
      const anonymous = await api.GET('/product/')
      assert.equal(anonymous.response.status, 401)
      assert.match(anonymous.response.headers.get('content-type') ?? '', PROBLEM_JSON)
      assert.match(anonymous.response.headers.get('www-authenticate') ?? '', /^Bearer/)
      assert.ok(anonymous.error)
      assert.equal(anonymous.error.status, 401)
      assert.equal(typeof anonymous.error.detail, 'string')

      const user = await registerUser()
      const duplicate = await api.POST('/users/', {
        body: { name: user.name.toUpperCase(), email: uniqueUser().email, password: user.password },
      })
      assert.equal(duplicate.response.status, 409)
      assert.equal(duplicate.error?.status, 409)

      const authed = withToken((await logIn(user.name, user.password)).access_token)
      const invalid = await authed.POST('/product/', {
        body: { product_id: uniqueSku(), name: 'Negative', price: -1 },
      })
      assert.equal(invalid.response.status, 422)
      assert.deepEqual(
        invalid.error?.errors?.map((issue) => [issue.in, issue.field]),
        [['body', 'price']],
      )

      // The types say what the schemas say: what the server refuses does not compile either.
      const sku = uniqueSku()
      const mistyped = await authed.POST('/product/', {
        // @ts-expect-error price is an integer (minor units), never a string
        body: { product_id: sku, name: 'Typed', price: '100' },
      })
      assert.equal(mistyped.response.status, 422)
      // @ts-expect-error there is no /products/ (the seed's path is /product/)
      const wrongPath = await authed.GET('/products/')
      assert.equal(wrongPath.response.status, 404)
    })
  },
  { build: { logger: mailLogger } },
)
