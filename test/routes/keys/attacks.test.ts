/**
 * Tokens an attacker makes against stored asymmetric keys: each names a key, an algorithm or a
 * secret we never sign with, and each is refused (401) however real its claims.
 */
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { test } from 'node:test'
import { decodeJwt, generateKeyPair, importPKCS8, type CryptoKey, type JWTPayload } from 'jose'
import { describeEachEngine, registerAndLogin, TEST_SECRET, type EngineContext } from '../../support/app.js'
import { assertAccepted, assertRefused, base64url, bytes, sign, unsigned } from '../auth/support.js'
import { jwks, kidOf, stolenPrivateKey, type PublishedKey } from './support.js'

/** A real user's token, its claims and the kid the server signed it with. */
async function realToken(ctx: EngineContext) {
  const user = await registerAndLogin(ctx.app)
  return { user, claims: decodeJwt(user.token), kid: kidOf(user.token)! }
}

describeEachEngine(
  'signing keys: forged tokens are refused (EdDSA)',
  (ctx) => {
    test('the server’s own key and claims, re-signed: accepted (the forgeries below differ in one thing each)', async () => {
      const { user, claims, kid } = await realToken(ctx)
      const key = await stolenPrivateKey(ctx.app, ctx.config, kid)
      await assertAccepted(ctx.app, await sign(claims, key, 'EdDSA', kid), user.id)
    })

    test('a kid the server never made, no kid, or a kid that is not a string: 401', async () => {
      const { claims, kid } = await realToken(ctx)
      const key = await stolenPrivateKey(ctx.app, ctx.config, kid)
      for (const named of ['made-up-kid', '', 'A'.repeat(43)])
        await assertRefused(ctx.app, `Bearer ${await sign(claims, key, 'EdDSA', named)}`, {
          invalidToken: true,
        })
      await assertRefused(ctx.app, `Bearer ${await signWithHeader(claims, key, { alg: 'EdDSA' })}`, {
        invalidToken: true,
      })
      await assertRefused(ctx.app, `Bearer ${await signWithHeader(claims, key, { alg: 'EdDSA', kid: 42 })}`, {
        invalidToken: true,
      })
    })

    test('the right kid with another key pair, or with alg none: 401', async () => {
      const { claims, kid } = await realToken(ctx)
      const stranger = await generateKeyPair('EdDSA')
      await assertRefused(ctx.app, `Bearer ${await sign(claims, stranger.privateKey, 'EdDSA', kid)}`, {
        invalidToken: true,
      })
      for (const alg of ['none', 'None', 'NONE'])
        await assertRefused(ctx.app, `Bearer ${unsigned(claims, { alg, typ: 'at+jwt', kid })}`, {
          invalidToken: true,
        })
    })

    test('algorithm confusion: HS256 with the published key (JWK, its x, as PEM) or SECRET_KEY as the secret: 401', async () => {
      const { claims, kid } = await realToken(ctx)
      const published = (await jwks(ctx.app)).find((key) => key.kid === kid)!
      const secrets = [JSON.stringify(published), String(published.x), publicPemOf(published), TEST_SECRET]
      for (const secret of secrets)
        for (const alg of ['HS256', 'HS512'])
          await assertRefused(ctx.app, `Bearer ${await sign(claims, bytes(secret), alg, kid)}`, {
            invalidToken: true,
          })
    })

    test('another asymmetric algorithm under the key’s kid (ES256 for an EdDSA key): 401', async () => {
      const { claims, kid } = await realToken(ctx)
      const ec = generateKeyPairSync('ec', {
        namedCurve: 'P-256',
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        publicKeyEncoding: { type: 'spki', format: 'pem' },
      })
      const key = await importPKCS8(ec.privateKey, 'ES256')
      await assertRefused(ctx.app, `Bearer ${await sign(claims, key, 'ES256', kid)}`, { invalidToken: true })
    })

    test('the JWKS holds exactly the public members of each key, and the discovery document points to it', async () => {
      const keys = await jwks(ctx.app)
      assert.ok(keys.length >= 1)
      for (const key of keys)
        assert.deepEqual(Object.keys(key).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x'])
      const discovery = await ctx.app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })
      assert.equal(discovery.statusCode, 200)
      assert.equal(discovery.headers['cache-control'], 'public, max-age=300')
      assert.deepEqual(discovery.json(), {
        issuer: 'fastauth-api',
        jwks_uri: `${ctx.config.publicUrl}/.well-known/jwks.json`,
        token_endpoint: `${ctx.config.publicUrl}/login`,
        grant_types_supported: ['password'],
        token_endpoint_auth_methods_supported: ['none'],
        subject_types_supported: ['public'],
        access_token_signing_alg_values_supported: ['EdDSA'],
      })
    })
  },
  { env: { JWT_ALGORITHM: 'EdDSA' } },
)

/** A token with exactly this protected header (jose would refuse to write some of these). */
async function signWithHeader(payload: JWTPayload, key: CryptoKey, header: Record<string, unknown>) {
  const input = `${base64url({ typ: 'at+jwt', ...header })}.${base64url(payload)}`
  const signature = await crypto.subtle.sign('Ed25519', key, new TextEncoder().encode(input))
  return `${input}.${Buffer.from(signature).toString('base64url')}`
}

/** The SPKI PEM of a published Ed25519 key. */
function publicPemOf(jwk: PublishedKey): string {
  const prefix = Buffer.from('302a300506032b6570032100', 'hex')
  const der = Buffer.concat([prefix, Buffer.from(String(jwk.x), 'base64url')])
  return `-----BEGIN PUBLIC KEY-----\n${der.toString('base64')}\n-----END PUBLIC KEY-----\n`
}
