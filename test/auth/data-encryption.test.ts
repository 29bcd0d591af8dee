/**
 * Encryption at rest of small secrets (src/auth/data-encryption.ts): the stored format, pinned by
 * a value built by hand and by a value stored once; the context that binds a value to its row and
 * purpose; every kind of alteration refused with DataDecryptionError, never answered with
 * garbage; key rotation; and the two configuration variables that choose the keys.
 */
import assert from 'node:assert/strict'
import { createCipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { promisify } from 'node:util'
import { ConfigError, loadConfig } from '../../src/config.js'
import {
  createDataEncryption,
  DataDecryptionError,
  dataEncryptionKeyId,
  dataEncryptionKeysOf,
  deriveDataEncryptionKey,
  type DecryptionFailure,
} from '../../src/auth/data-encryption.js'

const SECRET = 'a-secret-key-of-more-than-32-bytes-0123456789'
const CONTEXT = 'totp:user:42'
const TOTP_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'

const oldKey = randomBytes(32)
const newKey = randomBytes(32)

/** The configuration the server would load, with the given variables on top. */
function configWith(variables: Record<string, string | undefined> = {}) {
  return loadConfig({ NODE_ENV: 'test', SECRET_KEY: SECRET, DATA_DIR: tmpdir(), ...variables })
}

/** Asserts that `decrypting` throws DataDecryptionError for `reason` (and the key id, if given). */
function assertRefused(decrypting: () => unknown, reason: DecryptionFailure, keyId?: string) {
  assert.throws(decrypting, (error: unknown) => {
    assert.ok(error instanceof DataDecryptionError, `expected a DataDecryptionError, got ${String(error)}`)
    assert.equal(error.reason, reason)
    assert.equal(error.name, 'DataDecryptionError')
    if (keyId !== undefined) assert.equal(error.keyId, keyId)
    return true
  })
}

interface StoredParts {
  version: string
  keyId: string
  iv: Buffer
  body: Buffer
}

/** A stored value's four parts, the last three decoded. */
function partsOf(stored: string): StoredParts {
  const [version, keyId, iv, body] = stored.split('.') as [string, string, string, string]
  return { version, keyId, iv: Buffer.from(iv, 'base64url'), body: Buffer.from(body, 'base64url') }
}

function storedOf(parts: StoredParts): string {
  return [parts.version, parts.keyId, parts.iv.toString('base64url'), parts.body.toString('base64url')].join(
    '.',
  )
}

/** A copy of `bytes` with one bit of byte `index` flipped (negative: from the end). */
function flipped(bytes: Buffer, index: number): Buffer {
  const copy = Buffer.from(bytes)
  const at = index < 0 ? copy.length + index : index
  copy[at] = copy[at]! ^ 0x01
  return copy
}

describe('encrypting and decrypting', () => {
  const encryption = createDataEncryption({ current: newKey })

  test('a value decrypts, with the context it was encrypted with, to the very text encrypted', () => {
    for (const plaintext of [TOTP_SECRET, '', 'é 😀 \u0000 end', 'x'.repeat(5000)])
      assert.equal(encryption.decrypt(encryption.encrypt(plaintext, CONTEXT), CONTEXT), plaintext)
  })

  test('the stored form is v1.<key id>.<12-byte IV>.<ciphertext and 16-byte tag>, in base64url', () => {
    const stored = encryption.encrypt(TOTP_SECRET, CONTEXT)
    assert.match(stored, /^v1\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/)
    const { keyId, iv, body } = partsOf(stored)
    assert.equal(keyId, encryption.keyId)
    assert.equal(iv.length, 12)
    assert.equal(body.length, Buffer.byteLength(TOTP_SECRET) + 16)
    assert.equal(body.includes(Buffer.from(TOTP_SECRET)), false, 'the plaintext does not show')
  })

  test("a key's id is the first 8 characters of the base64url SHA-256 of its bytes", () => {
    const expected = createHash('sha256').update(newKey).digest('base64url').slice(0, 8)
    assert.equal(dataEncryptionKeyId(newKey), expected)
    assert.equal(encryption.keyId, expected)
    assert.notEqual(dataEncryptionKeyId(oldKey), expected)
  })

  test('the same text encrypted twice gives two different IVs and ciphertexts, both decrypting', () => {
    const first = encryption.encrypt(TOTP_SECRET, CONTEXT)
    const second = encryption.encrypt(TOTP_SECRET, CONTEXT)
    assert.notDeepEqual(partsOf(first).iv, partsOf(second).iv)
    assert.notDeepEqual(partsOf(first).body, partsOf(second).body)
    assert.equal(encryption.decrypt(second, CONTEXT), TOTP_SECRET)
  })

  test('a value built by hand (AES-256-GCM, associated data "v1.<key id>.<context>") decrypts', () => {
    const keyId = dataEncryptionKeyId(newKey)
    const iv = Buffer.alloc(12, 7)
    const cipher = createCipheriv('aes-256-gcm', newKey, iv)
    cipher.setAAD(Buffer.from(`v1.${keyId}.${CONTEXT}`))
    const body = Buffer.concat([cipher.update(TOTP_SECRET, 'utf8'), cipher.final(), cipher.getAuthTag()])
    const stored = storedOf({ version: 'v1', keyId, iv, body })
    assert.equal(encryption.decrypt(stored, CONTEXT), TOTP_SECRET)
  })

  test('a value stored by this version under a SECRET_KEY still decrypts under that SECRET_KEY', () => {
    // Written once by this module: a change of format, derivation or key id breaks this line,
    // as it would break every secret already in a database.
    const stored =
      'v1.7aAUbV-i.9mr-CR-I8OsBjYfZ.y9eOYMvfMfm0Z7JNtxG8BGKAzPkg6C_odHlBraHmwx6WDa7Jdujlo97mKRkYGzGc'
    const derived = createDataEncryption(dataEncryptionKeysOf(configWith()))
    assert.equal(derived.keyId, '7aAUbV-i')
    assert.equal(derived.decrypt(stored, CONTEXT), TOTP_SECRET)
    assert.equal(derived.needsReencryption(stored), false)
  })

  test('a value does not decrypt under any other context: another user, another purpose, a prefix, a case', () => {
    const stored = encryption.encrypt(TOTP_SECRET, CONTEXT)
    for (const other of [
      'totp:user:43',
      'totp:user:420',
      'signing-key:user:42',
      'totp:user:4',
      'TOTP:user:42',
    ])
      assertRefused(() => encryption.decrypt(stored, other), 'not_authentic', encryption.keyId)
  })

  test('an empty context is a TypeError of the caller, when encrypting and when decrypting', () => {
    const stored = encryption.encrypt(TOTP_SECRET, CONTEXT)
    const error = { name: 'TypeError', message: /context must be a non-empty string/ }
    assert.throws(() => encryption.encrypt(TOTP_SECRET, ''), error)
    assert.throws(() => encryption.decrypt(stored, ''), error)
    assert.throws(() => encryption.decrypt(stored, undefined as unknown as string), error)
    assert.throws(() => encryption.encrypt(TOTP_SECRET, 42 as unknown as string), error)
  })

  test('a key of other than 32 bytes is refused when the encryption is created, current or previous', () => {
    const refusal = (length: number) => ({
      name: 'RangeError',
      message: `a data encryption key must be 32 bytes, got ${length}`,
    })
    assert.throws(() => createDataEncryption({ current: randomBytes(31) }), refusal(31))
    assert.throws(() => createDataEncryption({ current: randomBytes(33) }), refusal(33))
    assert.throws(() => createDataEncryption({ current: newKey, previous: [randomBytes(16)] }), refusal(16))
  })

  test('the error says what failed and never what the value or the key holds', () => {
    const stored = encryption.encrypt(TOTP_SECRET, CONTEXT)
    assert.throws(
      () => encryption.decrypt(stored, 'totp:user:43'),
      (error: Error) => {
        assert.ok(error instanceof Error)
        assert.match(error.message, /does not decrypt/)
        assert.ok(error.message.includes(encryption.keyId), 'names the key id')
        assert.equal(error.message.includes(TOTP_SECRET), false)
        assert.equal(error.message.includes(newKey.toString('base64url')), false)
        return true
      },
    )
    assertRefused(() => encryption.decrypt('garbage', CONTEXT), 'malformed')
    assert.throws(() => encryption.decrypt('garbage', CONTEXT), {
      message: 'The stored value is not an encrypted value of a known format',
    })
  })
})

describe('an altered value is refused, never decrypted to something else', () => {
  const encryption = createDataEncryption({ current: newKey, previous: [oldKey] })
  const stored = encryption.encrypt(TOTP_SECRET, CONTEXT)
  const parts = partsOf(stored)
  const keyId = encryption.keyId

  test('the untouched value decrypts (so each refusal below is the alteration)', () => {
    assert.equal(encryption.decrypt(stored, CONTEXT), TOTP_SECRET)
  })

  test('one bit of the IV, of the ciphertext or of the tag changed: not authentic', () => {
    const alterations: [string, Partial<StoredParts>][] = [
      ['the first byte of the IV', { iv: flipped(parts.iv, 0) }],
      ['the last byte of the IV', { iv: flipped(parts.iv, -1) }],
      ['the first byte of the ciphertext', { body: flipped(parts.body, 0) }],
      ['the last byte of the ciphertext', { body: flipped(parts.body, -17) }],
      ['the first byte of the tag', { body: flipped(parts.body, -16) }],
      ['the last byte of the tag', { body: flipped(parts.body, -1) }],
    ]
    for (const [what, alteration] of alterations) {
      const altered = storedOf({ ...parts, ...alteration })
      assert.notEqual(altered, stored, what)
      assertRefused(() => encryption.decrypt(altered, CONTEXT), 'not_authentic', keyId)
    }
  })

  test('a byte cut from the end (a shorter tag) or added: not authentic', () => {
    const shorter = parts.body.subarray(0, parts.body.length - 1)
    assertRefused(() => encryption.decrypt(storedOf({ ...parts, body: shorter }), CONTEXT), 'not_authentic')
    const longer = Buffer.concat([parts.body, Buffer.from([0])])
    assertRefused(() => encryption.decrypt(storedOf({ ...parts, body: longer }), CONTEXT), 'not_authentic')
  })

  test('a body too short to hold a tag: malformed; exactly a tag (an empty text) is read', () => {
    const tagOnly = parts.body.subarray(parts.body.length - 16)
    assertRefused(
      () => encryption.decrypt(storedOf({ ...parts, body: tagOnly.subarray(1) }), CONTEXT),
      'malformed',
    )
    assertRefused(() => encryption.decrypt(storedOf({ ...parts, body: tagOnly }), CONTEXT), 'not_authentic')
    assert.equal(encryption.decrypt(encryption.encrypt('', CONTEXT), CONTEXT), '')
  })

  test('an IV of 11 or 13 bytes: malformed', () => {
    assertRefused(
      () => encryption.decrypt(storedOf({ ...parts, iv: parts.iv.subarray(1) }), CONTEXT),
      'malformed',
    )
    const longer = Buffer.concat([parts.iv, Buffer.from([0])])
    assertRefused(() => encryption.decrypt(storedOf({ ...parts, iv: longer }), CONTEXT), 'malformed')
  })

  test('the key id of the other configured key: not authentic (that key, and the id in the associated data)', () => {
    const otherId = dataEncryptionKeyId(oldKey)
    assertRefused(
      () => encryption.decrypt(storedOf({ ...parts, keyId: otherId }), CONTEXT),
      'not_authentic',
      otherId,
    )
  })

  test('a key id no configured key has: unknown key, naming the id', () => {
    const unknown = dataEncryptionKeyId(randomBytes(32))
    assertRefused(
      () => encryption.decrypt(storedOf({ ...parts, keyId: unknown }), CONTEXT),
      'unknown_key',
      unknown,
    )
    assert.throws(() => encryption.decrypt(storedOf({ ...parts, keyId: unknown }), CONTEXT), {
      message: new RegExp(
        `neither DATA_ENCRYPTION_KEY nor in DATA_ENCRYPTION_PREVIOUS_KEYS \\(key ${unknown}\\)$`,
      ),
    })
  })

  test('a key id of another length or alphabet: malformed', () => {
    for (const badId of [keyId.slice(1), `${keyId}A`, `${keyId.slice(1)}=`, `${keyId.slice(1)}+`, ''])
      assertRefused(() => encryption.decrypt(storedOf({ ...parts, keyId: badId }), CONTEXT), 'malformed')
  })

  test('another version: malformed', () => {
    for (const version of ['v2', 'V1', 'v0', '1', '', 'v1 '])
      assertRefused(() => encryption.decrypt(storedOf({ ...parts, version }), CONTEXT), 'malformed')
  })

  test('a part missing or added, or not a string: malformed', () => {
    const [version, id, iv, body] = stored.split('.')
    for (const value of [
      `${version}.${id}.${iv}`,
      `${version}.${id}.${iv}.${body}.`,
      `${version}.${id}.${iv}.${body}.${body}`,
      `${version}.${id}.${iv}${body}`,
      '',
      '...',
    ])
      assertRefused(() => encryption.decrypt(value, CONTEXT), 'malformed')
    assertRefused(() => encryption.decrypt(null as unknown as string, CONTEXT), 'malformed')
    assertRefused(() => encryption.decrypt(42 as unknown as string, CONTEXT), 'malformed')
  })

  test('characters base64url does not read, or spare bits, added to the IV or the body: malformed', () => {
    const [version, id, iv, body] = stored.split('.') as [string, string, string, string]
    // Buffer.from would skip each of these and decode the very same bytes.
    for (const value of [
      `${version}.${id}.${iv}=.${body}`,
      `${version}.${id}.${iv}.${body}=`,
      `${version}.${id}.${iv}.${body} `,
      `${version}.${id}.${iv}.!${body}`,
      `${version}.${id}.${iv}.${body.slice(0, 20)}+${body.slice(20)}`,
    ])
      assertRefused(() => encryption.decrypt(value, CONTEXT), 'malformed')
    // The body is 48 bytes: 64 characters, no spare bits. With one byte fewer, the last of 63
    // characters carries 2 bits that encode nothing: flipping one gives another text, same bytes.
    const shorter = parts.body.subarray(0, parts.body.length - 1).toString('base64url')
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const spareBitsSet = `${shorter.slice(0, -1)}${alphabet[alphabet.indexOf(shorter.at(-1)!) ^ 1]}`
    assert.deepEqual(
      Buffer.from(spareBitsSet, 'base64url'),
      Buffer.from(shorter, 'base64url'),
      'the same bytes',
    )
    assertRefused(() => encryption.decrypt(`${version}.${id}.${iv}.${spareBitsSet}`, CONTEXT), 'malformed')
    assertRefused(() => encryption.decrypt(`${version}.${id}.${iv}.${shorter}`, CONTEXT), 'not_authentic')
  })

  test('needsReencryption refuses a malformed value too', () => {
    for (const value of ['', 'v2.x.y.z', `v1.${keyId}.AAAA.AAAA`, storedOf({ ...parts, version: 'v2' })])
      assertRefused(() => encryption.needsReencryption(value), 'malformed')
  })
})

describe('key rotation', () => {
  const before = createDataEncryption({ current: oldKey })
  const stored = before.encrypt(TOTP_SECRET, CONTEXT)

  test('after rotation, a value under the previous key decrypts and needs re-encryption', () => {
    const after = createDataEncryption({ current: newKey, previous: [oldKey] })
    assert.equal(after.decrypt(stored, CONTEXT), TOTP_SECRET)
    assert.equal(after.needsReencryption(stored), true)
    assert.equal(before.needsReencryption(stored), false)
  })

  test('a previous key never encrypts: new values are under the current key and need nothing', () => {
    const after = createDataEncryption({ current: newKey, previous: [oldKey] })
    const fresh = after.encrypt(TOTP_SECRET, CONTEXT)
    assert.equal(partsOf(fresh).keyId, dataEncryptionKeyId(newKey))
    assert.equal(after.needsReencryption(fresh), false)
    assertRefused(() => before.decrypt(fresh, CONTEXT), 'unknown_key', dataEncryptionKeyId(newKey))
  })

  test('re-encrypted under the current key, a value survives the removal of the previous key', () => {
    const after = createDataEncryption({ current: newKey, previous: [oldKey] })
    const moved = after.encrypt(after.decrypt(stored, CONTEXT), CONTEXT)
    const later = createDataEncryption({ current: newKey })
    assert.equal(later.decrypt(moved, CONTEXT), TOTP_SECRET)
    assertRefused(() => later.decrypt(stored, CONTEXT), 'unknown_key', dataEncryptionKeyId(oldKey))
    assert.equal(later.needsReencryption(stored), true, 'a key no longer configured is not the current one')
  })

  test('several previous keys each decrypt their values; the order does not matter', () => {
    const third = randomBytes(32)
    const underThird = createDataEncryption({ current: third }).encrypt('third', CONTEXT)
    for (const previous of [
      [oldKey, third],
      [third, oldKey],
    ]) {
      const after = createDataEncryption({ current: newKey, previous })
      assert.equal(after.decrypt(stored, CONTEXT), TOTP_SECRET)
      assert.equal(after.decrypt(underThird, CONTEXT), 'third')
    }
  })

  test('the current key listed among the previous ones changes nothing', () => {
    const encryption = createDataEncryption({ current: newKey, previous: [newKey, oldKey] })
    const fresh = encryption.encrypt(TOTP_SECRET, CONTEXT)
    assert.equal(encryption.keyId, dataEncryptionKeyId(newKey))
    assert.equal(encryption.needsReencryption(fresh), false)
    assert.equal(encryption.decrypt(fresh, CONTEXT), TOTP_SECRET)
  })
})

describe('the keys the configuration names', () => {
  test('without DATA_ENCRYPTION_KEY: HKDF-SHA256 of SECRET_KEY, empty salt, the documented info; no previous keys', () => {
    const keys = dataEncryptionKeysOf(configWith())
    const expected = Buffer.from(hkdfSync('sha256', SECRET, '', 'fastauth-api data encryption key', 32))
    assert.deepEqual(Buffer.from(keys.current), expected)
    assert.deepEqual(Buffer.from(deriveDataEncryptionKey(SECRET)), expected)
    assert.deepEqual(keys.previous, [])
    assert.notDeepEqual(
      Buffer.from(deriveDataEncryptionKey(`${SECRET}-other`)),
      expected,
      'another SECRET_KEY, another key',
    )
  })

  test('with DATA_ENCRYPTION_KEY and DATA_ENCRYPTION_PREVIOUS_KEYS: those keys, as given', () => {
    const config = configWith({
      DATA_ENCRYPTION_KEY: newKey.toString('base64'),
      DATA_ENCRYPTION_PREVIOUS_KEYS: oldKey.toString('base64url'),
    })
    const keys = dataEncryptionKeysOf(config)
    assert.deepEqual(Buffer.from(keys.current), newKey)
    assert.deepEqual(
      keys.previous?.map((key) => Buffer.from(key)),
      [oldKey],
    )
  })

  test('changing SECRET_KEY makes values under the derived key unreadable, until its derived key is a previous key', () => {
    const stored = createDataEncryption(dataEncryptionKeysOf(configWith())).encrypt(TOTP_SECRET, CONTEXT)
    const otherSecret = `${SECRET}-rotated`
    const forgotten = createDataEncryption(dataEncryptionKeysOf(configWith({ SECRET_KEY: otherSecret })))
    assertRefused(() => forgotten.decrypt(stored, CONTEXT), 'unknown_key')

    const oldDerived = Buffer.from(deriveDataEncryptionKey(SECRET)).toString('base64url')
    const kept = createDataEncryption(
      dataEncryptionKeysOf(
        configWith({ SECRET_KEY: otherSecret, DATA_ENCRYPTION_PREVIOUS_KEYS: oldDerived }),
      ),
    )
    assert.equal(kept.decrypt(stored, CONTEXT), TOTP_SECRET)
    assert.equal(kept.needsReencryption(stored), true)
  })

  test('DATA_ENCRYPTION_KEY set to the derived key before SECRET_KEY changes: every value stays current', () => {
    const stored = createDataEncryption(dataEncryptionKeysOf(configWith())).encrypt(TOTP_SECRET, CONTEXT)
    const pinned = Buffer.from(deriveDataEncryptionKey(SECRET)).toString('base64url')
    const after = createDataEncryption(
      dataEncryptionKeysOf(configWith({ SECRET_KEY: `${SECRET}-rotated`, DATA_ENCRYPTION_KEY: pinned })),
    )
    assert.equal(after.decrypt(stored, CONTEXT), TOTP_SECRET)
    assert.equal(after.needsReencryption(stored), false)
  })

  test('the command docs/security.md gives prints the key derived from SECRET_KEY', async () => {
    const docs = await readFile(path.resolve(import.meta.dirname, '../../docs/security.md'), 'utf8')
    const command = /^node -e "(.*hkdfSync.*)"$/m.exec(docs)
    assert.ok(command, 'docs/security.md shows the node -e command')
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', command[1]!], {
      env: { SECRET_KEY: SECRET },
    })
    assert.equal(stdout.trim(), Buffer.from(deriveDataEncryptionKey(SECRET)).toString('base64url'))
  })
})

