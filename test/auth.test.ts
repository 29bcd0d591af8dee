import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import {
  SignJWT,
  decodeJwt,
  decodeProtectedHeader,
  importPKCS8,
  importSPKI,
  jwtVerify,
  type CryptoKey,
  type JWTPayload,
} from 'jose'
import { buildApp } from '../src/app.js'
import {
  adminAndLogin,
  assertProblem,
  bearer,
  describeEachEngine,
  register,
  registerAndLogin,
  testConfig,
  TEST_SECRET,
  uniqueUser,
} from './support/app.js'

// ------------------------------------------------------------------ helpers

/** The default issuer and audience of the access tokens. */
const ISSUER = 'fastauth-api'
const AUDIENCE = 'fastauth-api'
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
/** Routes that need a valid access token, each answering 200 to its rightful caller. */
const PROTECTED_ROUTES = ['/current-user', '/users/me', '/product/'] as const

const bytes = (text: string) => new TextEncoder().encode(text)
const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
const nowSeconds = () => Math.floor(Date.now() / 1000)

function loginForm(app: FastifyInstance, fields: Record<string, string>) {
  return app.inject({
    method: 'POST',
    url: '/login',
    headers: FORM,
    payload: new URLSearchParams(fields).toString(),
  })
}

function loginJson(app: FastifyInstance, body: unknown) {
  return app.inject({ method: 'POST', url: '/login', payload: body as Record<string, unknown> })
}

function get(app: FastifyInstance, url: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'GET', url, headers })
}
type Reply = Awaited<ReturnType<typeof get>>

/** The fields of every 422 issue, for asserting which fields a validation error names. */
function invalidFields(response: Reply): string[] {
  const problem = assertProblem(response, 422)
  assert.ok(Array.isArray(problem.errors), `a 422 lists its errors: ${response.body}`)
  return problem.errors.map((issue) => issue.field)
}

/** Signs a payload as is (claims included), with the given key and algorithm. */
function sign(payload: JWTPayload, key: Uint8Array | CryptoKey, alg = 'HS256') {
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'at+jwt' }).sign(key)
}

/** The token with one bit of its signature flipped (in the first byte, never in padding bits). */
function flipSignatureBit(token: string): string {
  const [header, payload, signature] = token.split('.')
  const raw = Buffer.from(signature!, 'base64url')
  raw.writeUInt8(raw.readUInt8(0) ^ 0x01, 0)
  return `${header}.${payload}.${raw.toString('base64url')}`
}

/** The token with its payload replaced and its original header and signature kept. */
function withPayload(token: string, payload: JWTPayload): string {
  const [header, , signature] = token.split('.')
  return `${header}.${base64url(payload)}.${signature}`
}

/** An unsecured JWT (RFC 7519 §6): the given header, the payload and an empty signature. */
function unsigned(payload: JWTPayload, header: Record<string, unknown> = { alg: 'none' }): string {
  return `${base64url(header)}.${base64url(payload)}.`
}

/** Each protected route answers 200 to this token (and the user routes answer with this user). */
async function assertAccepted(app: FastifyInstance, token: string, userId: number) {
  for (const url of PROTECTED_ROUTES) {
    const response = await get(app, url, bearer(token))
    assert.equal(response.statusCode, 200, `${url} answered ${response.statusCode}: ${response.body}`)
    if (url !== '/product/') assert.equal(response.json<{ id: number }>().id, userId, url)
  }
}

/**
 * Each protected route answers 401 problem+json with a Bearer challenge. `invalidToken` also
 * requires the RFC 6750 `error="invalid_token"` code.
 */
async function assertRefused(
  app: FastifyInstance,
  authorization: string | undefined,
  options: { invalidToken?: boolean; detail?: RegExp } = {},
) {
  const headers: Record<string, string> = authorization === undefined ? {} : { authorization }
  for (const url of PROTECTED_ROUTES) {
    const response = await get(app, url, headers)
    assert.equal(response.statusCode, 401, `${url} answered ${response.statusCode}: ${response.body}`)
    const problem = assertProblem(response, 401)
    const challenge = String(response.headers['www-authenticate'] ?? '')
    assert.match(challenge, /^Bearer( |$)/, `${url}: WWW-Authenticate is "${challenge}"`)
    if (options.invalidToken) assert.match(challenge, /error="invalid_token"/, url)
    if (options.detail) assert.match(problem.detail, options.detail, url)
  }
}

