import type { CryptoKey } from 'jose'
import type { Config, JwtAlgorithm } from '../config.js'
import type { DataEncryption } from '../auth/data-encryption.js'
import { isSymmetric, secretKeyId, type PublicJwk, type SymmetricAlgorithm } from '../auth/signing-keys.js'
import type { Repositories } from '../repositories/index.js'
import type { Clock } from './clock.js'
import { conflict } from './errors.js'
import type { SigningKeyView } from './key-states.js'
import { StoredSigningKeys } from './stored-signing-keys.js'

export type { KeyState, SigningKeyView } from './key-states.js'

/**
 * Which key signs access tokens and which keys verify them.
 *
 * HS algorithms: one key, SECRET_KEY, kept nowhere else; nothing is published.
 *
 * The asymmetric ones: keys in the database (signing_keys), so that every instance signs with the
 * same key and verifies every other's tokens, and a key changes without ending a session. A key
 * goes through four states (next, current, retiring, retired: services/key-states.ts), all read
 * from its dates, so that every instance agrees on them without a scheduler. A retiring key
 * verifies until retires_at = the newer key's activates_at + the token lifetime + the iat leeway:
 * the last token it signed has expired by then.
 *
 * A rotation adds a `next` key that activates PUBLISH_AHEAD_SECONDS later: long enough for every
 * cache of the JWKS (JWKS_MAX_AGE_SECONDS) and every instance (KEY_RELOAD_SECONDS) to know it
 * before the first token it signs. A token naming a key this instance has not loaded makes it
 * read the keys again, at most once per UNKNOWN_KID_RELOAD_SECONDS, so that a key another
 * instance made is found while a flood of made-up `kid`s costs one query per interval.
 */

/** Cache lifetime of GET /.well-known/jwks.json. */
export const JWKS_MAX_AGE_SECONDS = 300
/** How often an instance reads the keys again (in the background, on the next use after this). */
export const KEY_RELOAD_SECONDS = 60
/** From a rotation to the first token the new key signs. */
export const PUBLISH_AHEAD_SECONDS = JWKS_MAX_AGE_SECONDS + KEY_RELOAD_SECONDS + 60
/** At most one read of the keys per this interval for tokens naming an unknown key. */
export const UNKNOWN_KID_RELOAD_SECONDS = 5

/** The key that signs a token now. */
export interface SignerKey {
  kid: string
  algorithm: JwtAlgorithm
  key: CryptoKey
}

export class UnknownSigningKey extends Error {
  override name = 'UnknownSigningKey'
}

export interface SigningKeys {
  /** Where the keys come from: SECRET_KEY (HS algorithms) or the database. */
  readonly source: 'secret' | 'database'
  /** Loads the keys; with an asymmetric algorithm, makes or imports the first one when needed. */
  start(): Promise<void>
  /** The key to sign a token with now. */
  signer(): Promise<SignerKey>
  /**
   * The key named `kid`, if it verifies tokens now and was made for `algorithm`; else throws
   * UnknownSigningKey (after one bounded re-read of the keys).
   */
  verifier(kid: string | undefined, algorithm: string | undefined): Promise<CryptoKey>
  /** The public keys that verify tokens now (next, current, retiring). */
  publicKeys(): Promise<PublicJwk[]>
  /**
   * The algorithms a token may name: the HS one, or every asymmetric one (a key of a new
   * JWT_ALGORITHM made by another instance must reach `verifier`, which reads the keys again and
   * pins each key to its own algorithm).
   */
  acceptedAlgorithms(): readonly string[]
  /** The algorithms of the keys that verify tokens now (the discovery document's). */
  publishedAlgorithms(): readonly string[]
  /** Every key, oldest first, with its state now. */
  list(): Promise<SigningKeyView[]>
  /**
   * Adds the next key, which signs from PUBLISH_AHEAD_SECONDS on; the current one verifies on
   * for the token lifetime after that. Refused (conflict) while a next key is still waiting.
   */
  rotate(): Promise<SigningKeyView>
}

export interface SigningKeyDependencies {
  config: Pick<
    Config,
    | 'jwtAlgorithm'
    | 'secretKey'
    | 'accessTokenExpireMinutes'
    | 'jwtKeyRotationDays'
    | 'jwtPrivateKeyFile'
    | 'jwtPublicKeyFile'
  >
  /** The PEM files' contents, when JWT_PRIVATE_KEY_FILE and JWT_PUBLIC_KEY_FILE are given. */
  keyFiles?: { privatePem: string; publicPem: string }
  repos: Repositories
  transaction: <T>(work: (repos: Repositories) => Promise<T>) => Promise<T>
  encryption: DataEncryption
  clock: Clock
  /** Told when a background re-read of the keys fails (the keys already loaded stay in use). */
  onReloadError?: (error: unknown) => void
}

export async function createSigningKeys(deps: SigningKeyDependencies): Promise<SigningKeys> {
  const algorithm = deps.config.jwtAlgorithm
  if (isSymmetric(algorithm)) return createSecretSigningKeys(deps.config.secretKey, algorithm)
  return new StoredSigningKeys(deps, algorithm)
}

/** HS256/384/512: SECRET_KEY signs and verifies; nothing is stored or published. */
export async function createSecretSigningKeys(
  secret: string,
  algorithm: SymmetricAlgorithm,
): Promise<SigningKeys> {
  const key = await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(secret),
    { name: 'HMAC', hash: `SHA-${algorithm.slice(2)}` },
    // Stryker disable next-line BooleanLiteral: not extractable; nothing here exports a key, so `true` would change nothing observable.
    false,
    ['sign', 'verify'],
  )
  const kid = secretKeyId(secret, algorithm)
  return {
    source: 'secret',
    async start() {},
    async signer() {
      return { kid, algorithm, key }
    },
    async verifier(named, alg) {
      if (named !== kid || alg !== algorithm) throw new UnknownSigningKey(`no key "${named}" for ${alg}`)
      return key
    },
    async publicKeys() {
      return []
    },
    acceptedAlgorithms: () => [algorithm],
    publishedAlgorithms: () => [algorithm],
    async list() {
      return []
    },
    async rotate() {
      throw conflict(
        `With JWT_ALGORITHM=${algorithm} the key is SECRET_KEY: nothing to rotate here. Choose an asymmetric JWT_ALGORITHM (EdDSA is recommended) to have rotating keys.`,
      )
    },
  }
}
