import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import {
  adminAndLogin,
  assertProblem,
  describeEachEngine,
  register,
  registerAndLogin,
  TEST_SECRET,
} from '../../support/app.js'
import {
  ISSUER,
  AUDIENCE,
  PROTECTED_ROUTES,
  bytes,
  nowSeconds,
  loginForm,
  get,
  sign,
  flipSignatureBit,
  withPayload,
  unsigned,
  assertAccepted,
  assertRefused,
} from './support.js'

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
