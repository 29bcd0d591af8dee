import { randomBytes } from 'node:crypto'
import { HOTP, Secret, TOTP } from 'otpauth'

/**
 * Time-based one-time passwords (RFC 6238) as every authenticator app reads them: 6 digits, a
 * 30-second step, HMAC-SHA-1 (the apps' common ground: several ignore any other algorithm in the
 * URI and would show wrong codes). The HOTP arithmetic and the code comparison are the `otpauth`
 * package's; this module fixes the parameters, normalises what a person types, and names steps.
 *
 * A secret is stored encrypted (src/auth/data-encryption.ts, context e.g. `totp:user:42`); the
 * enrolment answer is the only place it is shown.
 */

export const TOTP_DIGITS = 6
export const TOTP_PERIOD_SECONDS = 30
const TOTP_ALGORITHM = 'SHA1'
/**
 * Steps accepted either side of the current one: a phone's clock a few seconds off, or a code
 * typed as it changed, still works. Each step more adds two codes a guess can hit.
 */
export const TOTP_WINDOW_STEPS = 1
/** 160 bits: the length RFC 4226 recommends (SHA-1's output size). */
const SECRET_BYTES = 20

const PERIOD_MS = TOTP_PERIOD_SECONDS * 1000
const CODE_PATTERN = /^[0-9]{6}$/

/** A new secret of 160 random bits, base32 (RFC 4648, no padding: 32 characters), as apps take it. */
export function generateTotpSecret(): string {
  // Stryker disable next-line ObjectLiteral: Secret({}) draws the same 20 bytes from node:crypto's randomBytes; written out so the size is ours.
  return new Secret({ buffer: new Uint8Array(randomBytes(SECRET_BYTES)).buffer }).base32
}

export interface TotpAccount {
  /** Who asks for the code, as the app lists it: the service's name. */
  issuer: string
  /** Whose account: the user's email or name. */
  label: string
}

/**
 * The `otpauth://totp/…` URI an authenticator app reads from a QR code (src/auth/qr-code.ts) or
 * a link: issuer and label percent-encoded, the issuer repeated as a parameter, and the
 * parameters spelled out (digits, period, algorithm) although they are the apps' defaults.
 * A colon in the issuer or the label becomes a space: apps split `issuer:label` at the first
 * colon they decode, so one inside either would move text from one to the other.
 * It carries the secret: answer it with `Cache-Control: no-store`, and never log it.
 */
export function totpUri(secret: string, account: TotpAccount): string {
  return new TOTP({
    issuer: withoutColons(account.issuer),
    label: withoutColons(account.label),
    secret: Secret.fromBase32(secret),
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
  }).toString()
}

const withoutColons = (text: string) => text.replaceAll(':', ' ')

/**
 * The time step at `at` (the app's clock, never Date.now()): the count of whole periods since
 * the epoch, RFC 6238's T. Its last millisecond is `(step + 1) * 30 000 - 1`.
 */
export function totpStep(at: Date | number): number {
  const milliseconds = typeof at === 'number' ? at : at.getTime()
  if (!Number.isFinite(milliseconds) || milliseconds < 0)
    throw new RangeError('a TOTP time must be a valid time after 1970')
  return Math.floor(milliseconds / PERIOD_MS)
}

/**
 * The step whose code `code` is, among the step at `at` and one step either side, or null.
 *
 * Spaces are dropped (apps show `123 456`); anything else that is not exactly six ASCII digits is
 * null without any HMAC being computed. The caller keeps the last step accepted for the account
 * and refuses a step at or before it: each code then works once, and a code seen over a
 * shoulder cannot be replayed within its window.
 */
export function verifyTotpCode(secret: string, code: string, at: Date | number): number | null {
  const digits = code.replace(/\s/g, '')
  if (!CODE_PATTERN.test(digits)) return null
  const step = totpStep(at)
  // HOTP over the step we computed, rather than TOTP over the time: the step we return is then
  // exactly the counter the library matched.
  const delta = HOTP.validate({
    token: digits,
    secret: Secret.fromBase32(secret),
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    counter: step,
    window: TOTP_WINDOW_STEPS,
  })
  return delta === null ? null : step + delta
}
