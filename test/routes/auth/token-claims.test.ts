import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { SignJWT, decodeJwt, decodeProtectedHeader, type JWTPayload } from 'jose'
import {
  assertProblem,
  bearer,
  describeEachEngine,
  registerAndLogin,
  TEST_SECRET,
  TEST_KID,
} from '../../support/app.js'

// Every token here is signed with the server's own key, as someone who obtained SECRET_KEY (or a
// bug in our issuing code) would sign it: only the claims and the header make it wrong. The claims
// start from a real login's token, so the session, user and role are real ones.

const YEAR_SECONDS = 365 * 24 * 60 * 60
const LIFETIME_SECONDS = 15 * 60
const nowSeconds = () => Math.floor(Date.now() / 1000)
const key = new TextEncoder().encode(TEST_SECRET)

function sign(payload: JWTPayload, header: { typ?: string } = { typ: 'at+jwt' }) {
  return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: TEST_KID, ...header }).sign(key)
}

async function currentUser(app: FastifyInstance, token: string) {
  return app.inject({ method: 'GET', url: '/current-user', headers: bearer(token) })
}

async function assertRefused(app: FastifyInstance, token: string, what: string) {
  const response = await currentUser(app, token)
  assert.equal(response.statusCode, 401, `${what}: answered ${response.statusCode} ${response.body}`)
  assertProblem(response, 401)
  const challenge = String(response.headers['www-authenticate'])
  assert.match(challenge, /^Bearer /, `${what}: ${challenge}`)
  assert.match(challenge, /error="invalid_token"/, `${what}: ${challenge}`)
}

async function assertAccepted(app: FastifyInstance, token: string, userId: number, what: string) {
  const response = await currentUser(app, token)
  assert.equal(response.statusCode, 200, `${what}: answered ${response.statusCode} ${response.body}`)
  assert.equal(response.json<{ id: number }>().id, userId, what)
}

describeEachEngine('access token claims signed with the right key', (ctx) => {
  test('issued access tokens say typ "at+jwt" (RFC 9068)', async () => {
    const user = await registerAndLogin(ctx.app)
    assert.equal(decodeProtectedHeader(user.token).typ, 'at+jwt')
  })

  test('a token without typ, or with typ "JWT" or another type, is 401 invalid_token', async () => {
    const user = await registerAndLogin(ctx.app)
    const claims = decodeJwt(user.token)
    await assertRefused(ctx.app, await sign(claims, {}), 'no typ')
    for (const typ of ['JWT', 'jwt', 'at+jwt2', 'id_token+jwt', 'application/jwt'])
      await assertRefused(ctx.app, await sign(claims, { typ }), `typ ${typ}`)
    // The same claims with the right type pass: only the header made the difference.
    await assertAccepted(ctx.app, await sign(claims), user.id, 'typ at+jwt')
    await assertAccepted(ctx.app, await sign(claims, { typ: 'application/at+jwt' }), user.id, 'full type')
  })

  test('a token issued a year in the future is 401, even with a lifetime of the usual length', async () => {
    const user = await registerAndLogin(ctx.app)
    const claims = decodeJwt(user.token)
    const iat = nowSeconds() + YEAR_SECONDS
    await assertRefused(ctx.app, await sign({ ...claims, iat, exp: iat + LIFETIME_SECONDS }), 'iat +1 year')
  })

  test('iat up to a minute ahead (clock skew between instances) is accepted; two minutes ahead is 401', async () => {
    const user = await registerAndLogin(ctx.app)
    const claims = decodeJwt(user.token)
    const now = nowSeconds()
    const twoMinutes = now + 120
    await assertRefused(
      ctx.app,
      await sign({ ...claims, iat: twoMinutes, exp: twoMinutes + 60 }),
      'iat +120 s',
    )
    const thirtySeconds = now + 30
    await assertAccepted(
      ctx.app,
      await sign({ ...claims, iat: thirtySeconds, exp: thirtySeconds + 60 }),
      user.id,
      'iat +30 s',
    )
  })

  test('a token valid for a year (exp - iat far beyond the configured lifetime) is 401', async () => {
    const user = await registerAndLogin(ctx.app)
    const claims = decodeJwt(user.token)
    const now = nowSeconds()
    await assertRefused(ctx.app, await sign({ ...claims, iat: now, exp: now + YEAR_SECONDS }), 'a year')
    // One second beyond the configured lifetime is already too long.
    await assertRefused(
      ctx.app,
      await sign({ ...claims, iat: now, exp: now + LIFETIME_SECONDS + 1 }),
      'lifetime + 1 s',
    )
    await assertAccepted(
      ctx.app,
      await sign({ ...claims, iat: now, exp: now + LIFETIME_SECONDS }),
      user.id,
      'exactly the lifetime',
    )
  })

  test('a token issued longer ago than the lifetime is 401, although its exp is still ahead', async () => {
    const user = await registerAndLogin(ctx.app)
    const claims = decodeJwt(user.token)
    const now = nowSeconds()
    await assertRefused(
      ctx.app,
      await sign({ ...claims, iat: now - 2 * LIFETIME_SECONDS, exp: now + 60 }),
      'iat two lifetimes ago',
    )
    await assertRefused(
      ctx.app,
      await sign({ ...claims, iat: now - YEAR_SECONDS, exp: now + LIFETIME_SECONDS }),
      'iat a year ago',
    )
  })

  test('the token from /login, and the same claims signed again, are accepted', async () => {
    const user = await registerAndLogin(ctx.app)
    await assertAccepted(ctx.app, user.token, user.id, 'from /login')
    await assertAccepted(ctx.app, await sign(decodeJwt(user.token)), user.id, 'signed again')
  })
})
