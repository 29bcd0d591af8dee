/**
 * A key rotation, on a clock the test moves: the next key is published before it signs, every
 * token signed before it keeps working until it expires, and the replaced key then leaves the
 * JWKS, stops verifying (even a token freshly signed with it) and loses its private part.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeJwt } from 'jose'
import { ISSUED_AT_LEEWAY_SECONDS } from '../../../src/auth/tokens.js'
import { PUBLISH_AHEAD_SECONDS } from '../../../src/services/signing-keys.js'
import { describeEachEngine, registerAndLogin, login, bearer } from '../../support/app.js'
import { MINUTE, SECOND, TestClock } from '../../support/clock.js'
import { assertRefused, sign } from '../auth/support.js'
import { jwks, kidOf, stolenPrivateKey, storedKeys } from './support.js'

const clock = new TestClock()
const LIFETIME = 15 * MINUTE

describeEachEngine(
  'signing keys: a rotation without a failed request (EdDSA)',
  (ctx) => {
    const me = (token: string) =>
      ctx.app.inject({ method: 'GET', url: '/current-user', headers: bearer(token) })

    test('the first start makes one key: tokens name it, the JWKS publishes only its public part', async () => {
      const rows = await storedKeys(ctx.app)
      assert.equal(rows.length, 1)
      assert.deepEqual([rows[0]!.generation, rows[0]!.algorithm, rows[0]!.retires_at], [1, 'EdDSA', null])
      // At rest the private key is ciphertext bound to its kid, never a PEM.
      assert.match(rows[0]!.private_key!, /^v1\./)
      assert.equal(rows[0]!.private_key!.includes('PRIVATE KEY'), false)
      const user = await registerAndLogin(ctx.app)
      assert.equal(kidOf(user.token), rows[0]!.kid)
      const published = await jwks(ctx.app)
      assert.deepEqual(
        published.map(({ kid, kty, crv, alg, use }) => ({ kid, kty, crv, alg, use })),
        [{ kid: rows[0]!.kid, kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' }],
      )
    })

    test('a rotation publishes the next key at once; it signs only 7 minutes later, and a second rotation waits', async () => {
      const user = await registerAndLogin(ctx.app)
      const first = kidOf(user.token)!
      const next = await ctx.app.signingKeys.rotate()
      assert.equal(next.state, 'next')
      assert.equal(next.activates_at.getTime(), clock.now() + PUBLISH_AHEAD_SECONDS * SECOND)
      assert.deepEqual(
        (await jwks(ctx.app)).map((key) => key.kid),
        [first, next.kid],
      )
      await assert.rejects(ctx.app.signingKeys.rotate(), /already waits to sign/)
      assert.equal((await storedKeys(ctx.app)).length, 2, 'the refused rotation stored nothing')

      clock.set(next.activates_at.getTime() - 1)
      const before = await login(ctx.app, user.email, user.password)
      assert.equal(kidOf(before), first, 'the old key signs until the last millisecond before')
      clock.set(next.activates_at)
      const after = await login(ctx.app, user.email, user.password)
      assert.equal(kidOf(after), next.kid)
      for (const token of [user.token, before, after]) assert.equal((await me(token)).statusCode, 200)
      const states = await ctx.app.signingKeys.list()
      assert.deepEqual(
        states.map((key) => key.state),
        ['retiring', 'current'],
      )
      // The replaced key verifies until the last token it signed has expired (and the iat leeway).
      assert.equal(
        states[0]!.retires_at!.getTime(),
        next.activates_at.getTime() + LIFETIME + ISSUED_AT_LEEWAY_SECONDS * SECOND,
      )
    })

    test('the replaced key is retired at its time: out of the JWKS, refused even in a fresh token, private part erased', async () => {
      const [old, current] = await ctx.app.signingKeys.list()
      const thief = await stolenPrivateKey(ctx.app, ctx.config, old!.kid)
      const user = await registerAndLogin(ctx.app)
      const fresh = () => {
        const claims = decodeJwt(user.token)
        const iat = Math.floor(clock.now() / 1000)
        return sign({ ...claims, iat, exp: iat + 60 }, thief, 'EdDSA', old!.kid)
      }

      clock.set(old!.retires_at!.getTime() - 1)
      assert.equal((await me(await fresh())).statusCode, 200, 'still verifying 1 ms before')
      clock.set(old!.retires_at!)
      await assertRefused(ctx.app, `Bearer ${await fresh()}`, { invalidToken: true })
      assert.deepEqual(
        (await jwks(ctx.app)).map((key) => key.kid),
        [current!.kid],
      )
      const rows = await storedKeys(ctx.app)
      assert.deepEqual(
        rows.map((row) => [row.kid, row.private_key === null]),
        [
          [old!.kid, true],
          [current!.kid, false],
        ],
      )
      assert.deepEqual(
        (await ctx.app.signingKeys.list()).map((key) => key.state),
        ['retired', 'current'],
      )
    })
  },
  { env: { JWT_ALGORITHM: 'EdDSA' }, build: { clock } },
)
