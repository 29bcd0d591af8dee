/**
 * Access token lifetimes at their exact boundaries, on a clock the test moves (test/support/clock.ts),
 * and claims that are signed with the right key but name what we never issue.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { SignJWT, decodeJwt, type JWTPayload } from 'jose'
import { createTokenService, ISSUED_AT_LEEWAY_SECONDS, TokenError } from '../../src/auth/tokens.js'
import { createSecretSigningKeys } from '../../src/services/signing-keys.js'
import {
  assertProblem,
  bearer,
  describeEachEngine,
  registerAndLogin,
  TEST_SECRET,
  testConfig,
  TEST_KID,
} from '../support/app.js'
import { SECOND, TestClock } from '../support/clock.js'

const LIFETIME_SECONDS = 15 * 60
const key = new TextEncoder().encode(TEST_SECRET)
const sign = (payload: JWTPayload) =>
  new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: TEST_KID }).sign(key)

const currentUser = (app: FastifyInstance, token: string) =>
  app.inject({ method: 'GET', url: '/current-user', headers: bearer(token) })

async function assertAccepted(app: FastifyInstance, token: string, what: string) {
  const response = await currentUser(app, token)
  assert.equal(response.statusCode, 200, `${what}: answered ${response.statusCode} ${response.body}`)
}

async function assertRefused(app: FastifyInstance, token: string, what: string, detail?: RegExp) {
  const response = await currentUser(app, token)
  assert.equal(response.statusCode, 401, `${what}: answered ${response.statusCode} ${response.body}`)
  const problem = assertProblem(response, 401)
  assert.match(String(response.headers['www-authenticate']), /error="invalid_token"/, what)
  if (detail) assert.match(problem.detail, detail, what)
}

const clock = new TestClock()

describeEachEngine(
  'access token lifetimes on the server clock',
  (ctx) => {
    test('a token works until the second before its exp and is refused from exp on: no clock tolerance', async () => {
      clock.set(Date.now())
      const user = await registerAndLogin(ctx.app)
      const { iat, exp } = decodeJwt(user.token) as { iat: number; exp: number }
      assert.equal(exp - iat, LIFETIME_SECONDS, 'the lifetime the server sets')
      clock.set((exp - 1) * SECOND)
      await assertAccepted(ctx.app, user.token, 'one second before exp')
      clock.set(exp * SECOND)
      await assertRefused(ctx.app, user.token, 'at exp', /expired/i)
      clock.set((exp + 30) * SECOND)
      await assertRefused(ctx.app, user.token, '30 s after exp', /expired/i)
    })

    test(`an iat up to ${ISSUED_AT_LEEWAY_SECONDS} s ahead (another instance's clock) passes; one second more is 401`, async () => {
      clock.set(Date.now())
      const user = await registerAndLogin(ctx.app)
      const claims = decodeJwt(user.token)
      const ahead = (seconds: number) => {
        const iat = clock.seconds + seconds
        return sign({ ...claims, iat, exp: iat + LIFETIME_SECONDS })
      }
      await assertAccepted(ctx.app, await ahead(ISSUED_AT_LEEWAY_SECONDS), 'iat at the leeway')
      await assertRefused(ctx.app, await ahead(ISSUED_AT_LEEWAY_SECONDS + 1), 'iat past the leeway')
    })

    test('a correctly signed token with a role we never issue is 401, whatever the role says', async () => {
      clock.set(Date.now())
      const user = await registerAndLogin(ctx.app)
      const claims = decodeJwt(user.token)
      for (const role of [
        'superadmin',
        'Admin',
        'ADMIN',
        'root',
        '',
        'admin ',
        null,
        1,
        ['admin'],
        { admin: true },
      ])
        await assertRefused(ctx.app, await sign({ ...claims, role }), `role ${JSON.stringify(role)}`)
      const { role: _role, ...withoutRole } = claims
      await assertRefused(ctx.app, await sign(withoutRole), 'no role')
      // The same claims re-signed with the role issued pass: only the role made the difference.
      await assertAccepted(ctx.app, await sign(claims), 'the issued role')
    })
  },
  { build: { clock } },
)

test('the token service: verification reads the clock it is given, for exp and for iat', async () => {
  const serviceClock = new TestClock(Date.UTC(2030, 0, 1))
  const tokens = await createTokenService(
    testConfig(),
    await createSecretSigningKeys(TEST_SECRET, 'HS256'),
    serviceClock,
  )
  const { token, claims } = await tokens.issueAccessToken({ id: 7, role: 'admin' }, 'session-1', ['pwd'])
  assert.equal(claims.iat, serviceClock.seconds, 'issued at the clock time')
  assert.equal(claims.exp, serviceClock.seconds + LIFETIME_SECONDS)
  assert.deepEqual(await tokens.verifyAccessToken(token), claims)

  serviceClock.set((claims.exp - 1) * SECOND)
  assert.equal((await tokens.verifyAccessToken(token)).sub, '7')
  serviceClock.set(claims.exp * SECOND)
  await assert.rejects(tokens.verifyAccessToken(token), (error: unknown) => {
    assert.ok(error instanceof TokenError)
    assert.equal(error.reason, 'expired')
    return true
  })
  // Before its iat by more than the leeway (this verifier's clock is behind): invalid, not expired.
  serviceClock.set((claims.iat - ISSUED_AT_LEEWAY_SECONDS - 1) * SECOND)
  await assert.rejects(tokens.verifyAccessToken(token), (error: unknown) => {
    assert.ok(error instanceof TokenError)
    assert.equal(error.reason, 'invalid')
    return true
  })
  serviceClock.set((claims.iat - ISSUED_AT_LEEWAY_SECONDS) * SECOND)
  assert.equal((await tokens.verifyAccessToken(token)).sub, '7')
})

test('the token service: every claim we issue must be there with its type, or the token is invalid', async () => {
  const serviceClock = new TestClock()
  const tokens = await createTokenService(
    testConfig(),
    await createSecretSigningKeys(TEST_SECRET, 'HS256'),
    serviceClock,
  )
  const { claims } = await tokens.issueAccessToken({ id: 7, role: 'user' }, 'session-1', [
    'pwd',
    'otp',
    'mfa',
  ])
  const issued = { ...claims, iss: 'fastauth-api', aud: 'fastauth-api' }
  assert.equal((await tokens.verifyAccessToken(await sign(issued))).sid, 'session-1', 'as issued, it passes')
  const broken: Record<string, JWTPayload> = {
    'sub a number': { ...issued, sub: 7 as unknown as string },
    'sub another user': { ...issued, sub: '8' },
    'user_id a string': { ...issued, user_id: '7' },
    'no sid': { ...issued, sid: undefined },
    'sid a number': { ...issued, sid: 1 },
    'no jti': { ...issued, jti: undefined },
    'no iat': { ...issued, iat: undefined },
    'iat a string': { ...issued, iat: String(claims.iat) as unknown as number },
    'no exp': { ...issued, exp: undefined },
    'role unknown': { ...issued, role: 'superadmin' },
    'amr a string': { ...issued, amr: 'pwd' },
    'amr with a number': { ...issued, amr: ['pwd', 1] },
    'a lifetime a second too long': { ...issued, exp: claims.exp + 1 },
    'issued in the future': { ...issued, iat: claims.iat + 3600, exp: claims.exp + 3600 },
  }
  for (const [what, payload] of Object.entries(broken))
    await assert.rejects(tokens.verifyAccessToken(await sign(payload)), (error: unknown) => {
      assert.ok(error instanceof TokenError, what)
      assert.equal(error.reason, 'invalid', what)
      assert.equal(error.name, 'TokenError')
      assert.equal(error.message, 'The access token is invalid', what)
      return true
    })
})

test('the token service: a bad signature is invalid, an expired token says it expired', async () => {
  const serviceClock = new TestClock()
  const tokens = await createTokenService(
    testConfig(),
    await createSecretSigningKeys(TEST_SECRET, 'HS256'),
    serviceClock,
  )
  const { token, claims } = await tokens.issueAccessToken({ id: 7, role: 'user' }, 'session-1', [
    'pwd',
    'otp',
    'mfa',
  ])
  const forged = await new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: TEST_KID })
    .sign(new TextEncoder().encode('another-secret-key-that-is-long-enough-0123'))
  await assert.rejects(tokens.verifyAccessToken(forged), (error: unknown) => {
    assert.ok(error instanceof TokenError)
    assert.deepEqual([error.reason, error.message], ['invalid', 'The access token is invalid'])
    return true
  })
  serviceClock.set(claims.exp * SECOND)
  await assert.rejects(tokens.verifyAccessToken(token), (error: unknown) => {
    assert.ok(error instanceof TokenError)
    assert.deepEqual([error.reason, error.message], ['expired', 'The access token has expired'])
    return true
  })
})

test('a token issued before `amr` existed verifies as a password login: amr ["pwd"]', async () => {
  const serviceClock = new TestClock()
  const tokens = await createTokenService(
    testConfig(),
    await createSecretSigningKeys(TEST_SECRET, 'HS256'),
    serviceClock,
  )
  const { claims } = await tokens.issueAccessToken({ id: 7, role: 'user' }, 'session-1', [
    'pwd',
    'otp',
    'mfa',
  ])
  const { amr: _amr, ...withoutAmr } = { ...claims, iss: 'fastauth-api', aud: 'fastauth-api' }
  serviceClock.set(claims.iat * SECOND)
  assert.deepEqual((await tokens.verifyAccessToken(await sign(withoutAmr))).amr, ['pwd'])
  assert.deepEqual(
    (await tokens.verifyAccessToken(await sign({ ...withoutAmr, amr: ['pwd', 'otp', 'mfa'] }))).amr,
    ['pwd', 'otp', 'mfa'],
  )
})
