import { randomInt } from 'node:crypto'
import { hashOpaqueToken } from './opaque-tokens.js'

/**
 * Recovery codes: the way into an account whose authenticator is lost. Each is 80 random bits
 * written as 16 characters of Crockford's base32 in four groups, `7kq2-m9xd-0hvw-c4tn`, shown once
 * at enrolment, stored only as a hash, and good for one login.
 *
 * Why Crockford's alphabet: it is made for people reading codes off paper. It has no I, L, O or
 * U, so nothing reads as another character (1 and I, 0 and O), and when someone types one of
 * those anyway, its decoding rule maps I and L to 1 and O to 0. RFC 4648's base32 leaves out 0, 1
 * and 8 instead but keeps I, L, O and B, and has no rule for a reader who takes one for the
 * other. Codes are shown in lower case; case never matters on input.
 */

export const RECOVERY_CODE_COUNT = 10
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
const CODE_LENGTH = 16
// Stryker disable next-line Regex: an anchor less changes nothing: what it tests is already exactly 16 ASCII letters and digits.
const CANONICAL = /^[0-9a-hjkmnp-tv-z]{16}$/

/** Ten new codes, all different, in the form they are shown and accepted. */
export function generateRecoveryCodes(): string[] {
  const codes = new Set<string>()
  while (codes.size < RECOVERY_CODE_COUNT) codes.add(randomCode())
  return [...codes]
}

function randomCode(): string {
  let characters = ''
  // randomInt draws each character uniformly (no modulo bias): 16 draws of 5 bits, 80 bits.
  for (let i = 0; i < CODE_LENGTH; i++) characters += ALPHABET.charAt(randomInt(ALPHABET.length))
  return grouped(characters)
}

/** `xxxx-xxxx-xxxx-xxxx`. */
function grouped(characters: string): string {
  return characters.replace(/(.{4})(?!$)/g, '$1-')
}

/**
 * What a person typed, as the code it must be (`xxxx-xxxx-xxxx-xxxx`, lower case), or null when
 * it cannot be one: then no lookup is needed. Case, dashes and white space anywhere are ignored,
 * and I, L and O are read as 1, 1 and 0 (Crockford's rule). Only ASCII letters and digits count:
 * nothing is case-folded into one.
 */
export function normalizeRecoveryCode(input: string): string | null {
  const compact = input.replace(/[\s-]/g, '')
  // Stryker disable next-line Regex: an anchor less changes nothing: a longer text stays longer than CANONICAL's 16 characters.
  if (!/^[0-9a-z]{16}$/i.test(compact)) return null
  const read = compact.toLowerCase().replace(/[il]/g, '1').replace(/o/g, '0')
  return CANONICAL.test(read) ? grouped(read) : null
}

/**
 * The hash stored for a code, of its normalised form, so that any way of typing it finds it.
 * SHA-256 (src/auth/opaque-tokens.ts's hash of tokens) is enough: with 80 random bits there is no
 * dictionary to try, so a slow password hash would cost each login without protecting anything,
 * and a fast one lets the login find the code with one indexed read.
 * Throws a TypeError for text that cannot be a code: normalise user input first.
 */
export function hashRecoveryCode(code: string): string {
  const normalized = normalizeRecoveryCode(code)
  if (normalized === null) throw new TypeError('not a recovery code')
  return hashOpaqueToken(normalized)
}
