/** Reading the signing keys as another service and an attacker see them, and as they are stored. */
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { decodeProtectedHeader, importPKCS8, type CryptoKey } from 'jose'
import { createDataEncryption, dataEncryptionKeysOf } from '../../../src/auth/data-encryption.js'
import type { Config } from '../../../src/config.js'

export interface PublishedKey {
  kid: string
  kty: string
  alg: string
  use: string
  [member: string]: unknown
}

/** The JWKS as served, checked for what any verifier relies on: public members only, cacheable. */
export async function jwks(app: FastifyInstance): Promise<PublishedKey[]> {
  const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  assert.equal(response.statusCode, 200, response.body)
  assert.equal(response.headers['cache-control'], 'public, max-age=300')
  const { keys } = response.json<{ keys: PublishedKey[] }>()
  for (const key of keys)
    for (const member of Object.keys(key))
      assert.ok(
        ['kty', 'kid', 'alg', 'use', 'n', 'e', 'crv', 'x', 'y'].includes(member),
        `the JWKS publishes "${member}" of ${key.kid}`,
      )
  return keys
}

export const kidOf = (token: string) => decodeProtectedHeader(token).kid

export async function storedKeys(app: FastifyInstance) {
  return app.db.selectFrom('signing_keys').selectAll().orderBy('generation').execute()
}

/** A stored private key, decrypted as the server would: what a thief with the key's secret holds. */
export async function stolenPrivateKey(
  app: FastifyInstance,
  config: Config,
  kid: string,
): Promise<CryptoKey> {
  const row = await app.db
    .selectFrom('signing_keys')
    .selectAll()
    .where('kid', '=', kid)
    .executeTakeFirstOrThrow()
  assert.ok(row.private_key, `the private key of ${kid} is still stored`)
  const pem = createDataEncryption(dataEncryptionKeysOf(config)).decrypt(
    row.private_key,
    `signing-key:${kid}`,
  )
  return importPKCS8(pem, row.algorithm)
}