// ------------------------------------------------------------------ POST /login

describeEachEngine('POST /login', (ctx) => {
  test('accepts the form Swagger UI sends and answers a bearer token that must not be cached', async () => {
    const user = await register(ctx.app)
    const response = await loginForm(ctx.app, {
      grant_type: 'password',
      username: user.email,
      password: user.password,
      scope: '',
      client_id: 'swagger-ui',
      client_secret: '',
    })
    assert.equal(response.statusCode, 200, response.body)
    assert.match(String(response.headers['content-type']), /^application\/json/)
    assert.match(String(response.headers['cache-control']), /\bno-store\b/)
    const body = response.json<Record<string, unknown>>()
    assert.equal(body.token_type, 'bearer')
    assert.equal(body.expires_in, 15 * 60)
    assert.equal(typeof body.access_token, 'string')
    assert.match(body.access_token as string, /^[\w-]+\.[\w-]+\.[\w-]+$/)
    await assertAccepted(ctx.app, body.access_token as string, user.id)
  })

  test('accepts the same credentials as JSON', async () => {
    const user = await register(ctx.app)
    const response = await loginJson(ctx.app, { username: user.email, password: user.password })
    assert.equal(response.statusCode, 200, response.body)
    assert.match(String(response.headers['cache-control']), /\bno-store\b/)
    const body = response.json<{ access_token: string; token_type: string; expires_in: number }>()
    assert.equal(body.token_type, 'bearer')
    assert.equal(body.expires_in, 15 * 60)
    assert.equal(decodeJwt(body.access_token).user_id, user.id)
  })

  test('the username is the email or the name, in any case, with surrounding spaces ignored', async () => {
    const user = await register(ctx.app)
    const mixedCase = (text: string) =>
      [...text].map((char, index) => (index % 2 ? char.toUpperCase() : char)).join('')
    for (const username of [
      user.email,
      user.email.toUpperCase(),
      `  ${user.email}  `,
      user.name,
      user.name.toUpperCase(),
      mixedCase(user.name),
      ` ${user.name}\t`,
    ]) {
      const response = await loginForm(ctx.app, { username, password: user.password })
      assert.equal(response.statusCode, 200, `"${username}": ${response.body}`)
      const claims = decodeJwt(response.json<{ access_token: string }>().access_token)
      assert.equal(claims.user_id, user.id, `"${username}" logs in as the user`)
    }
  })

  test('a user registered with an upper-case email logs in with the lower-case one', async () => {
    const base = uniqueUser()
    const user = await register(ctx.app, { ...base, email: base.email.toUpperCase() })
    const response = await loginForm(ctx.app, { username: base.email, password: user.password })
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(decodeJwt(response.json<{ access_token: string }>().access_token).user_id, user.id)
  })

  test('the access token is an HS256 JWT with sub, user_id, sid, jti, iat, exp, iss and aud, for 15 minutes', async () => {
    const user = await register(ctx.app)
    const issuedNoEarlierThan = nowSeconds()
    const response = await loginForm(ctx.app, { username: user.email, password: user.password })
    const issuedNoLaterThan = Math.ceil(Date.now() / 1000)
    assert.equal(response.statusCode, 200, response.body)
    const { access_token: token, expires_in: expiresIn } = response.json<{
      access_token: string
      expires_in: number
    }>()

    const header = decodeProtectedHeader(token)
    assert.equal(header.alg, 'HS256')
    assert.equal(header.typ, 'at+jwt')

    const claims = decodeJwt(token)
    assert.equal(claims.sub, String(user.id))
    assert.equal(claims.user_id, user.id)
    assert.equal(typeof claims.sid, 'string')
    assert.ok((claims.sid as string).length > 0)
    assert.equal(typeof claims.jti, 'string')
    assert.ok(claims.jti!.length > 0)
    assert.equal(typeof claims.iat, 'number')
    assert.ok(claims.iat! >= issuedNoEarlierThan && claims.iat! <= issuedNoLaterThan, `iat ${claims.iat}`)
    assert.equal(claims.exp, claims.iat! + 15 * 60)
    assert.equal(expiresIn, claims.exp! - claims.iat!)
    assert.equal(claims.iss, ISSUER)
    assert.deepEqual([claims.aud].flat(), [AUDIENCE])
    assert.equal('password' in claims, false)
    assert.equal('email' in claims, false)

    // Signed with SECRET_KEY, and nothing else.
    const verified = await jwtVerify(token, bytes(TEST_SECRET), {
      algorithms: ['HS256'],
      issuer: ISSUER,
      audience: AUDIENCE,
    })
    assert.equal(verified.payload.user_id, user.id)
    await assert.rejects(jwtVerify(token, bytes(`${TEST_SECRET}-other`), { algorithms: ['HS256'] }))
  })

  test('every login opens a new session: a new token id and session id, and both tokens work', async () => {
    const user = await register(ctx.app)
    const first = await loginForm(ctx.app, { username: user.email, password: user.password })
    const second = await loginForm(ctx.app, { username: user.name, password: user.password })
    const tokens = [first, second].map((response) => response.json<{ access_token: string }>().access_token)
    const [a, b] = tokens.map((token) => decodeJwt(token))
    assert.notEqual(a!.jti, b!.jti)
    assert.notEqual(a!.sid, b!.sid)
    for (const token of tokens) await assertAccepted(ctx.app, token, user.id)
  })

  test('the password must match exactly: another case or an added space is a wrong password', async () => {
    const user = await register(ctx.app)
    for (const password of [user.password.toUpperCase(), `${user.password} `, ` ${user.password}`]) {
      assert.notEqual(password, user.password)
      const response = await loginForm(ctx.app, { username: user.email, password })
      assertProblem(response, 401)
    }
    const response = await loginForm(ctx.app, { username: user.email, password: user.password })
    assert.equal(response.statusCode, 200, response.body)
  })

  test('a password typed in another Unicode form (decomposed accents) still matches', async () => {
    const base = uniqueUser()
    const composed = `Crème brûlée ${base.password}`.normalize('NFC')
    const decomposed = composed.normalize('NFD')
    assert.notEqual(composed, decomposed)
    const user = await register(ctx.app, { ...base, password: composed })
    const response = await loginForm(ctx.app, { username: user.email, password: decomposed })
    assert.equal(response.statusCode, 200, response.body)
  })

  test('an unknown user, a wrong password and a deactivated account get the identical 401 answer', async () => {
    const user = await register(ctx.app)
    const inactive = await register(ctx.app)
    await ctx.app.db.updateTable('users').set({ is_active: false }).where('id', '=', inactive.id).execute()

    const stranger = uniqueUser()
    const attempts = {
      'unknown email': await loginForm(ctx.app, { username: stranger.email, password: user.password }),
      'unknown name': await loginForm(ctx.app, { username: stranger.name, password: user.password }),
      'wrong password': await loginForm(ctx.app, { username: user.email, password: `${user.password}x` }),
      'deactivated account': await loginForm(ctx.app, {
        username: inactive.email,
        password: inactive.password,
      }),
    }
    const reference = attempts['unknown email']
    const referenceBody = assertProblem(reference, 401)
    assert.equal('access_token' in referenceBody, false)
    for (const [what, response] of Object.entries(attempts)) {
      assertProblem(response, 401)
      assert.deepEqual(response.json(), reference.json(), `${what} answers the same body`)
      assert.equal(response.headers['content-type'], reference.headers['content-type'], what)
      assert.equal(response.headers['www-authenticate'], reference.headers['www-authenticate'], what)
    }

    // The flag, not the credentials, is what kept the deactivated account out.
    await ctx.app.db.updateTable('users').set({ is_active: true }).where('id', '=', inactive.id).execute()
    const reactivated = await loginForm(ctx.app, { username: inactive.email, password: inactive.password })
    assert.equal(reactivated.statusCode, 200, reactivated.body)
  })

  test('a missing username or password is 422 naming each missing field', async () => {
    const user = uniqueUser()
    const cases: [Reply, string[]][] = [
      [await loginForm(ctx.app, { password: user.password }), ['username']],
      [await loginForm(ctx.app, { username: user.email }), ['password']],
      [await loginForm(ctx.app, { grant_type: 'password' }), ['username', 'password']],
      [await loginJson(ctx.app, {}), ['username', 'password']],
      [await loginJson(ctx.app, { username: user.email }), ['password']],
      [await loginForm(ctx.app, { username: '', password: user.password }), ['username']],
      [await loginForm(ctx.app, { username: user.email, password: '' }), ['password']],
    ]
    for (const [response, fields] of cases) {
      const named = invalidFields(response)
      for (const field of fields) assert.ok(named.includes(field), `${field} is named in ${response.body}`)
    }
  })

  test('unknown fields are refused with 422 naming them, never ignored', async () => {
    const user = await register(ctx.app)
    const form = await loginForm(ctx.app, {
      username: user.email,
      password: user.password,
      remember_me: 'true',
    })
    assert.ok(invalidFields(form).includes('remember_me'), form.body)
    const json = await loginJson(ctx.app, { username: user.email, password: user.password, role: 'admin' })
    assert.ok(invalidFields(json).includes('role'), json.body)
  })

  test('a grant_type other than "password" is 422 naming grant_type', async () => {
    const user = await register(ctx.app)
    for (const grantType of ['client_credentials', 'refresh_token', 'PASSWORD', '']) {
      const response = await loginForm(ctx.app, {
        grant_type: grantType,
        username: user.email,
        password: user.password,
      })
      assert.ok(invalidFields(response).includes('grant_type'), `${grantType}: ${response.body}`)
    }
  })

  test('a username that is not one string (repeated in the form, or a number in JSON) is 422', async () => {
    const user = await register(ctx.app)
    const repeated = await ctx.app.inject({
      method: 'POST',
      url: '/login',
      headers: FORM,
      payload: `username=${encodeURIComponent(user.email)}&username=other&password=${encodeURIComponent(user.password)}`,
    })
    assert.ok(invalidFields(repeated).includes('username'), repeated.body)
    const numeric = await loginJson(ctx.app, { username: 12345, password: user.password })
    assert.ok(invalidFields(numeric).includes('username'), numeric.body)
  })

  test('a body in an unsupported media type (text/plain, XML) is 415', async () => {
    const user = await register(ctx.app)
    const credentials = new URLSearchParams({ username: user.email, password: user.password }).toString()
    for (const contentType of ['text/plain', 'text/plain; charset=utf-8', 'application/xml']) {
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/login',
        headers: { 'content-type': contentType },
        payload: credentials,
      })
      assertProblem(response, 415)
    }
  })

  test('malformed JSON is a 400 problem, not a server error', async () => {
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/json' },
      payload: '{"username": "a", "password": ',
    })
    assertProblem(response, 400)
  })

  test('passwords are stored as salted argon2id (m=19456, t=2, p=1), never in clear', async () => {
    const password = uniqueUser().password
    const first = await register(ctx.app, uniqueUser({ password }))
    const second = await register(ctx.app, uniqueUser({ password }))
    const rows = await ctx.app.db
      .selectFrom('users')
      .select(['id', 'password_hash'])
      .where('id', 'in', [first.id, second.id])
      .execute()
    assert.equal(rows.length, 2)
    for (const row of rows) {
      assert.match(row.password_hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/)
      assert.notEqual(row.password_hash, password)
      assert.equal(row.password_hash.includes(password), false)
    }
    assert.notEqual(rows[0]!.password_hash, rows[1]!.password_hash, 'each hash has its own salt')
  })
})