describe('DATA_ENCRYPTION_KEY and DATA_ENCRYPTION_PREVIOUS_KEYS at start', () => {
  /** Loading fails with one line that starts with `variable:`; the line is returned. */
  function refusal(variables: Record<string, string>, variable: string): string {
    let caught: unknown
    try {
      configWith(variables)
    } catch (error) {
      caught = error
    }
    assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`)
    assert.equal(caught.message.includes('\n'), false, 'one line')
    assert.ok(caught.message.startsWith(`${variable}: `), caught.message)
    for (const value of Object.values(variables))
      assert.equal(caught.message.includes(value), false, 'the value is never repeated')
    return caught.message
  }

  test('unset: no key of its own (the derived one is used) and no previous keys', () => {
    const config = configWith()
    assert.equal(config.dataEncryptionKey, undefined)
    assert.deepEqual(config.dataEncryptionPreviousKeys, [])
    assert.equal(configWith({ DATA_ENCRYPTION_KEY: '  ' }).dataEncryptionKey, undefined, 'blank is unset')
  })

  test('base64 with padding, base64url without, and spaces around all give the same 32 bytes', () => {
    for (const written of [
      newKey.toString('base64'),
      newKey.toString('base64url'),
      ` ${newKey.toString('base64')} `,
      newKey.toString('base64').replace('=', ''),
    ])
      assert.deepEqual(Buffer.from(configWith({ DATA_ENCRYPTION_KEY: written }).dataEncryptionKey!), newKey)
  })

  test('a key of other than 32 bytes names its length and how to generate one', () => {
    const cases: [Buffer, number][] = [
      [randomBytes(16), 16],
      [randomBytes(31), 31],
      [randomBytes(33), 33],
    ]
    for (const [key, length] of cases) {
      const message = refusal({ DATA_ENCRYPTION_KEY: key.toString('base64') }, 'DATA_ENCRYPTION_KEY')
      assert.equal(
        message,
        `DATA_ENCRYPTION_KEY: must be 32 bytes, got ${length}; generate one with: openssl rand -base64 32`,
      )
    }
    // 32 bytes in hex (openssl rand -hex 32) is valid base64 text, and 48 bytes once decoded.
    assert.match(
      refusal({ DATA_ENCRYPTION_KEY: randomBytes(32).toString('hex') }, 'DATA_ENCRYPTION_KEY'),
      /must be 32 bytes, got 48/,
    )
  })

  test('text that is not base64 or base64url is refused as such, before any decoding', () => {
    for (const written of [
      'a passphrase that someone typed in',
      `${newKey.toString('base64url').slice(0, 42)}!`,
      `${newKey.toString('base64').slice(0, 20)}=${newKey.toString('base64').slice(20, 43)}`,
      `${newKey.toString('base64')}==`,
      `${newKey.toString('base64url').slice(0, 42)}é`,
    ])
      assert.equal(
        refusal({ DATA_ENCRYPTION_KEY: written }, 'DATA_ENCRYPTION_KEY'),
        'DATA_ENCRYPTION_KEY: is not base64 or base64url; generate one with: openssl rand -base64 32',
      )
  })

  test('padding of up to two "=" is base64: a 16-byte key with its "==" is refused for its length', () => {
    const key = randomBytes(16).toString('base64')
    assert.ok(key.endsWith('=='))
    assert.match(refusal({ DATA_ENCRYPTION_KEY: key }, 'DATA_ENCRYPTION_KEY'), /must be 32 bytes, got 16/)
  })

  test('previous keys: comma-separated, spaces and empty entries ignored, each encoding accepted', () => {
    const third = randomBytes(32)
    const config = configWith({
      DATA_ENCRYPTION_PREVIOUS_KEYS: ` ${oldKey.toString('base64')} ,, ${third.toString('base64url')},`,
    })
    assert.deepEqual(
      config.dataEncryptionPreviousKeys.map((key) => Buffer.from(key)),
      [oldKey, third],
    )
  })

  test('a bad previous key is named by its position, never by its value', () => {
    assert.equal(
      refusal(
        {
          DATA_ENCRYPTION_PREVIOUS_KEYS: `${oldKey.toString('base64')},${randomBytes(16).toString('base64')}`,
        },
        'DATA_ENCRYPTION_PREVIOUS_KEYS',
      ),
      'DATA_ENCRYPTION_PREVIOUS_KEYS: key 2 must be 32 bytes, got 16; generate one with: openssl rand -base64 32',
    )
    assert.equal(
      refusal({ DATA_ENCRYPTION_PREVIOUS_KEYS: 'not a key' }, 'DATA_ENCRYPTION_PREVIOUS_KEYS'),
      'DATA_ENCRYPTION_PREVIOUS_KEYS: key 1 is not base64 or base64url; generate one with: openssl rand -base64 32',
    )
  })
})
