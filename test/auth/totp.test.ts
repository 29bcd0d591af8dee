/**
 * TOTP (src/auth/totp.ts): RFC 6238's own test vectors, the window of one step either side tried
 * at the last millisecond of a step and the first of the next, the step numbers the caller keeps
 * to refuse a replay, what a person may type, the secret, and the URI an authenticator app reads.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { HOTP, Secret, TOTP, URI } from 'otpauth'
import {
  generateTotpSecret,
  TOTP_DIGITS,
  TOTP_PERIOD_SECONDS,
  TOTP_WINDOW_STEPS,
  totpStep,
  totpUri,
  verifyTotpCode,
} from '../../src/auth/totp.js'

const SECOND = 1000
/** RFC 6238, appendix B: the SHA-1 key is the ASCII text "12345678901234567890". */
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'

/** The code of a step, as an authenticator app computes it (the library, on its own). */
function codeOf(secret: string, step: number): string {
  return HOTP.generate({ secret: Secret.fromBase32(secret), counter: step, digits: 6, algorithm: 'SHA1' })
}

const stepStart = (step: number) => step * TOTP_PERIOD_SECONDS * SECOND
const stepEnd = (step: number) => stepStart(step + 1) - 1

test('the parameters every authenticator app reads: 6 digits, 30 s, one step either side', () => {
  assert.equal(TOTP_DIGITS, 6)
  assert.equal(TOTP_PERIOD_SECONDS, 30)
  assert.equal(TOTP_WINDOW_STEPS, 1)
})

