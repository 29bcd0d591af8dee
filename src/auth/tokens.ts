import { randomUUID } from 'node:crypto'
import { SignJWT, errors as joseErrors, jwtVerify, type CryptoKey, type JWTPayload } from 'jose'
import type { Config } from '../config.js'
import { systemClock, type Clock } from '../services/clock.js'

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
  /**
   * How the session's login was authenticated (RFC 8176 values): `["pwd"]` for a password alone,
   * `["pwd","otp","mfa"]` with a TOTP code, `["pwd","mfa"]` with a recovery code. Always set by
   * issueAccessToken and verifyAccessToken; optional in the type only for stand-ins built by hand.
   */
  amr?: string[]
}

export interface IssuedAccessToken {
  token: string
  expiresIn: number
  claims: AccessTokenClaims
}

export type TokenFailure = 'expired' | 'invalid'

const TOKEN_FAILURES: Record<TokenFailure, string> = {
  expired: 'The access token has expired',
  invalid: 'The access token is invalid',
}

export class TokenError extends Error {
  override name = 'TokenError'
  constructor(readonly reason: TokenFailure) {
    super(TOKEN_FAILURES[reason])
  }
}

/** The media type of an access token (RFC 9068), in the protected header's `typ`. */
const ACCESS_TOKEN_TYPE = 'at+jwt'

/**
 * How far in the future an `iat` may lie: instances behind one load balancer keep clocks that
 * differ by a few seconds, and a token issued by one is checked by another. A minute covers that
 * and nothing more; `exp` gets no such tolerance.
 */
export const ISSUED_AT_LEEWAY_SECONDS = 60

export interface TokenService {
  issueAccessToken(
    user: { id: number; role: Role },
    sessionId: string,
    amr: readonly string[],
  ): Promise<IssuedAccessToken>
  verifyAccessToken(token: string): Promise<AccessTokenClaims>
}

/**
 * The keys tokens are signed and verified with (services/signing-keys.ts): SECRET_KEY for the HS
 * algorithms, else the stored keys, each named by its `kid`.
 */
export interface TokenKeys {
  /** The key that signs now, its `kid` and algorithm. */
  signer(): Promise<{ kid: string; algorithm: string; key: CryptoKey | Uint8Array }>
  /** The key named `kid` if it verifies tokens of `algorithm` now; else it throws. */
  verifier(kid: string | undefined, algorithm: string | undefined): Promise<CryptoKey | Uint8Array>
  /**
   * The algorithms a token may name (never `none`, never an HS one beside asymmetric keys); the
   * key its `kid` names must then be of that very algorithm.
   */
  acceptedAlgorithms(): readonly string[]
}

export async function createTokenService(
  config: Config,
  keys: TokenKeys,
  clock: Clock = systemClock,
): Promise<TokenService> {
  const lifetimeSeconds = config.accessTokenExpireMinutes * 60
  // The allow-list is the kind of key configured (HS, or the asymmetric ones), and each key is
  // pinned to its own algorithm: never
  // `none`, never a symmetric/asymmetric swap. `typ` keeps any other JWT signed with the same key
  // (an ID token, a future token kind) from passing for an access token (RFC 8725 §3.11).
  const verifyOptions = {
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    typ: ACCESS_TOKEN_TYPE,
  }

  return {
    async issueAccessToken(user, sessionId, amr) {
      const methods = [...amr]
      const iat = Math.floor(clock.now() / 1000)
      const claims: AccessTokenClaims = {
        sub: String(user.id),
        user_id: user.id,
        role: user.role,
        sid: sessionId,
        jti: randomUUID(),
        iat,
        exp: iat + lifetimeSeconds,
        amr: methods,
      }
      const signer = await keys.signer()
      const token = await new SignJWT({
        user_id: claims.user_id,
        role: claims.role,
        sid: claims.sid,
        amr: methods,
      })
        .setProtectedHeader({ alg: signer.algorithm, typ: ACCESS_TOKEN_TYPE, kid: signer.kid })
        .setSubject(claims.sub)
        .setJti(claims.jti)
        .setIssuedAt(iat)
        .setExpirationTime(claims.exp)
        .setIssuer(config.jwtIssuer)
        .setAudience(config.jwtAudience)
        .sign(signer.key)
      return { token, expiresIn: lifetimeSeconds, claims }
    },

    async verifyAccessToken(token) {
      let payload: JWTPayload
      try {
        ;({ payload } = await jwtVerify(token, (header) => keys.verifier(header.kid, header.alg), {
          ...verifyOptions,
          algorithms: [...keys.acceptedAlgorithms()],
          currentDate: new Date(clock.now()),
        }))
      } catch (error) {
        throw new TokenError(error instanceof joseErrors.JWTExpired ? 'expired' : 'invalid')
      }
      const claims = claimsOf(payload)
      assertIssuedWithinLifetime(claims.iat, claims.exp, lifetimeSeconds, clock)
      return claims
    },
  }
}

/** The claims of a verified payload, each of the type we issue it with; else the token is invalid. */
function claimsOf(payload: JWTPayload): AccessTokenClaims {
  const { sub, user_id: userId, role, sid, jti, iat, exp, amr } = payload
  if (
    (role !== 'user' && role !== 'admin') ||
    typeof userId !== 'number' ||
    String(userId) !== sub ||
    typeof sid !== 'string' ||
    typeof jti !== 'string' ||
    typeof iat !== 'number' ||
    typeof exp !== 'number' ||
    !isMethodList(amr)
  )
    throw new TokenError('invalid')
  // Tokens issued before `amr` existed live at most one lifetime more: absent reads as a password login.
  return { sub, user_id: userId, role, sid, jti, iat, exp, amr: amr ?? ['pwd'] }
}

/** `amr` is absent (a token issued before it existed) or a list of method names. */
function isMethodList(amr: unknown): amr is string[] | undefined {
  return amr === undefined || (Array.isArray(amr) && amr.every((method) => typeof method === 'string'))
}

/**
 * A token is only as good as its signature while the signing key is secret: one signed with a
 * leaked key, or by a bug, with a far-future `iat` or a lifetime of a year would otherwise open
 * the API for that long. We issue `exp = iat + lifetime`, so anything else was not issued by us
 * as it stands. jose's `clockTolerance` would also stretch `exp`, and its `maxTokenAge` allows no
 * leeway on `iat`, hence these checks of our own.
 */
function assertIssuedWithinLifetime(iat: number, exp: number, lifetimeSeconds: number, clock: Clock) {
  const now = Math.floor(clock.now() / 1000)
  if (iat > now + ISSUED_AT_LEEWAY_SECONDS) throw new TokenError('invalid')
  if (exp - iat > lifetimeSeconds) throw new TokenError('invalid')
  // Implied by the line above while `exp` is checked strictly; stated so that it stays true.
  // Stryker disable next-line all: unreachable while jose refuses exp <= now (a mutant here changes nothing).
  if (now - iat > lifetimeSeconds) throw new TokenError('expired')
}
