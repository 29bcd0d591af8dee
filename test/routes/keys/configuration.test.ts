/**
 * What the configuration does to the keys across restarts: key files imported once as a key, a
 * new key file or a new JWT_ALGORITHM signing at once while the old key verifies on, rotation by
 * JWT_KEY_ROTATION_DAYS, the bounded re-read for unknown kids, and the HS default.
 */
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, importSPKI, SignJWT } from 'jose'
import { buildApp } from '../../../src/app.js'
import { UNKNOWN_KID_RELOAD_SECONDS } from '../../../src/services/signing-keys.js'
import {
  bearer,
  describeEachEngine,
  registerAndLogin,
  TEST_KID,
  TEST_SECRET,
  testConfig,
  type EngineContext,
} from '../../support/app.js'
import { DAY, SECOND, TestClock } from '../../support/clock.js'
import { assertRefused, bytes, sign } from '../auth/support.js'
import { jwks, kidOf, storedKeys } from './support.js'

const clock = new TestClock()
const dir = mkdtempSync(path.join(tmpdir(), 'fastauth-key-files-'))
after(() => rmSync(dir, { recursive: true, force: true }))

/** A P-256 key pair in PEM files, and the kid its public key has. */
async function keyFiles(name: string) {
  const pair = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  })
  const files = {
    JWT_PRIVATE_KEY_FILE: path.join(dir, `${name}.key`),
    JWT_PUBLIC_KEY_FILE: path.join(dir, `${name}.pub`),
  }
  writeFileSync(files.JWT_PRIVATE_KEY_FILE, pair.privateKey, { mode: 0o600 })
  writeFileSync(files.JWT_PUBLIC_KEY_FILE, pair.publicKey)
  const kid = await calculateJwkThumbprint(
    await exportJWK(await importSPKI(pair.publicKey, 'ES256', { extractable: true })),
  )
  return { files, kid }
}

/** The app again on the same database (a restart, or another instance), with other variables. */
async function restart(ctx: EngineContext, env: Record<string, string>): Promise<FastifyInstance> {
  const app = await buildApp(testConfig({ DATABASE_URL: ctx.databaseUrl, ...env }), { logger: false, clock })
  await app.ready()
  return app
}

const storedKeysOf = async (ctx: EngineContext) => {
  const app = await restart(ctx, { DATABASE_URL: ctx.databaseUrl })
  try {
    return (await storedKeys(app)).map((row) => [row.kid, row.algorithm, row.retires_at?.getTime() ?? null])
  } finally {
    await app.close()
  }
}

const me = (app: FastifyInstance, token: string) =>
  app.inject({ method: 'GET', url: '/current-user', headers: bearer(token) })