test("RFC 6238's SHA-1 test vectors (their last six digits) are accepted, at their step", () => {
  assert.equal(Secret.fromBase32(RFC_SECRET).utf8, '12345678901234567890', 'the RFC key')
  const vectors: [seconds: number, code: string][] = [
    [59, '94287082'],
    [1111111109, '07081804'],
    [1111111111, '14050471'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
    [20000000000, '65353130'],
  ]
  for (const [seconds, eightDigits] of vectors) {
    const code = eightDigits.slice(2)
    const step = Math.floor(seconds / 30)
    assert.equal(verifyTotpCode(RFC_SECRET, code, seconds * SECOND), step, `T = ${seconds}`)
    assert.equal(
      verifyTotpCode(RFC_SECRET, code, new Date(seconds * SECOND)),
      step,
      `T = ${seconds} as a Date`,
    )
  }
})

describe('the window: the current step and one either side, at their exact boundaries', () => {
  // RFC 6238's T = 1111111111 s lies in this step; its vector for T = 1111111109 s is the step before.
  const step = 37037037
  const codes = new Map([-2, -1, 0, 1, 2, 3].map((offset) => [offset, codeOf(RFC_SECRET, step + offset)]))
  const code = (offset: number) => codes.get(offset)!

  test('the codes of these steps all differ (so each case below tells the steps apart)', () => {
    assert.equal(new Set(codes.values()).size, codes.size)
    assert.equal(code(-1), '081804', "the RFC's T = 1111111109 s")
    assert.equal(code(0), '050471', "the RFC's T = 1111111111 s")
  })

  test('the code of the current step answers the current step number, from its first to its last millisecond', () => {
    for (const at of [stepStart(step), stepStart(step) + 15 * SECOND, stepEnd(step)])
      assert.equal(verifyTotpCode(RFC_SECRET, code(0), at), step)
  })

  test("the previous step's code answers the previous step's number; the next step's, the next one's", () => {
    for (const at of [stepStart(step), stepEnd(step)]) {
      assert.equal(verifyTotpCode(RFC_SECRET, code(-1), at), step - 1)
      assert.equal(verifyTotpCode(RFC_SECRET, code(1), at), step + 1)
    }
  })

  test('two steps off either way is refused', () => {
    for (const at of [stepStart(step), stepEnd(step)]) {
      assert.equal(verifyTotpCode(RFC_SECRET, code(-2), at), null)
      assert.equal(verifyTotpCode(RFC_SECRET, code(2), at), null)
    }
  })

  test('at the last millisecond of a step the code two steps ahead is refused; at the first of the next it is accepted', () => {
    assert.equal(verifyTotpCode(RFC_SECRET, code(2), stepEnd(step)), null)
    assert.equal(verifyTotpCode(RFC_SECRET, code(2), stepStart(step + 1)), step + 2)
  })

  test("at the last millisecond of a step the previous step's code is accepted; at the first of the next it is refused", () => {
    assert.equal(verifyTotpCode(RFC_SECRET, code(-1), stepEnd(step)), step - 1)
    assert.equal(verifyTotpCode(RFC_SECRET, code(-1), stepStart(step + 1)), null)
    assert.equal(verifyTotpCode(RFC_SECRET, code(0), stepStart(step + 1)), step, 'now the previous step')
    assert.equal(verifyTotpCode(RFC_SECRET, code(3), stepStart(step + 1)), null)
  })

  test('a wrong code, or the right code of another secret, is refused', () => {
    const wrong = String((Number(code(0)) + 1) % 1_000_000).padStart(6, '0')
    assert.ok(![...codes.values()].includes(wrong))
    assert.equal(verifyTotpCode(RFC_SECRET, wrong, stepStart(step)), null)
    const other = generateTotpSecret()
    assert.equal(verifyTotpCode(other, code(0), stepStart(step)), null)
  })
})

describe('what a person types', () => {
  const at = 59 * SECOND
  const code = '287082'

  test('spaces anywhere are dropped: "287 082", tabs, no-break spaces, a new line', () => {
    for (const typed of ['287 082', ' 287082 ', '2 8 7 0 8 2', '287\t082', '287\u00a0082', '287082\n'])
      assert.equal(verifyTotpCode(RFC_SECRET, typed, at), 1, JSON.stringify(typed))
  })

  test('anything but six ASCII digits is null, without the library being asked', () => {
    // An unreadable secret makes the library throw: a null here means it was never called.
    const unreadable = 'not base32 at all!'
    assert.throws(() => verifyTotpCode(unreadable, code, at), TypeError, 'the library refuses this secret')
    for (const typed of [
      '',
      '   ',
      '28708',
      '2870821',
      'x287082',
      '287082x',
      '287-082',
      '28708a',
      '+28708',
      '٢٨٧٠٨٢',
      '２８７０８２',
      '287082287082',
    ]) {
      assert.equal(verifyTotpCode(unreadable, typed, at), null, JSON.stringify(typed))
      assert.equal(verifyTotpCode(RFC_SECRET, typed, at), null, JSON.stringify(typed))
    }
  })
})

describe('time steps', () => {
  test('a step is the number of whole 30-second periods since the epoch, for a number or a Date', () => {
    assert.equal(totpStep(0), 0)
    assert.equal(totpStep(29_999), 0)
    assert.equal(totpStep(30_000), 1)
    assert.equal(totpStep(new Date(59_999)), 1)
    assert.equal(totpStep(new Date(60_000)), 2)
    assert.equal(totpStep(stepEnd(37037037)), 37037037)
    assert.equal(totpStep(stepStart(37037038)), 37037038)
  })

  test('the code of step 0 verifies at the epoch itself', () => {
    assert.equal(verifyTotpCode(RFC_SECRET, codeOf(RFC_SECRET, 0), 0), 0)
  })

  test('a time that is not one, or before 1970, is a RangeError, never a step', () => {
    for (const at of [Number.NaN, Number.POSITIVE_INFINITY, -1, new Date('not a date')]) {
      const error = { name: 'RangeError', message: 'a TOTP time must be a valid time after 1970' }
      assert.throws(() => totpStep(at), error)
      assert.throws(() => verifyTotpCode(RFC_SECRET, '287082', at), error)
    }
  })
})

describe('secrets and the otpauth URI', () => {
  test('a new secret is 160 random bits in unpadded base32, and no two are alike', () => {
    const secrets = Array.from({ length: 50 }, generateTotpSecret)
    for (const secret of secrets) {
      assert.match(secret, /^[A-Z2-7]{32}$/)
      assert.equal(Secret.fromBase32(secret).bytes.length, 20)
    }
    assert.equal(new Set(secrets).size, secrets.length)
  })

  test('a code an app computes from a new secret verifies, at its step', () => {
    const secret = generateTotpSecret()
    const now = Date.UTC(2030, 0, 1, 12, 0, 7)
    const app = new TOTP({ secret: Secret.fromBase32(secret) })
    assert.equal(verifyTotpCode(secret, app.generate({ timestamp: now }), now), totpStep(now))
  })

  test('the URI names issuer and account, carries the secret and spells out SHA1, 6 digits and 30 s', () => {
    const secret = generateTotpSecret()
    const uri = totpUri(secret, { issuer: 'FastAuth API', label: 'alice@example.com' })
    assert.equal(
      uri,
      `otpauth://totp/FastAuth%20API:alice%40example.com?issuer=FastAuth%20API&secret=${secret}&algorithm=SHA1&digits=6&period=30`,
    )
  })

  test('a colon in the issuer or the label becomes a space, so that an app splits them where we do', () => {
    const secret = generateTotpSecret()
    const uri = totpUri(secret, { issuer: 'Ex:ample', label: 'bob:smith:jr' })
    assert.ok(uri.startsWith('otpauth://totp/Ex%20ample:bob%20smith%20jr?issuer=Ex%20ample&'), uri)
    const parsed = URI.parse(uri)
    assert.equal(parsed.issuer, 'Ex ample')
    assert.equal(parsed.label, 'bob smith jr')
  })

  test('the URI reads back, as an app reads it, to the same issuer, account, secret and parameters', () => {
    const secret = generateTotpSecret()
    const parsed = URI.parse(totpUri(secret, { issuer: 'Example & Co/Ünïcode', label: 'bob smith?x=1#y' }))
    assert.ok(parsed instanceof TOTP)
    assert.equal(parsed.issuer, 'Example & Co/Ünïcode')
    assert.equal(parsed.label, 'bob smith?x=1#y')
    assert.equal(parsed.secret.base32, secret)
    assert.equal(parsed.algorithm, 'SHA1')
    assert.equal(parsed.digits, 6)
    assert.equal(parsed.period, 30)
  })
})
