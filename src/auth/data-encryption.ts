import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto'
import type { Config } from '../config.js'

/**
 * Encryption at rest of small secrets kept in the database (TOTP secrets; signing private keys
 * later), so that a copy of the database alone (a backup, a dump, an injected SELECT) gives none
 * of them away.
 *
 * AES-256-GCM with a random 96-bit IV per value. Each value is stored as one ASCII string:
 *
 *     v1.<key id>.<iv>.<ciphertext and 16-byte tag>        (the last three base64url)
 *
 * The caller names what the value is for, e.g. `totp:user:42`; that context is authenticated
 * with the value (GCM's associated data, with the version and the key id), so a ciphertext copied
 * to another user's row, or to another purpose, does not decrypt.
 *
 * The key id is derived from the key itself, so keys rotate without numbering: new values are
 * encrypted under the current key, and values under a previous key (DATA_ENCRYPTION_PREVIOUS_KEYS)
 * still decrypt until a job re-encrypts them (`needsReencryption`). docs/security.md, "Secrets
 * encrypted at rest", says how the key is chosen and how to rotate it.
 */

const FORMAT_VERSION = 'v1'
const CIPHER = 'aes-256-gcm'
export const DATA_ENCRYPTION_KEY_BYTES = 32
const IV_BYTES = 12
const TAG_BYTES = 16
const KEY_ID_LENGTH = 8
const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{8}$/

/**
 * HKDF's `info` for the key derived from SECRET_KEY: it names the purpose, so this key is
 * unrelated to every other subkey of SECRET_KEY. Changing it makes every stored secret
 * unreadable; docs/security.md quotes it in the command that prints the derived key.
 */
export const DERIVED_KEY_INFO = 'fastauth-api data encryption key'

export type DecryptionFailure = 'malformed' | 'unknown_key' | 'not_authentic'

const DECRYPTION_FAILURES: Record<DecryptionFailure, string> = {
  malformed: 'The stored value is not an encrypted value of a known format',
  unknown_key:
    'The value was encrypted with a key that is neither DATA_ENCRYPTION_KEY nor in DATA_ENCRYPTION_PREVIOUS_KEYS',
  not_authentic:
    'The value does not decrypt: another key, another context, or altered since it was encrypted',
}

/**
 * The one error decryption throws: it never returns what a wrong key or an altered value would
 * give. `reason` separates a configuration problem (`unknown_key`: a key is missing from the
 * configuration) from a value that is corrupt or was tampered with.
 */
export class DataDecryptionError extends Error {
  override name = 'DataDecryptionError'
  constructor(
    readonly reason: DecryptionFailure,
    /** The key id the value names, when it names one (never secret: it identifies, it does not reveal). */
    readonly keyId?: string,
  ) {
    super(keyId === undefined ? DECRYPTION_FAILURES[reason] : `${DECRYPTION_FAILURES[reason]} (key ${keyId})`)
  }
}

/** The key used when DATA_ENCRYPTION_KEY is unset: HKDF-SHA256 of SECRET_KEY, empty salt. */
export function deriveDataEncryptionKey(secretKey: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', secretKey, '', DERIVED_KEY_INFO, DATA_ENCRYPTION_KEY_BYTES))
}

/**
 * A key's id: the first 8 characters of the base64url SHA-256 of its bytes. It tells which
 * configured key a value needs without any configuration, and says nothing usable about the key.
 */
export function dataEncryptionKeyId(key: Uint8Array): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, KEY_ID_LENGTH)
}

export interface DataEncryptionKeys {
  /** Encrypts every new value, and decrypts. */
  current: Uint8Array
  /** Keys rotated out: they decrypt the values still under them, and never encrypt. */
  previous?: readonly Uint8Array[]
}

/** The keys the configuration names: DATA_ENCRYPTION_KEY, or else the key derived from SECRET_KEY. */
export function dataEncryptionKeysOf(
  config: Pick<Config, 'secretKey' | 'dataEncryptionKey' | 'dataEncryptionPreviousKeys'>,
): DataEncryptionKeys {
  return {
    current: config.dataEncryptionKey ?? deriveDataEncryptionKey(config.secretKey),
    previous: config.dataEncryptionPreviousKeys,
  }
}

export interface DataEncryption {
  /** The id of the current key, as stored values name it. */
  readonly keyId: string
  /**
   * `plaintext` encrypted under the current key, bound to `context` (non-empty; say what the value
   * is and whose, e.g. `totp:user:42`). Two calls never give the same string.
   */
  encrypt(plaintext: string, context: string): string
  /**
   * The plaintext of a value `encrypt` stored with the same `context`, under the current or a
   * previous key. Anything else throws DataDecryptionError.
   */
  decrypt(stored: string, context: string): string
  /**
   * True when `stored` is not under the current key (a previous key, or one no longer configured):
   * a re-encryption job decrypts and encrypts it again. It reads the key id only and proves
   * nothing about the value; a malformed value throws DataDecryptionError.
   */
  needsReencryption(stored: string): boolean
}