// ------------------------------------------------------------------ bearer authentication

describeEachEngine('bearer authentication', (ctx) => {
  test('a valid token opens /current-user, /users/me and /product/, whatever the case of "Bearer"', async () => {
    const user = await registerAndLogin(ctx.app)
    await assertAccepted(ctx.app, user.token, user.id)
    for (const scheme of ['bearer', 'BEARER']) {
      const response = await get(ctx.app, '/current-user', { authorization: `${scheme} ${user.token}` })
      assert.equal(response.statusCode, 200, `${scheme}: ${response.body}`)
    }
  })

  test('GET /current-user and GET /users/me answer the caller, never the password or its hash', async () => {
    const alice = await registerAndLogin(ctx.app)
    const bob = await registerAndLogin(ctx.app)
    for (const caller of [alice, bob]) {
      const current = await get(ctx.app, '/current-user', caller.headers)
      const me = await get(ctx.app, '/users/me', caller.headers)
      for (const response of [current, me]) {
        assert.equal(response.statusCode, 200, response.body)
        assert.match(String(response.headers['content-type']), /^application\/json/)
        assert.match(String(response.headers['cache-control']), /\bno-store\b/)
        assert.equal(response.body.includes(caller.password), false)
        const body = response.json<Record<string, unknown>>()
        assert.equal(body.id, caller.id)
        assert.equal(body.name, caller.name)
        assert.equal(body.email, caller.email)
        assert.equal(body.role, 'user')
        assert.equal(body.is_active, true)
        assert.equal(body.email_verified, false)
        assert.ok(!Number.isNaN(Date.parse(String(body.created_at))), 'created_at is a date')
        assert.ok(!Number.isNaN(Date.parse(String(body.updated_at))), 'updated_at is a date')
        for (const key of Object.keys(body))
          assert.doesNotMatch(key, /password|hash|name_key/, `${key} is not exposed`)
      }
      assert.deepEqual(me.json(), current.json(), '/users/me is an alias of /current-user')
    }
  })

  test('no Authorization header is 401 with a bare Bearer challenge (no error code)', async () => {
    await assertRefused(ctx.app, undefined)
    for (const url of PROTECTED_ROUTES) {
      const response = await get(ctx.app, url)
      assert.doesNotMatch(String(response.headers['www-authenticate']), /error=/, url)
    }
  })

  test('Basic credentials are refused with a Bearer challenge, even when they are right', async () => {
    const user = await register(ctx.app)
    const basic = Buffer.from(`${user.email}:${user.password}`).toString('base64')
    await assertRefused(ctx.app, `Basic ${basic}`)
  })

  test('"Bearer" without a token, or with garbage, is 401', async () => {
    const user = await registerAndLogin(ctx.app)
    for (const authorization of [
      'Bearer',
      'Bearer ',
      'Bearer garbage',
      'Bearer a.b.c',
      'Bearer eyJhbGciOiJIUzI1NiJ9.e30.',
      `Bearer ${user.token} extra`,
      `Bearer ${user.token}.${user.token}`,
      user.token,
    ])
      await assertRefused(ctx.app, authorization)
  })

  test('a token with one bit of its signature flipped is 401 invalid_token', async () => {
    const user = await registerAndLogin(ctx.app)
    const tampered = flipSignatureBit(user.token)
    assert.notEqual(tampered, user.token)
    await assertRefused(ctx.app, `Bearer ${tampered}`, { invalidToken: true })
    await assertAccepted(ctx.app, user.token, user.id)
  })

  test("a token whose payload was changed to another user's id, keeping its signature, is 401", async () => {
    const attacker = await registerAndLogin(ctx.app)
    const victim = await registerAndLogin(ctx.app)
    const claims = decodeJwt(attacker.token)
    const forged = withPayload(attacker.token, { ...claims, sub: String(victim.id), user_id: victim.id })
    await assertRefused(ctx.app, `Bearer ${forged}`, { invalidToken: true })
    // Even the unchanged payload, re-encoded, keeps working: only the change is refused.
    await assertAccepted(ctx.app, withPayload(attacker.token, claims), attacker.id)
    await assertAccepted(ctx.app, victim.token, victim.id)
  })

  test('a token with the same claims signed with another secret is 401', async () => {
    const user = await registerAndLogin(ctx.app)
    const claims = decodeJwt(user.token)
    const foreign = await sign(claims, bytes('another-secret-key-that-is-also-long-enough-0123'))
    await assertRefused(ctx.app, `Bearer ${foreign}`, { invalidToken: true })
    await assertAccepted(ctx.app, await sign(claims, bytes(TEST_SECRET)), user.id)
  })

  test('an expired token is 401, saying that it expired', async () => {
    const user = await registerAndLogin(ctx.app)
    const claims = decodeJwt(user.token)
    const now = nowSeconds()
    const expired = await sign({ ...claims, iat: now - 2 * 3600, exp: now - 3600 }, bytes(TEST_SECRET))
    await assertRefused(ctx.app, `Bearer ${expired}`, { invalidToken: true, detail: /expired/i })
    const fresh = await sign({ ...claims, iat: now, exp: now + 600 }, bytes(TEST_SECRET))
    await assertAccepted(ctx.app, fresh, user.id)
  })

  test('an unsigned token (alg "none") is 401', async () => {
    const user = await registerAndLogin(ctx.app)
    const claims = decodeJwt(user.token)
    for (const header of [{ alg: 'none' }, { alg: 'none', typ: 'JWT' }, { alg: 'None' }, { alg: 'NONE' }]) {
      await assertRefused(ctx.app, `Bearer ${unsigned(claims, header)}`, { invalidToken: true })
      // The same unsigned token with the original signature appended is no better.
      const [, , signature] = user.token.split('.')
      await assertRefused(ctx.app, `Bearer ${unsigned(claims, header)}${signature}`, { invalidToken: true })
    }
  })

  test('a token from another issuer is 401', async () => {
    const user = await registerAndLogin(ctx.app)
    const claims = decodeJwt(user.token)
    for (const iss of ['someone-else', `${ISSUER} `, ISSUER.toUpperCase()]) {
      const token = await sign({ ...claims, iss }, bytes(TEST_SECRET))
      await assertRefused(ctx.app, `Bearer ${token}`, { invalidToken: true })
    }
    const { iss: _iss, ...withoutIssuer } = claims
    await assertRefused(ctx.app, `Bearer ${await sign(withoutIssuer, bytes(TEST_SECRET))}`, {
      invalidToken: true,
    })
    await assertAccepted(ctx.app, await sign({ ...claims, iss: ISSUER }, bytes(TEST_SECRET)), user.id)
  })

  test('a token for another audience is 401', async () => {
    const user = await registerAndLogin(ctx.app)
    const claims = decodeJwt(user.token)
    for (const aud of ['another-api', ['another-api', 'yet-another-api']]) {
      const token = await sign({ ...claims, aud }, bytes(TEST_SECRET))
      await assertRefused(ctx.app, `Bearer ${token}`, { invalidToken: true })
    }
    const { aud: _aud, ...withoutAudience } = claims
    await assertRefused(ctx.app, `Bearer ${await sign(withoutAudience, bytes(TEST_SECRET))}`, {
      invalidToken: true,
    })
    await assertAccepted(ctx.app, await sign({ ...claims, aud: AUDIENCE }, bytes(TEST_SECRET)), user.id)
  })

  test('a token signed with the right secret but HS384 or HS512 is 401: only HS256 is allowed', async () => {
    const user = await registerAndLogin(ctx.app)
    const claims = decodeJwt(user.token)
    for (const alg of ['HS384', 'HS512']) {
      const token = await sign(claims, bytes(TEST_SECRET), alg)
      assert.equal(decodeProtectedHeader(token).alg, alg)
      await assertRefused(ctx.app, `Bearer ${token}`, { invalidToken: true })
    }
    await assertAccepted(ctx.app, await sign(claims, bytes(TEST_SECRET), 'HS256'), user.id)
  })

  test('a correctly signed token without an expiry, or with inconsistent user claims, is 401', async () => {
    const user = await registerAndLogin(ctx.app)
    const other = await register(ctx.app)
    const claims = decodeJwt(user.token)
    const { exp: _exp, ...neverExpires } = claims
    for (const payload of [
      neverExpires,
      { ...claims, user_id: String(user.id) },
      { ...claims, sub: String(other.id) },
      { ...claims, user_id: other.id },
    ]) {
      const token = await sign(payload, bytes(TEST_SECRET))
      await assertRefused(ctx.app, `Bearer ${token}`, { invalidToken: true })
    }
    await assertAccepted(ctx.app, await sign(claims, bytes(TEST_SECRET)), user.id)
  })

  test('the token of a user who then deleted their account is 401', async () => {
    const user = await registerAndLogin(ctx.app)
    await assertAccepted(ctx.app, user.token, user.id)
    const deleted = await ctx.app.inject({
      method: 'DELETE',
      url: `/users/${user.id}`,
      headers: user.headers,
    })
    assert.equal(deleted.statusCode, 204, deleted.body)
    const row = await ctx.app.db.selectFrom('users').select('id').where('id', '=', user.id).executeTakeFirst()
    assert.equal(row, undefined)
    await assertRefused(ctx.app, `Bearer ${user.token}`, { invalidToken: true })
    assertProblem(await loginForm(ctx.app, { username: user.email, password: user.password }), 401)
  })

  test('the token of a user whom an admin then deactivated is 401', async () => {
    const admin = await adminAndLogin(ctx.app)
    const user = await registerAndLogin(ctx.app)
    await assertAccepted(ctx.app, user.token, user.id)
    const patched = await ctx.app.inject({
      method: 'PATCH',
      url: `/users/${user.id}`,
      headers: admin.headers,
      payload: { is_active: false },
    })
    assert.equal(patched.statusCode, 200, patched.body)
    assert.equal(patched.json<{ is_active: boolean }>().is_active, false)
    await assertRefused(ctx.app, `Bearer ${user.token}`, { invalidToken: true })
    await assertAccepted(ctx.app, admin.token, admin.id)
  })

  test('a user deactivated directly in the database can no longer log in, refresh or read their account', async () => {
    // Outside the API no session is revoked (access tokens then end with their lifetime), but
    // nothing that reads the account accepts it.
    const user = await registerAndLogin(ctx.app)
    const refreshToken = (
      await ctx.app.inject({
        method: 'POST',
        url: '/login',
        payload: { username: user.email, password: user.password },
      })
    ).json<{ refresh_token: string }>().refresh_token
    await ctx.app.db.updateTable('users').set({ is_active: false }).where('id', '=', user.id).execute()
    assertProblem(await ctx.app.inject({ method: 'GET', url: '/current-user', headers: user.headers }), 401)
    assertProblem(
      await ctx.app.inject({
        method: 'POST',
        url: '/login',
        payload: { username: user.email, password: user.password },
      }),
      401,
    )
    assertProblem(
      await ctx.app.inject({
        method: 'POST',
        url: '/token/refresh',
        payload: { refresh_token: refreshToken },
      }),
      401,
    )
  })
})

