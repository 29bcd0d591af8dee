/**
 * Our tokens as other services verify them: a separate verifier with only the JWKS URL (jose's
 * remote key set, over real HTTP), and a second instance on the same database, across a rotation
 * made on the first one, with no failed request at any point of it.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { buildApp } from '../../../src/app.js'
import { KEY_RELOAD_SECONDS } from '../../../src/services/signing-keys.js'
import { bearer, describeEachEngine, login, registerAndLogin } from '../../support/app.js'
import { SECOND, TestClock } from '../../support/clock.js'
import { jwks, kidOf } from './support.js'

const clock = new TestClock()

describeEachEngine(
  'signing keys: other services verify our tokens across a rotation',
  (ctx) => {
    let base: string
    let other: FastifyInstance
    const otherClock = new TestClock()

    before(async () => {
      base = await ctx.app.listen({ host: '127.0.0.1', port: 0 })
      otherClock.set(clock.now())
      other = await buildApp(ctx.config, { logger: false, clock: otherClock })
      await other.ready()
    })
    after(() => other?.close())

    const setBoth = (time: number | Date) => {
      clock.set(time)
      otherClock.set(time)
    }

    test('a service with only the JWKS URL verifies every token, before, during and after the rotation', async () => {
      // A verifier fetches the set again when a token names a kid it has not seen, at most once
      // per cooldown (jose: 30 s). Here the server's time jumps minutes while the verifier's runs
      // milliseconds, so its cooldown is set to nothing: it stands for the minutes that pass.
      const keySet = createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`), { cooldownDuration: 0 })
      const verify = async (token: string, when: string) => {
        const { payload, protectedHeader } = await jwtVerify(token, keySet, {
          issuer: ctx.config.jwtIssuer,
          audience: ctx.config.jwtAudience,
          typ: 'at+jwt',
          algorithms: ['EdDSA'],
          currentDate: new Date(clock.now()),
        }).catch((error: unknown) => assert.fail(`${when}: ${String(error)}`))
        assert.equal(protectedHeader.kid, kidOf(token))
        return payload
      }
      const user = await registerAndLogin(ctx.app)
      const tokens = [user.token]
      await verify(user.token, 'before the rotation')
      const next = await ctx.app.signingKeys.rotate()
      for (const [when, time] of [
        ['just after the rotation', clock.now()],
        ['the last millisecond before the next key signs', next.activates_at.getTime() - 1],
        ['when the next key starts signing', next.activates_at.getTime()],
        ['a minute later', next.activates_at.getTime() + 60 * SECOND],
      ] as const) {
        clock.set(time)
        tokens.push(await login(ctx.app, user.email, user.password))
        for (const token of tokens.filter((token) => decodeExp(token) > clock.now() / 1000))
          assert.equal((await verify(token, when)).sub, String(user.id))
      }
      assert.deepEqual(new Set(tokens.map(kidOf)).size, 2, 'tokens of both keys were verified')
    })

    test('a second instance on the same database verifies tokens of a key the first one made, at once', async () => {
      const user = await registerAndLogin(ctx.app)
      setBoth(clock.now())
      const next = await ctx.app.signingKeys.rotate()
      setBoth(next.activates_at)
      const token = await login(ctx.app, user.email, user.password)
      assert.equal(kidOf(token), next.kid)
      // The other instance read the keys before the rotation: the unknown kid makes it read them again.
      const answer = await other.inject({ method: 'GET', url: '/current-user', headers: bearer(token) })
      assert.equal(answer.statusCode, 200, answer.body)
      // And it signs with the new key too, having read the same dates.
      const fromOther = await login(other, user.email, user.password)
      assert.equal(kidOf(fromOther), next.kid)
    })

    test('the second instance publishes a new key within KEY_RELOAD_SECONDS, without a token asking', async () => {
      const before = (await jwks(other)).map((key) => key.kid)
      setBoth(clock.now())
      otherClock.advance(KEY_RELOAD_SECONDS * SECOND) // its keys are now due for a re-read
      const next = await ctx.app.signingKeys.rotate()
      assert.equal(before.includes(next.kid), false)
      // The request that finds them due starts the re-read; the set follows within moments.
      let published: string[] = []
      for (let attempt = 0; attempt < 40 && !published.includes(next.kid); attempt++) {
        published = (await jwks(other)).map((key) => key.kid)
        if (!published.includes(next.kid)) await new Promise((resolve) => setTimeout(resolve, 50))
      }
      assert.ok(
        published.includes(next.kid),
        `the other instance publishes ${next.kid}: ${published.join(', ')}`,
      )
    })
  },
  { env: { JWT_ALGORITHM: 'EdDSA' }, build: { clock } },
)

const decodeExp = (token: string) =>
  (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp
