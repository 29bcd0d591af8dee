import { createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto'

/**
 * Refresh, password-reset and verification tokens: 256 random bits, handed to the client once and
 * stored only as a SHA-256 hash (a fast hash is right here: the token has full entropy, so there
 * is nothing to brute-force, and lookups stay one indexed read).
 */
export function generateOpaqueToken(): string {
  return randomBytes(32).toString('base64url')
}

export function hashOpaqueToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/**
 * The refresh token that rotating `parent` hands out. It is derived, not random, so that a
 * duplicate presentation of `parent` (a second tab, a retried request, or a thief racing the
 * client) can be answered with the very same token while the database keeps nothing but hashes:
 * both holders then share one token, and whichever of them rotates it next exposes the other.
 * The key is a subkey of SECRET_KEY used for nothing else; without it, nobody can compute a
 * successor from its parent (a first token of a login stays random).
 */
export function createRefreshTokenSuccessor(secretKey: string): (parent: string) => string {
  const key = Buffer.from(hkdfSync('sha256', secretKey, '', 'refresh token successor', 32))
  return (parent) => createHmac('sha256', key).update(parent).digest('base64url')
}

/** The shape every generated token has; anything else is refused without a database read. */
export const OPAQUE_TOKEN_PATTERN = '^[A-Za-z0-9_-]{43}$'
