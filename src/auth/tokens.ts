import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import {
  SignJWT,
  errors as joseErrors,
  importPKCS8,
  importSPKI,
  jwtVerify,
  type CryptoKey,
  type JWTPayload,
} from 'jose'
import type { Config } from '../config.js'

export type Role = 'user' | 'admin'

export interface AccessTokenClaims {
  sub: string
  user_id: number
  /** The role when the token was issued; any role change revokes the user's sessions. */
  role: Role
  sid: string
  jti: string
  iat: number
  exp: number
}

export interface IssuedAccessToken {
  token: string
  expiresIn: number
  claims: AccessTokenClaims
}

export type TokenFailure = 'expired' | 'invalid'

export class TokenError extends Error {
  override name = 'TokenError'
  constructor(readonly reason: TokenFailure) {
    super(reason === 'expired' ? 'The access token has expired' : 'The access token is invalid')
  }
}

export interface TokenService {
  issueAccessToken(user: { id: number; role: Role }, sessionId: string): Promise<IssuedAccessToken>
  verifyAccessToken(token: string): Promise<AccessTokenClaims>
}

/**
 * Keys are imported once: jose verifies HS256 in a few microseconds with a ready CryptoKey and
 * spends more than twice that re-importing raw bytes on every call.
 */
export async function createTokenService(config: Config): Promise<TokenService> {
  const algorithm = config.jwtAlgorithm
  let signingKey: CryptoKey | Uint8Array
  let verifyingKey: CryptoKey | Uint8Array
  if (algorithm.startsWith('HS')) {
    const secret = new TextEncoder().encode(config.secretKey)
    const key = await crypto.subtle.importKey(
      'raw',
      secret,
      { name: 'HMAC', hash: `SHA-${algorithm.slice(2)}` },
      false,
      ['sign', 'verify'],
    )
    signingKey = key
    verifyingKey = key
  } else {
    signingKey = await importPKCS8(await readFile(config.jwtPrivateKeyFile!, 'utf8'), algorithm)
    verifyingKey = await importSPKI(await readFile(config.jwtPublicKeyFile!, 'utf8'), algorithm)
  }
  const lifetimeSeconds = config.accessTokenExpireMinutes * 60
  // The allow-list is exactly the configured algorithm: never `none`, never a symmetric/asymmetric swap.
  const verifyOptions = { algorithms: [algorithm], issuer: config.jwtIssuer, audience: config.jwtAudience }

  return {
    async issueAccessToken(user, sessionId) {
      const iat = Math.floor(Date.now() / 1000)
      const claims: AccessTokenClaims = {
        sub: String(user.id),
        user_id: user.id,
        role: user.role,
        sid: sessionId,
        jti: randomUUID(),
        iat,
        exp: iat + lifetimeSeconds,
      }
      const token = await new SignJWT({ user_id: claims.user_id, role: claims.role, sid: claims.sid })
        .setProtectedHeader({ alg: algorithm, typ: 'JWT' })
        .setSubject(claims.sub)
        .setJti(claims.jti)
        .setIssuedAt(iat)
        .setExpirationTime(claims.exp)
        .setIssuer(config.jwtIssuer)
        .setAudience(config.jwtAudience)
        .sign(signingKey)
      return { token, expiresIn: lifetimeSeconds, claims }
    },

    async verifyAccessToken(token) {
      let payload: JWTPayload
      try {
        ;({ payload } = await jwtVerify(token, verifyingKey, verifyOptions))
      } catch (error) {
        throw new TokenError(error instanceof joseErrors.JWTExpired ? 'expired' : 'invalid')
      }
      const { sub, user_id: userId, role, sid, jti, iat, exp } = payload
      if (
        (role !== 'user' && role !== 'admin') ||
        typeof sub !== 'string' ||
        typeof userId !== 'number' ||
        String(userId) !== sub ||
        typeof sid !== 'string' ||
        typeof jti !== 'string' ||
        typeof iat !== 'number' ||
        typeof exp !== 'number'
      )
        throw new TokenError('invalid')
      return { sub, user_id: userId, role, sid, jti, iat, exp }
    },
  }
}