describeEachEngine(
  'signing keys: configuration across restarts',
  (ctx) => {
    test('key files are imported once as a key; a new pair signs at once, the old one verifies on', async () => {
      const first = await keyFiles('first')
      const a = await restart(ctx, { JWT_ALGORITHM: 'ES256', ...first.files })
      const user = await registerAndLogin(a)
      assert.equal(kidOf(user.token), first.kid)
      await a.close()
      const again = await restart(ctx, { JWT_ALGORITHM: 'ES256', ...first.files })
      assert.deepEqual(
        (await storedKeys(again)).map((row) => row.kid).slice(-1),
        [first.kid],
        'not imported twice',
      )
      await again.close()

      const second = await keyFiles('second')
      const b = await restart(ctx, { JWT_ALGORITHM: 'ES256', ...second.files })
      const fresh = await registerAndLogin(b)
      assert.equal(kidOf(fresh.token), second.kid)
      assert.equal((await me(b, user.token)).statusCode, 200, 'a token of the replaced key still works')
      assert.deepEqual(
        (await b.signingKeys.list()).slice(-2).map((key) => [key.kid, key.state]),
        [
          [first.kid, 'retiring'],
          [second.kid, 'current'],
        ],
      )
      await b.close()
    })

    test('a new JWT_ALGORITHM signs at once with a new key; tokens of the old one verify until they expire', async () => {
      const es = await restart(ctx, { JWT_ALGORITHM: 'ES256' })
      const user = await registerAndLogin(es)
      await es.close()
      const ed = await restart(ctx, { JWT_ALGORITHM: 'EdDSA' })
      const fresh = await registerAndLogin(ed)
      assert.equal(decodeHeaderAlg(fresh.token), 'EdDSA')
      assert.equal((await me(ed, user.token)).statusCode, 200)
      const published = await jwks(ed)
      assert.equal(published.at(-1)!.alg, 'EdDSA')
      assert.ok(published.some((key) => key.kid === kidOf(user.token) && key.alg === 'ES256'))
      await ed.close()
    })

    test('JWT_KEY_ROTATION_DAYS: the next key is made once the current one has signed that long', async () => {
      const app = await restart(ctx, { JWT_ALGORITHM: 'EdDSA', JWT_KEY_ROTATION_DAYS: '30' })
      try {
        const current = (await app.signingKeys.list()).find((key) => key.state === 'current')!
        clock.set(current.activates_at.getTime() + 30 * DAY - 1)
        await app.signingKeys.list() // nothing due yet
        clock.advance(1)
        // The re-read that finds it due runs behind a request, as in service.
        await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
        let states: string[] = []
        for (let attempt = 0; attempt < 40 && !states.includes('next'); attempt++) {
          states = (await app.signingKeys.list()).map((key) => key.state)
          if (!states.includes('next')) await new Promise((resolve) => setTimeout(resolve, 50))
        }
        assert.deepEqual(states.slice(-2), ['current', 'next'])
      } finally {
        await app.close()
      }
    })

    test('tokens naming unknown kids make at most one read of the keys per interval', async () => {
      const app = await restart(ctx, { JWT_ALGORITHM: 'EdDSA' })
      try {
        const user = await registerAndLogin(app)
        const claims = decodeJwt(user.token)
        const { privateKey } = await generateKeyPair('EdDSA')
        let reads = 0
        const list = app.repos.signingKeys.list
        app.repos.signingKeys.list = () => ((reads += 1), list())
        clock.advance(UNKNOWN_KID_RELOAD_SECONDS * SECOND)
        for (let i = 0; i < 5; i++)
          await assertRefused(app, `Bearer ${await sign(claims, privateKey, 'EdDSA', `unknown-${i}`)}`)
        assert.equal(reads, 1)
        clock.advance(UNKNOWN_KID_RELOAD_SECONDS * SECOND)
        await assertRefused(app, `Bearer ${await sign(claims, privateKey, 'EdDSA', 'unknown-again')}`)
        assert.equal(reads, 2)
      } finally {
        await app.close()
      }
    })

    test('an RSA key file stored for RS256 is refused for PS256 at start, in one sentence that says what to do', async () => {
      const pair = generateKeyPairSync('rsa', {
        modulusLength: 2048,
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        publicKeyEncoding: { type: 'spki', format: 'pem' },
      })
      const files = {
        JWT_PRIVATE_KEY_FILE: path.join(dir, 'rsa.key'),
        JWT_PUBLIC_KEY_FILE: path.join(dir, 'rsa.pub'),
      }
      writeFileSync(files.JWT_PRIVATE_KEY_FILE, pair.privateKey, { mode: 0o600 })
      writeFileSync(files.JWT_PUBLIC_KEY_FILE, pair.publicKey)
      await (await restart(ctx, { JWT_ALGORITHM: 'RS256', ...files })).close()
      const before = await storedKeysOf(ctx)
      await assert.rejects(restart(ctx, { JWT_ALGORITHM: 'PS256', ...files }), (error: Error) => {
        assert.equal(
          error.message,
          'The key of JWT_PRIVATE_KEY_FILE is stored for RS256, not for JWT_ALGORITHM=PS256: a key signs with one algorithm; make a new key pair for PS256',
        )
        return true
      })
      assert.deepEqual(await storedKeysOf(ctx), before, 'nothing stored')
    })

    test('a new JWT_ALGORITHM signs at once even while a key of the old one waits to sign', async () => {
      clock.advance(DAY) // every key an earlier test left waiting signs by now
      const ed = await restart(ctx, { JWT_ALGORITHM: 'EdDSA' })
      const waiting = await ed.signingKeys.rotate()
      assert.equal(waiting.state, 'next')
      await ed.close()
      const es = await restart(ctx, { JWT_ALGORITHM: 'ES256' })
      try {
        const user = await registerAndLogin(es)
        assert.equal(decodeHeaderAlg(user.token), 'ES256')
        const states = async () =>
          (await es.signingKeys.list()).slice(-2).map((key) => [key.algorithm, key.state])
        assert.deepEqual(await states(), [
          ['EdDSA', 'next'],
          ['ES256', 'current'],
        ])
        // Its time comes, and it never signs: the newer ES256 key does.
        clock.set(waiting.activates_at.getTime())
        assert.deepEqual(await states(), [
          ['EdDSA', 'retiring'],
          ['ES256', 'current'],
        ])
        assert.equal(decodeHeaderAlg((await registerAndLogin(es)).token), 'ES256')
      } finally {
        await es.close()
      }
    })

    test('the stored keys: their source, the algorithms they accept, a rotation published from now, retired keys unpublished at once', async () => {
      clock.advance(DAY)
      const app = await restart(ctx, { JWT_ALGORITHM: 'EdDSA' })
      try {
        const keys = app.signingKeys
        assert.equal(keys.source, 'database')
        assert.deepEqual(
          keys.acceptedAlgorithms().filter((algorithm) => algorithm.startsWith('HS')),
          [],
          'never an HMAC algorithm: a token "signed" with a public key as an HMAC secret is refused',
        )
        await assert.rejects(keys.verifier('no-such-kid', 'EdDSA'), {
          message: 'no key "no-such-kid" for EdDSA',
        })
        const rotatedAt = clock.now()
        const next = await keys.rotate()
        assert.equal(
          next.created_at.getTime(),
          rotatedAt,
          'published from the rotation, ahead of its signing',
        )
        assert.ok(next.activates_at.getTime() > rotatedAt)
        // Once the next key signs and the old one's tokens have expired, the old one is no longer
        // published, at once (before any re-read of the keys).
        const old = (await keys.list()).find((key) => key.state === 'current')!
        clock.set(next.activates_at.getTime())
        const retiresAt = (await keys.list()).find((key) => key.kid === old.kid)!.retires_at!
        clock.set(retiresAt.getTime())
        assert.deepEqual(
          (await keys.publicKeys()).map((key) => key.kid).includes(old.kid),
          false,
          'a retired key is not published',
        )
      } finally {
        await app.close()
      }
    })
  },
  { build: { clock } },
)

test('HS256 (the default): tokens name the SECRET_KEY key, nothing is published, a token without kid is refused', async () => {
  const app = await buildApp(testConfig({ DATABASE_URL: 'sqlite::memory:' }), { logger: false })
  await app.ready()
  try {
    const user = await registerAndLogin(app)
    assert.equal(kidOf(user.token), TEST_KID)
    assert.deepEqual(await jwks(app), [])
    const claims = decodeJwt(user.token)
    const kidless = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .sign(bytes(TEST_SECRET))
    await assertRefused(app, `Bearer ${kidless}`, { invalidToken: true })
    assert.equal((await me(app, await sign(claims, bytes(TEST_SECRET)))).statusCode, 200)
  } finally {
    await app.close()
  }
})

const decodeHeaderAlg = (token: string) =>
  (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { alg: string }).alg