// ------------------------------------------------------------------ asymmetric algorithms

const KEY_PAIRS = {
  RS256: () =>
    generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    }),
  ES256: () =>
    generateKeyPairSync('ec', {
      namedCurve: 'P-256',
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    }),
} as const

for (const [alg, generate] of Object.entries(KEY_PAIRS)) {
  describe(`JWT_ALGORITHM=${alg} with key files [sqlite]`, () => {
    let dir: string
    let app: FastifyInstance
    let keys: { publicKey: string; privateKey: string }

    before(async () => {
      dir = mkdtempSync(path.join(tmpdir(), 'fastauth-keys-'))
      keys = generate()
      const privateFile = path.join(dir, 'private.pem')
      const publicFile = path.join(dir, 'public.pem')
      writeFileSync(privateFile, keys.privateKey, { mode: 0o600 })
      writeFileSync(publicFile, keys.publicKey)
      const config = testConfig({
        DATABASE_URL: `sqlite:///${path.join(dir, 'test.db')}`,
        JWT_ALGORITHM: alg,
        JWT_PRIVATE_KEY_FILE: privateFile,
        JWT_PUBLIC_KEY_FILE: publicFile,
      })
      app = await buildApp(config, { logger: false })
      await app.ready()
    })

    after(async () => {
      await app?.close()
      rmSync(dir, { recursive: true, force: true })
    })

    test(`issues ${alg} tokens that verify with the public key and open the protected routes`, async () => {
      const user = await registerAndLogin(app)
      assert.equal(decodeProtectedHeader(user.token).alg, alg)
      const verified = await jwtVerify(user.token, await importSPKI(keys.publicKey, alg), {
        algorithms: [alg],
        issuer: ISSUER,
        audience: AUDIENCE,
      })
      assert.equal(verified.payload.user_id, user.id)
      assert.equal(verified.payload.sub, String(user.id))
      await assertAccepted(app, user.token, user.id)
    })

    test('refuses an HS256 token signed with the public key as HMAC secret (algorithm confusion)', async () => {
      const user = await registerAndLogin(app)
      const claims = decodeJwt(user.token)
      for (const secret of [keys.publicKey, keys.publicKey.trim()]) {
        const confused = await sign(claims, bytes(secret), 'HS256')
        await assertRefused(app, `Bearer ${confused}`, { invalidToken: true })
      }
      // Nor does SECRET_KEY sign anything once an asymmetric algorithm is configured.
      await assertRefused(app, `Bearer ${await sign(claims, bytes(TEST_SECRET), 'HS256')}`, {
        invalidToken: true,
      })
      await assertRefused(app, `Bearer ${unsigned(claims)}`, { invalidToken: true })
      // The same claims signed with the private key are accepted.
      await assertAccepted(app, await sign(claims, await importPKCS8(keys.privateKey, alg), alg), user.id)
    })

    test('refuses a token signed with another key pair of the same kind', async () => {
      const user = await registerAndLogin(app)
      const claims = decodeJwt(user.token)
      const stranger = await importPKCS8(generate().privateKey, alg)
      await assertRefused(app, `Bearer ${await sign(claims, stranger, alg)}`, { invalidToken: true })
    })
  })
}
