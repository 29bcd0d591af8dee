/**
 * The credential primitives on their own: how passwords are hashed (argon2id at OWASP's cost),
 * normalised and counted, which are too common, how emails and names are compared, and the opaque
 * tokens (their shape, their hash, and the derivation of a refresh token's successor).
 */
import assert from 'node:assert/strict'
import { availableParallelism } from 'node:os'
import { test } from 'node:test'
import { isCommonPassword } from '../../src/auth/common-passwords.js'
import { loginLookup, nameKey, normalizeEmail } from '../../src/auth/identifiers.js'
import {
  createRefreshTokenSuccessor,
  generateOpaqueToken,
  hashOpaqueToken,
  OPAQUE_TOKEN_PATTERN,
} from '../../src/auth/opaque-tokens.js'
import {
  HASHING_CONCURRENCY,
  hashingBound,
  hashingConcurrency,
  hashPassword,
  limitHashing,
  passwordHashing,
  normalizePassword,
  passwordLength,
  verifyPassword,
} from '../../src/auth/passwords.js'
import { TEST_SECRET } from '../support/app.js'

test('passwords are hashed with argon2id at 19 MiB, 2 passes, 1 lane, each with its own salt', async () => {
  const [first, second] = [await hashPassword('a passphrase'), await hashPassword('a passphrase')]
  assert.match(first, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
  assert.notEqual(first, second, 'a salt of its own')
  assert.equal(await verifyPassword(first, 'a passphrase'), true)
  assert.equal(await verifyPassword(first, 'a passphrase '), false)
})

test('a password typed in another Unicode form verifies; length counts characters, not code units', async () => {
  const composed = 'caf\u00e9 au lait'
  const decomposed = 'cafe\u0301 au lait'
  assert.equal(normalizePassword(decomposed), composed)
  assert.equal(await verifyPassword(await hashPassword(composed), decomposed), true)
  assert.equal(passwordLength(decomposed), 12)
  assert.equal(passwordLength('😀😀'), 2)
  assert.equal(passwordLength('ﬁ'), 2, 'NFKC: the ligature is two letters')
})

test('hashing concurrency: one core and one pool thread left free, at least one', () => {
  assert.equal(hashingConcurrency(2, undefined), 1)
  assert.equal(hashingConcurrency(1, undefined), 1)
  assert.equal(hashingConcurrency(8, undefined), 3, 'the default pool of 4 threads')
  assert.equal(hashingConcurrency(8, '16'), 7, 'the cores')
  assert.equal(hashingConcurrency(16, '6'), 5, 'the pool')
  assert.equal(hashingConcurrency(4, '1'), 1)
  assert.equal(hashingConcurrency(4, 'not a number'), 3)
  assert.equal(
    HASHING_CONCURRENCY,
    hashingConcurrency(availableParallelism(), process.env.UV_THREADPOOL_SIZE),
  )
})

test('a burst of verifications: at most HASHING_CONCURRENCY run at once, the rest wait in order, all complete', async () => {
  const hash = await hashPassword('burst')
  const before = passwordHashing()
  assert.deepEqual([before.running, before.waiting], [0, 0])
  const burst = Array.from({ length: 6 }, (_, i) => verifyPassword(hash, i % 2 === 0 ? 'burst' : 'wrong'))
  const during = passwordHashing()
  assert.equal(during.running, Math.min(6, HASHING_CONCURRENCY))
  assert.equal(during.waiting, 6 - during.running)
  assert.deepEqual(await Promise.all(burst), [true, false, true, false, true, false])
  const after = passwordHashing()
  assert.deepEqual([after.running, after.waiting], [0, 0], 'every slot given back')
  assert.equal(after.verify - before.verify, 6)
})

test('PASSWORD_HASHING_CONCURRENCY: a raised bound starts waiting computations at once; a lowered one lets the running finish', async (t) => {
  t.after(() => limitHashing(undefined))
  const hash = await hashPassword('bound')
  const state = () => [passwordHashing().running, passwordHashing().waiting]
  limitHashing(1)
  assert.equal(hashingBound(), 1)
  const first = Array.from({ length: 4 }, () => verifyPassword(hash, 'bound'))
  assert.deepEqual(state(), [1, 3])
  limitHashing(3)
  assert.equal(hashingBound(), 3)
  assert.deepEqual(state(), [3, 1], 'two more started at once')
  limitHashing(1)
  assert.deepEqual(state(), [3, 1], 'the running go on')
  assert.deepEqual(await Promise.all(first), [true, true, true, true])
  assert.deepEqual(state(), [0, 0], 'every slot given back')
  // At the lowered bound, a burst runs one at a time again.
  const second = Array.from({ length: 3 }, () => verifyPassword(hash, 'bound'))
  assert.deepEqual(state(), [1, 2])
  await Promise.all(second)
  limitHashing(undefined)
  assert.equal(hashingBound(), HASHING_CONCURRENCY, 'undefined: the default again')
})

test('only computations that happened are counted: a malformed hash fails at once, uncounted', async () => {
  const before = passwordHashing()
  await hashPassword('counted')
  assert.equal(passwordHashing().hash - before.hash, 1)
  assert.equal(await verifyPassword('$argon2id$not-a-hash', 'x'), false)
  assert.equal(passwordHashing().verify - before.verify, 0)
})

test('common passwords are refused as typed and in any case; a rare one is not', () => {
  for (const common of ['password', 'PASSWORD', 'Password', 'qwerty123', 'iloveyou'])
    assert.equal(isCommonPassword(common), true, common)
  assert.equal(isCommonPassword('correct horse battery staple 42'), false)
})

test('emails: trimmed, NFKC, lower-cased; names: NFKC and lower-cased for uniqueness', () => {
  assert.equal(normalizeEmail('  Carol@EXAMPLE.com \t'), 'carol@example.com')
  assert.equal(normalizeEmail('ｃａｒｏｌ@example.com'), 'carol@example.com', 'full-width letters')
  assert.equal(nameKey('Ärger'), 'ärger')
  assert.equal(nameKey('A\u0308rger'), 'ärger', 'a decomposed umlaut is the same name')
  assert.equal(nameKey('ＢＯＢ'), 'bob')
})

test('a login name with "@" is looked up among emails only, any other among names only', () => {
  assert.deepEqual(loginLookup(' Carol@Example.com '), { by: 'email', key: 'carol@example.com' })
  assert.deepEqual(loginLookup('Carol'), { by: 'name', key: 'carol' })
  assert.deepEqual(
    loginLookup('carol＠example.com'),
    { by: 'email', key: 'carol@example.com' },
    'full-width @',
  )
})

test('opaque tokens: 256 random bits in 43 base64url characters, stored as their SHA-256', () => {
  const tokens = new Set(Array.from({ length: 50 }, generateOpaqueToken))
  assert.equal(tokens.size, 50)
  for (const token of tokens) assert.match(token, new RegExp(OPAQUE_TOKEN_PATTERN))
  assert.equal(Buffer.from([...tokens][0]!, 'base64url').length, 32)
  assert.doesNotMatch('a'.repeat(42), new RegExp(OPAQUE_TOKEN_PATTERN))
  assert.doesNotMatch(`${'a'.repeat(42)}+`, new RegExp(OPAQUE_TOKEN_PATTERN))
  assert.equal(hashOpaqueToken('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
})

test('a refresh token’s successor: derived from it under a subkey of SECRET_KEY, the same on every instance and release', () => {
  const successor = createRefreshTokenSuccessor(TEST_SECRET)
  // A change to the derivation would leave clients that refreshed just before a deploy without
  // the duplicate answer: it is pinned.
  assert.equal(successor('parent-token'), 'fGgz50XpIYl1JsJ_4xVRrhEjj-P__KX2NAi1i6x8_c0')
  assert.equal(createRefreshTokenSuccessor(TEST_SECRET)('parent-token'), successor('parent-token'))
  assert.notEqual(successor('parent-token2'), successor('parent-token'))
  assert.notEqual(createRefreshTokenSuccessor(`${TEST_SECRET}x`)('parent-token'), successor('parent-token'))
  assert.match(successor(generateOpaqueToken()), new RegExp(OPAQUE_TOKEN_PATTERN))
})
