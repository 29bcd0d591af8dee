import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { decodeJwt, decodeProtectedHeader, importPKCS8, importSPKI, jwtVerify } from 'jose'
import { buildApp } from '../../../src/app.js'
import { registerAndLogin, testConfig, TEST_SECRET } from '../../support/app.js'
import { ISSUER, AUDIENCE, bytes, sign, unsigned, assertAccepted, assertRefused } from './support.js'

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
      // The forger names the server's key, as its real tokens do.
      const { kid } = decodeProtectedHeader(user.token)
      for (const secret of [keys.publicKey, keys.publicKey.trim()]) {
        const confused = await sign(claims, bytes(secret), 'HS256', kid)
        await assertRefused(app, `Bearer ${confused}`, { invalidToken: true })
      }
      // Nor does SECRET_KEY sign anything once an asymmetric algorithm is configured.
      await assertRefused(app, `Bearer ${await sign(claims, bytes(TEST_SECRET), 'HS256', kid)}`, {
        invalidToken: true,
      })
      await assertRefused(app, `Bearer ${unsigned(claims)}`, { invalidToken: true })
      // The same claims signed with the private key are accepted.
      await assertAccepted(
        app,
        await sign(claims, await importPKCS8(keys.privateKey, alg), alg, kid),
        user.id,
      )
    })

    test('refuses a token signed with another key pair of the same kind', async () => {
      const user = await registerAndLogin(app)
      const claims = decodeJwt(user.token)
      const stranger = await importPKCS8(generate().privateKey, alg)
      const { kid } = decodeProtectedHeader(user.token)
      await assertRefused(app, `Bearer ${await sign(claims, stranger, alg, kid)}`, { invalidToken: true })
    })
  })
}
