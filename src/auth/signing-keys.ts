import { createHmac } from 'node:crypto'
import {
  calculateJwkThumbprint,
  CompactSign,
  compactVerify,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importJWK,
  importPKCS8,
  importSPKI,
  type CryptoKey,
  type JWK,
} from 'jose'
import type { JwtAlgorithm } from '../config.js'

/**
 * The key material of access tokens: asymmetric key pairs made or imported here, described by
 * their public JWK and named by its RFC 7638 thumbprint (the tokens' `kid`). The rules of which
 * key signs and which verify are in services/signing-keys.ts.
 */

export type SymmetricAlgorithm = Extract<JwtAlgorithm, `HS${string}`>
export type AsymmetricAlgorithm = Exclude<JwtAlgorithm, SymmetricAlgorithm>

export const isSymmetric = (algorithm: JwtAlgorithm): algorithm is SymmetricAlgorithm =>
  algorithm.startsWith('HS')

/** A public key as GET /.well-known/jwks.json publishes it. */
export interface PublicJwk extends JWK {
  kid: string
  alg: AsymmetricAlgorithm
  use: 'sig'
}

/** A key pair as it is stored: the public JWK, and the private key as PKCS#8 PEM. */
export interface KeyMaterial {
  kid: string
  algorithm: AsymmetricAlgorithm
  publicJwk: PublicJwk
  privatePem: string
}

/**
 * The members of a public key, by key type (RFC 7518 §6); every other member (`d`, `p`, `q`,
 * `dp`, `dq`, `qi`, `oth`, `k`, and whatever a library adds) is left out, so that a private
 * part can never reach the JWKS, whatever the key object held.
 */
const PUBLIC_MEMBERS: Record<string, readonly string[]> = {
  RSA: ['kty', 'n', 'e'],
  EC: ['kty', 'crv', 'x', 'y'],
  OKP: ['kty', 'crv', 'x'],
}

export class KeyMaterialError extends Error {
  override name = 'KeyMaterialError'
}

/** Only the public members of `jwk`; a key type without a public form (`oct`) is refused. */
export function publicMembers(jwk: JWK): JWK {
  const members = PUBLIC_MEMBERS[jwk.kty ?? '']
  if (!members) throw new KeyMaterialError(`a key of type "${jwk.kty}" has no public form`)
  const out: Record<string, unknown> = {}
  for (const member of members) {
    const value = (jwk as Record<string, unknown>)[member]
    if (typeof value !== 'string') throw new KeyMaterialError(`the public key has no "${member}"`)
    out[member] = value
  }
  return out as JWK
}

async function describe(algorithm: AsymmetricAlgorithm, publicKey: CryptoKey, privatePem: string) {
  const jwk = publicMembers(await exportJWK(publicKey))
  const kid = await calculateJwkThumbprint(jwk, 'sha256')
  const publicJwk: PublicJwk = { ...jwk, kid, alg: algorithm, use: 'sig' }
  return { kid, algorithm, publicJwk, privatePem }
}

/** A new key pair for `algorithm` (RSA keys of 2,048 bits; P-256/P-384; Ed25519 for EdDSA). */
export async function generateKeyMaterial(algorithm: AsymmetricAlgorithm): Promise<KeyMaterial> {
  const { publicKey, privateKey } = await generateKeyPair(algorithm, { extractable: true })
  return describe(algorithm, publicKey, await exportPKCS8(privateKey))
}

/**
 * A key pair read from PEM files (PKCS#8 private, SPKI public). Refused unless both are keys for
 * `algorithm` and the public key verifies what the private key signs: a mismatched pair would
 * sign tokens nobody can verify.
 */
export async function importKeyMaterial(
  algorithm: AsymmetricAlgorithm,
  privatePem: string,
  publicPem: string,
): Promise<KeyMaterial> {
  let privateKey: CryptoKey
  let publicKey: CryptoKey
  try {
    privateKey = await importPKCS8(privatePem, algorithm)
  } catch (error) {
    throw new KeyMaterialError(
      `the private key is not a PKCS#8 PEM key for ${algorithm}: ${(error as Error).message}`,
    )
  }
  try {
    publicKey = await importSPKI(publicPem, algorithm, { extractable: true })
  } catch (error) {
    throw new KeyMaterialError(
      `the public key is not an SPKI PEM key for ${algorithm}: ${(error as Error).message}`,
    )
  }
  // Stryker disable next-line StringLiteral: the probe's payload is ours and any payload shows whether the pair matches.
  const probe = await new CompactSign(new TextEncoder().encode('fastauth key pair check'))
    .setProtectedHeader({ alg: algorithm })
    .sign(privateKey)
  try {
    // Stryker disable next-line ObjectLiteral: the probe was signed with `algorithm` just above; no other algorithm can reach this check.
    await compactVerify(probe, publicKey, { algorithms: [algorithm] })
  } catch {
    throw new KeyMaterialError('the public key does not match the private key')
  }
  return describe(algorithm, publicKey, privatePem)
}

/** The private key of stored material, ready to sign with (not extractable). */
export function privateKeyOf(algorithm: AsymmetricAlgorithm, privatePem: string): Promise<CryptoKey> {
  return importPKCS8(privatePem, algorithm)
}

/** The public key of a published JWK, ready to verify with. */
export async function publicKeyOf(jwk: PublicJwk): Promise<CryptoKey> {
  return (await importJWK(publicMembers(jwk), jwk.alg)) as CryptoKey
}

/**
 * The `kid` of the HS key, SECRET_KEY: an HMAC of a fixed label under the secret, so that it
 * names the key without saying anything about it (a token signed with the secret is a better
 * guessing oracle than this anyway). It changes when SECRET_KEY or the algorithm changes.
 */
export function secretKeyId(secret: string, algorithm: SymmetricAlgorithm): string {
  return `${algorithm}-${createHmac('sha256', secret).update(`fastauth-api key id ${algorithm}`).digest('base64url').slice(0, 16)}`
}