interface StoredValue {
  keyId: string
  iv: Buffer
  ciphertext: Buffer
  tag: Buffer
}

export function createDataEncryption(keys: DataEncryptionKeys): DataEncryption {
  const keysById = new Map<string, KeyObject>()
  // The current key last: were two keys ever to share an id, the current one would be kept.
  for (const key of [...(keys.previous ?? []), keys.current]) {
    if (key.length !== DATA_ENCRYPTION_KEY_BYTES)
      throw new RangeError(
        `a data encryption key must be ${DATA_ENCRYPTION_KEY_BYTES} bytes, got ${key.length}`,
      )
    keysById.set(dataEncryptionKeyId(key), createSecretKey(key))
  }
  const currentKeyId = dataEncryptionKeyId(keys.current)
  const currentKey = createSecretKey(keys.current)

  return {
    keyId: currentKeyId,

    encrypt(plaintext, context) {
      assertContext(context)
      const iv = randomBytes(IV_BYTES)
      // Stryker disable next-line ObjectLiteral: 16 bytes is GCM's default; written out, as on decryption.
      const cipher = createCipheriv(CIPHER, currentKey, iv, { authTagLength: TAG_BYTES })
      cipher.setAAD(associatedData(currentKeyId, context))
      const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
      return [FORMAT_VERSION, currentKeyId, iv.toString('base64url'), sealed.toString('base64url')].join('.')
    },

    decrypt(stored, context) {
      assertContext(context)
      const value = parseStoredValue(stored)
      const key = keysById.get(value.keyId)
      if (key === undefined) throw new DataDecryptionError('unknown_key', value.keyId)
      // Only a 16-byte tag is ever accepted. The tag given is always 16 bytes (the last 16 of the
      // body), so this states the rule rather than enforces it.
      // Stryker disable next-line ObjectLiteral: see above.
      const decipher = createDecipheriv(CIPHER, key, value.iv, { authTagLength: TAG_BYTES })
      decipher.setAAD(associatedData(value.keyId, context))
      decipher.setAuthTag(value.tag)
      try {
        return Buffer.concat([decipher.update(value.ciphertext), decipher.final()]).toString()
      } catch {
        throw new DataDecryptionError('not_authentic', value.keyId)
      }
    },

    needsReencryption(stored) {
      return parseStoredValue(stored).keyId !== currentKeyId
    },
  }
}

/**
 * What GCM authenticates besides the ciphertext: the format version, the key id and the caller's
 * context. Version and key id contain no dot, so the three cannot be confused with another three.
 */
function associatedData(keyId: string, context: string): Buffer {
  return Buffer.from(`${FORMAT_VERSION}.${keyId}.${context}`)
}

/** An empty context would bind a value to nothing: that is a bug in the caller, not bad data. */
function assertContext(context: string): void {
  if (typeof context !== 'string' || context === '')
    throw new TypeError('a data encryption context must be a non-empty string, e.g. "totp:user:42"')
}

function parseStoredValue(stored: string): StoredValue {
  // Stryker disable next-line ArrayDeclaration: any list but one of four parts is 'malformed', as [] is.
  const parts = typeof stored === 'string' ? stored.split('.') : []
  if (parts.length !== 4) throw new DataDecryptionError('malformed')
  const [version, keyId, iv, body] = parts as [string, string, string, string]
  if (version !== FORMAT_VERSION || !KEY_ID_PATTERN.test(keyId)) throw new DataDecryptionError('malformed')
  const ivBytes = fromBase64url(iv)
  const bodyBytes = fromBase64url(body)
  if (ivBytes?.length !== IV_BYTES || bodyBytes === undefined || bodyBytes.length < TAG_BYTES)
    throw new DataDecryptionError('malformed', keyId)
  return {
    keyId,
    iv: ivBytes,
    ciphertext: bodyBytes.subarray(0, bodyBytes.length - TAG_BYTES),
    tag: bodyBytes.subarray(bodyBytes.length - TAG_BYTES),
  }
}

/**
 * Strict base64url: only the one text that encodes these bytes. Buffer.from skips characters it
 * cannot read and ignores spare bits, so without the round trip an altered text could decode to
 * the same bytes and pass for the original.
 */
function fromBase64url(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64url')
  return bytes.toString('base64url') === text ? bytes : undefined
}
