/**
 * The signing keys' primitives without a server: what a public JWK may hold, key pairs read from
 * PEM files (each way they are refused), the `kid` of SECRET_KEY, the states a stored key goes
 * through by its dates, and the HS keys' answers (nothing stored, nothing to rotate).
 */
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { test } from 'node:test'
import { calculateJwkThumbprint, type JWK } from 'jose'
import {
  KeyMaterialError,
  generateKeyMaterial,
  importKeyMaterial,
  publicMembers,
  secretKeyId,
} from '../../src/auth/signing-keys.js'
import { currentKey, rotationDue, stateOf } from '../../src/services/key-states.js'
import {
  JWKS_MAX_AGE_SECONDS,
  KEY_RELOAD_SECONDS,
  PUBLISH_AHEAD_SECONDS,
  UnknownSigningKey,
  createSecretSigningKeys,
} from '../../src/services/signing-keys.js'
import { DomainError } from '../../src/services/errors.js'

const MINUTE = 60_000

function pemPair(type: 'ed25519' | 'rsa' = 'ed25519') {
  const { privateKey, publicKey } =
    type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519')
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  }
}

async function refusal(promise: Promise<unknown>): Promise<KeyMaterialError> {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof KeyMaterialError, String(error))
    assert.equal(error.name, 'KeyMaterialError')
    return error
  }
  assert.fail('not refused')
}

test('publicMembers: only the public members of each key type; a secret key has no public form', async () => {
  const { privateKey } = generateKeyPairSync('ed25519')
  const full = privateKey.export({ format: 'jwk' }) as JWK
  assert.ok(full.d, 'the private JWK holds d')
  assert.deepEqual(publicMembers(full), { kty: 'OKP', crv: 'Ed25519', x: full.x })
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }) as JWK
  assert.deepEqual(Object.keys(publicMembers(ec)), ['kty', 'crv', 'x', 'y'])

  const oct = await refusal(Promise.resolve().then(() => publicMembers({ kty: 'oct', k: 'c2VjcmV0' })))
  assert.equal(oct.message, 'a key of type "oct" has no public form')
  const untyped = await refusal(Promise.resolve().then(() => publicMembers({ x: 'abc' })))
  assert.equal(untyped.message, 'a key of type "undefined" has no public form')
  const partial = await refusal(Promise.resolve().then(() => publicMembers({ kty: 'OKP', crv: 'Ed25519' })))
  assert.equal(partial.message, 'the public key has no "x"')
})

test('importKeyMaterial: a matching PEM pair gives its RFC 7638 kid and a public JWK for signatures', async () => {
  const { privatePem, publicPem } = pemPair()
  const material = await importKeyMaterial('EdDSA', privatePem, publicPem)
  const { kid, alg, use, ...jwk } = material.publicJwk
  assert.deepEqual([alg, use, material.algorithm], ['EdDSA', 'sig', 'EdDSA'])
  assert.equal(kid, await calculateJwkThumbprint(jwk as JWK, 'sha256'))
  assert.equal(material.kid, kid)
  assert.equal(material.privatePem, privatePem)
  assert.equal('d' in jwk, false)
  // A generated key is described the same way.
  const generated = await generateKeyMaterial('ES256')
  assert.deepEqual([generated.publicJwk.alg, generated.publicJwk.use], ['ES256', 'sig'])
  assert.equal(generated.kid, generated.publicJwk.kid)
})

