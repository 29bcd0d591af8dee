/**
 * Recovery codes (src/auth/recovery-codes.ts): ten per enrolment, 16 characters of Crockford's
 * base32 in four groups (80 bits), every character drawn uniformly; what a person may type for
 * one (case, dashes, spaces, I/L/O for 1/0) and what can never be one; and the stored hash, which
 * must stay the same for every way of typing a code and from one version to the next.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, test } from 'node:test'
import { hashOpaqueToken } from '../../src/auth/opaque-tokens.js'
import {
  generateRecoveryCodes,
  hashRecoveryCode,
  normalizeRecoveryCode,
  RECOVERY_CODE_COUNT,
} from '../../src/auth/recovery-codes.js'

/** Crockford's base32: digits and lower-case letters without i, l, o and u. */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
const SHAPE = /^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$/
/** A code as it is shown, holding a 0 and a 1, the characters people mistype. */
const CODE = '01ab-cdef-ghjk-mnpq'

describe('generating codes', () => {
  test('ten codes, each four groups of four characters of the alphabet: xxxx-xxxx-xxxx-xxxx', () => {
    const codes = generateRecoveryCodes()
    assert.equal(RECOVERY_CODE_COUNT, 10)
    assert.equal(codes.length, 10)
    for (const code of codes) assert.match(code, SHAPE)
    assert.equal(ALPHABET.length, 32, '5 bits a character, 80 bits a code')
  })

  test('the ten codes are all different, and so are those of a hundred enrolments', () => {
    const codes = Array.from({ length: 100 }, generateRecoveryCodes)
    for (const ten of codes) assert.equal(new Set(ten).size, 10)
    assert.equal(new Set(codes.flat()).size, 1000)
  })

  test('every character of the alphabet turns up at every position, each about as often: 80 bits', () => {
    const codes = Array.from({ length: 300 }, generateRecoveryCodes)
      .flat()
      .map((code) => code.replaceAll('-', ''))
    const total = new Map<string, number>()
    for (let position = 0; position < 16; position++) {
      const seen = new Set(codes.map((code) => code[position]))
      // 3000 draws of 32 characters: a character missing by chance has odds of e^-94.
      assert.deepEqual([...seen].sort().join(''), ALPHABET, `position ${position}`)
    }
    for (const character of codes.join('')) total.set(character, (total.get(character) ?? 0) + 1)
    // 48 000 characters: 1500 of each expected, a standard deviation of about 38.
    for (const character of ALPHABET) {
      const count = total.get(character) ?? 0
      assert.ok(count > 1200 && count < 1800, `${character} turned up ${count} times`)
    }
  })

  test('a generated code is its own normal form', () => {
    for (const code of generateRecoveryCodes()) assert.equal(normalizeRecoveryCode(code), code)
  })
})

describe('what a person types', () => {
  test('case, dashes and white space anywhere do not matter', () => {
    for (const typed of [
      CODE,
      '01AB-CDEF-GHJK-MNPQ',
      '01abcdefghjkmnpq',
      '01ab cdef ghjk mnpq',
      '  01Ab-cDeF ghjk\tMNPQ \n',
      '0-1-a-b-c-d-e-f-g-h-j-k-m-n-p-q',
      '--01abcdefghjkmnpq--',
      '01ab\u00a0cdef\u2009ghjk mnpq',
    ])
      assert.equal(normalizeRecoveryCode(typed), CODE, JSON.stringify(typed))
  })

  test('I and L are read as 1, and O as 0, in either case (Crockford)', () => {
    for (const typed of [
      'oiab-cdef-ghjk-mnpq',
      'OIAB-CDEF-GHJK-MNPQ',
      'olab-cdef-ghjk-mnpq',
      'OLab cdef ghjk mnpq',
    ])
      assert.equal(normalizeRecoveryCode(typed), CODE, typed)
    assert.equal(normalizeRecoveryCode('1o1o-1l1i-0000-oooo'), '1010-1111-0000-0000')
  })

  test('what can never be a code is null: U, another length, other characters, non-ASCII look-alikes', () => {
    for (const typed of [
      '',
      '   ',
      '01ab-cdef-ghjk-mnpu',
      'U1ab-cdef-ghjk-mnpq',
      '01ab-cdef-ghjk-mnp',
      '01ab-cdef-ghjk-mnpqr',
      '01ab-cdef-ghjk-mnpq-01ab',
      '01ab.cdef.ghjk.mnpq',
      '01ab_cdef_ghjk_mnpq',
      '01ab-cdef-ghjk-mnp!',
      '01äb-cdef-ghjk-mnpq',
      '01ab-cdef-ghj\u212a-mnpq', // KELVIN SIGN, which lower-cases to k
      '01ab-cdef-ghjk-mnp\u017f', // LATIN SMALL LETTER LONG S, which upper-cases to S
      '０１ab-cdef-ghjk-mnpq',
      '01ab-cdef-ghjk-mnpq\u0000',
    ])
      assert.equal(normalizeRecoveryCode(typed), null, JSON.stringify(typed))
  })
})

describe('the stored hash', () => {
  test('SHA-256, hex, of the normal form: the hash of opaque tokens, the same from one version to the next', () => {
    // Written out: stored hashes must keep matching what users type after any change here.
    assert.equal(hashRecoveryCode(CODE), '9bbdc3a59c9c1c4e6e2d194a9b9a95cdd7a7514972cf0da4960f00448e893753')
    assert.equal(hashRecoveryCode(CODE), createHash('sha256').update(CODE).digest('hex'))
    assert.equal(hashRecoveryCode(CODE), hashOpaqueToken(CODE))
  })

  test('every way of typing a code gives the hash of the code', () => {
    const code = generateRecoveryCodes()[0]!
    const hash = hashRecoveryCode(code)
    for (const typed of [
      code.toUpperCase(),
      code.replaceAll('-', ''),
      code.replaceAll('-', ' '),
      ` ${code} `,
    ])
      assert.equal(hashRecoveryCode(typed), hash, typed)
    assert.equal(hashRecoveryCode('OIAB cdef ghjk MNPQ'), hashRecoveryCode(CODE))
  })

  test('two codes, two hashes', () => {
    const hashes = generateRecoveryCodes().map(hashRecoveryCode)
    assert.equal(new Set(hashes).size, 10)
    for (const hash of hashes) assert.match(hash, /^[0-9a-f]{64}$/)
  })

  test('hashing what cannot be a code is a TypeError, not the hash of something', () => {
    for (const typed of ['', 'this is not a code', '01ab-cdef-ghjk-mnpu'])
      assert.throws(() => hashRecoveryCode(typed), { name: 'TypeError', message: 'not a recovery code' })
  })
})
