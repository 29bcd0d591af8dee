import { createHash, randomBytes } from 'node:crypto'

/**
 * Refresh, password-reset and verification tokens: 256 random bits, handed to the client once and
 * stored only as a SHA-256 hash (a fast hash is right here: the token has full entropy, so there
 * is nothing to brute-force, and lookups stay one indexed read).
 */
export function generateOpaqueToken(): string {
  return randomBytes(32).toString('base64url')
}

export function hashOpaqueToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}

/** The shape every generated token has; anything else is refused without a database read. */
export const OPAQUE_TOKEN_PATTERN = '^[A-Za-z0-9_-]{43}$'