test('importKeyMaterial: refuses a bad private key, a bad public key and a pair that does not match', async () => {
  const { privatePem, publicPem } = pemPair()
  const badPrivate = await refusal(importKeyMaterial('EdDSA', 'not a key', publicPem))
  assert.match(badPrivate.message, /^the private key is not a PKCS#8 PEM key for EdDSA: \S/)
  const rsa = pemPair('rsa')
  const wrongType = await refusal(importKeyMaterial('EdDSA', privatePem, rsa.publicPem))
  assert.match(wrongType.message, /^the public key is not an SPKI PEM key for EdDSA: \S/)
  const mismatch = await refusal(importKeyMaterial('EdDSA', privatePem, pemPair().publicPem))
  assert.equal(mismatch.message, 'the public key does not match the private key')
})

test("secretKeyId: SECRET_KEY's kid is fixed by the secret and the algorithm (tokens already issued keep verifying)", () => {
  // Known answers: a change here would make every token signed before the upgrade unverifiable.
  assert.equal(secretKeyId('test-secret-key-that-is-long-enough-0123456789', 'HS256'), KNOWN_KIDS.HS256)
  assert.equal(secretKeyId('test-secret-key-that-is-long-enough-0123456789', 'HS512'), KNOWN_KIDS.HS512)
  assert.notEqual(secretKeyId('another-secret-key-that-is-long-enough-012345', 'HS256'), KNOWN_KIDS.HS256)
})

const KNOWN_KIDS = { HS256: 'HS256-_9nJCgq7fXJyepKd', HS512: 'HS512-xPzDMVzMJgWnDIrK' }

// ------------------------------------------------------------------ key states, by their dates

const at = (minutes: number) => new Date(minutes * MINUTE)
const row = (kid: string, generation: number, activates: number, retires: number | null = null) => ({
  kid,
  generation,
  activates_at: at(activates),
  retires_at: retires === null ? null : at(retires),
})

test('currentKey: the newest generation whose activation has come, whatever the order of the rows', () => {
  const first = row('k1', 1, 0, 100)
  const second = row('k2', 2, 10)
  const third = row('k3', 3, 50)
  for (const rows of [
    [first, second, third],
    [third, second, first],
    [second, first, third],
  ])
    assert.equal(
      currentKey(
        rows.map((r) => ({ row: r })),
        20 * MINUTE,
      )?.row.kid,
      'k2',
    )
  assert.equal(currentKey([], 0), undefined)
  assert.deepEqual(
    [first, second, third].map((r) => stateOf(r, [first, second, third], 20 * MINUTE)),
    ['retiring', 'current', 'next'],
  )
  assert.equal(stateOf(first, [first, second], 100 * MINUTE), 'retired')
})

test('rotationDue: after the period, to the millisecond; never while a next key waits or without keys', () => {
  const period = 30 * MINUTE
  const current = row('k1', 1, 10)
  assert.equal(rotationDue([current], (10 + 30) * MINUTE - 1, period), false)
  assert.equal(rotationDue([current], (10 + 30) * MINUTE, period), true)
  assert.equal(rotationDue([current], 100 * MINUTE, 0), false, 'no period: never')
  assert.equal(rotationDue([current, row('k2', 2, 200)], 100 * MINUTE, period), false, 'a next key waits')
  assert.equal(rotationDue([row('k2', 2, 200), current], 100 * MINUTE, period), false, 'in any order')
  assert.equal(rotationDue([], 100 * MINUTE, period), false, 'no key at all')
  assert.equal(rotationDue([row('k1', 1, 10, 20)], 100 * MINUTE, period), false, 'only a retired key')
})

// ------------------------------------------------------------------ HS algorithms: SECRET_KEY

test('PUBLISH_AHEAD_SECONDS: 7 minutes, longer than a cached JWKS and an instance reload together', () => {
  assert.equal(PUBLISH_AHEAD_SECONDS, 7 * 60)
  assert.ok(PUBLISH_AHEAD_SECONDS > JWKS_MAX_AGE_SECONDS + KEY_RELOAD_SECONDS)
})

test('the HS keys: SECRET_KEY under its kid only, for its algorithm only; nothing published, listed or rotated', async () => {
  const secret = 'test-secret-key-that-is-long-enough-0123456789'
  const keys = await createSecretSigningKeys(secret, 'HS256')
  assert.equal(keys.source, 'secret')
  const signer = await keys.signer()
  assert.deepEqual([signer.kid, signer.algorithm], [secretKeyId(secret, 'HS256'), 'HS256'])
  assert.equal(await keys.verifier(signer.kid, 'HS256'), signer.key)
  for (const [kid, alg] of [
    ['HS256-other', 'HS256'],
    [signer.kid, 'HS512'],
  ] as const)
    await assert.rejects(keys.verifier(kid, alg), (error: unknown) => {
      assert.ok(error instanceof UnknownSigningKey)
      assert.equal(error.name, 'UnknownSigningKey')
      assert.equal(error.message, `no key "${kid}" for ${alg}`)
      return true
    })
  assert.deepEqual(await keys.publicKeys(), [])
  assert.deepEqual(keys.acceptedAlgorithms(), ['HS256'])
  assert.deepEqual(keys.publishedAlgorithms(), ['HS256'])
  assert.deepEqual(await keys.list(), [])
  await assert.rejects(keys.rotate(), (error: unknown) => {
    assert.ok(error instanceof DomainError)
    assert.equal(error.kind, 'conflict')
    assert.equal(
      error.detail,
      'With JWT_ALGORITHM=HS256 the key is SECRET_KEY: nothing to rotate here. Choose an asymmetric JWT_ALGORITHM (EdDSA is recommended) to have rotating keys.',
    )
    return true
  })
})
