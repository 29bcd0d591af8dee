import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose'
import { assertProblem, describeEachEngine, register, TEST_SECRET, uniqueUser } from '../../support/app.js'
import {
  ISSUER,
  AUDIENCE,
  FORM,
  bytes,
  nowSeconds,
  loginForm,
  loginJson,
  type Reply,
  invalidFields,
  assertAccepted,
} from './support.js'

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
