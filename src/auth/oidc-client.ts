import * as client from 'openid-client'
import type { IdentityProviderConfig } from '../config.js'

/**
 * The relying-party side of OpenID Connect, through openid-client (the one module that imports
 * it): the provider's metadata (discovery), the authorization request (code flow with PKCE S256,
 * state and nonce), and the check of the provider's answer: state, the code exchanged at the token
 * endpoint with our PKCE verifier, and the ID token's signature (against the provider's JWKS, even
 * over TLS: non-repudiation checks on), issuer, audience, authorized party, expiry, issue time and
 * nonce. Every request to the provider is bounded in time.
 */

/** What a provider vouched for in a verified ID token. */
export interface ProviderIdentity {
  /** The `sub` claim. */
  subject: string
  email: string | null
  /** Only a boolean `true` (or the string "true", which some providers send) counts. */
  emailVerified: boolean
  /** A display name (`preferred_username`, then `name`), when the provider gave one. */
  profileName: string | null
}

/** The provider could not be reached (or answered its metadata badly): try again later. */
export class ProviderUnavailableError extends Error {
  override name = 'ProviderUnavailableError'
}

/**
 * The provider's answer was refused: `reason` is a short code (for the client and the audit
 * trail), the message says what failed without echoing what the provider sent.
 */
export class ProviderAnswerRefusedError extends Error {
  override name = 'ProviderAnswerRefusedError'
  constructor(
    readonly reason: 'provider_error' | 'access_denied' | 'invalid_answer',
    message: string,
  ) {
    super(message)
  }
}

export interface AuthorizationRequest {
  redirectUri: string
  state: string
  nonce: string
  codeVerifier: string
}

export interface OidcProviderClient {
  readonly provider: IdentityProviderConfig
  /** The provider's authorization URL for this request (discovers the provider first if needed). */
  authorizationUrl(request: AuthorizationRequest): Promise<URL>
  /**
   * Checks the provider's answer at our callback (`callbackUrl`: the redirect URI with the query
   * the provider sent), exchanges its code and verifies the ID token. Throws
   * ProviderAnswerRefusedError or ProviderUnavailableError.
   */
  verifyAnswer(
    callbackUrl: URL,
    request: Omit<AuthorizationRequest, 'redirectUri'>,
  ): Promise<ProviderIdentity>
}

/** Seconds each request to a provider may take. */
export const PROVIDER_TIMEOUT_SECONDS = 5

export const randomCodeVerifier = () => client.randomPKCECodeVerifier()
export const codeChallengeOf = (verifier: string) => client.calculatePKCECodeChallenge(verifier)

/** What fetch (undici) throws when no answer came, or when the connection broke during the answer's body. */
const NETWORK_FAILURES = new Set(['fetch failed', 'terminated'])

/**
 * Network failures and timeouts (no whole answer), as opposed to an answer we refuse: fetch's
 * `TypeError: fetch failed` (no answer) or `TypeError: terminated` (the connection cut during the
 * body), a `TimeoutError` or `AbortError`, or an error caused by one (the library wraps them in
 * its own errors). Anything else thrown, even a non-Error, is not. Exported for its unit test:
 * some of what it accepts, no fault of today's fetch and openid-client produces.
 */
export function isUnreachable(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return true
  if (error instanceof TypeError && NETWORK_FAILURES.has(error.message)) return true
  const cause = (error as { cause?: unknown }).cause
  return cause !== error && isUnreachable(cause)
}

/** The HTTP status of a provider failing on its side: a 5xx answer that is no OAuth error (which the library reads as such). */
function serverFailureOf(error: unknown): number | undefined {
  const cause = error instanceof Error ? error.cause : undefined
  return cause instanceof Response && cause.status >= 500 ? cause.status : undefined
}

const textClaim = (value: unknown) => (typeof value === 'string' && value.trim() !== '' ? value : null)

function identityOf(claims: client.IDToken): ProviderIdentity {
  return {
    subject: claims.sub,
    email: textClaim(claims.email),
    emailVerified: claims.email_verified === true || claims.email_verified === 'true',
    profileName: textClaim(claims.preferred_username) ?? textClaim(claims.name),
  }
}

export function createOidcProviderClient(
  provider: IdentityProviderConfig,
  timeoutSeconds = PROVIDER_TIMEOUT_SECONDS,
): OidcProviderClient {
  let configuration: Promise<client.Configuration> | undefined
  const issuer = new URL(provider.issuer)

  /** The provider's metadata, fetched once; a failed discovery is tried again by the next request. */
  function discover(): Promise<client.Configuration> {
    configuration ??= client
      .discovery(
        issuer,
        provider.clientId,
        undefined,
        provider.clientSecret === undefined ? client.None() : client.ClientSecretPost(provider.clientSecret),
        {
          timeout: timeoutSeconds,
          execute: [
            client.enableNonRepudiationChecks,
            // The configuration accepts http:// issuers only on this machine (config/identity-providers.ts).
            ...(issuer.protocol === 'http:' ? [client.allowInsecureRequests] : []),
          ],
        },
      )
      .catch((error: unknown) => {
        configuration = undefined
        throw new ProviderUnavailableError(
          `The provider "${provider.id}" could not be reached or described itself badly (${
            error instanceof Error ? error.message : String(error)
          }).`,
        )
      })
    return configuration
  }

  return {
    provider,

    async authorizationUrl({ redirectUri, state, nonce, codeVerifier }) {
      const config = await discover()
      return client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: provider.scopes,
        state,
        nonce,
        code_challenge: await codeChallengeOf(codeVerifier),
        code_challenge_method: 'S256',
      })
    },

    async verifyAnswer(callbackUrl, request) {
      return verifyWith(await discover(), provider, callbackUrl, request)
    },
  }
}

/** The code exchange and every check of the answer and its ID token (then UserInfo, if needed). */
async function verifyWith(
  config: client.Configuration,
  provider: IdentityProviderConfig,
  callbackUrl: URL,
  { state, nonce, codeVerifier }: Omit<AuthorizationRequest, 'redirectUri'>,
): Promise<ProviderIdentity> {
  let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>
  try {
    tokens = await client.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
      expectedNonce: nonce,
      // Stryker disable next-line BooleanLiteral: an expected nonce (always given) already makes the library require an ID token; this says it for the reader.
      idTokenExpected: true,
    })
  } catch (error) {
    throw refusalOf(provider, error)
  }
  const claims = tokens.claims()
  // Stryker disable next-line ConditionalExpression,StringLiteral: the library refuses an answer without an ID token first (test/auth/oidc-client.test.ts), so this never throws.
  if (!claims) throw new ProviderAnswerRefusedError('invalid_answer', 'The provider sent no ID token.')
  // A provider that follows OIDC Core 5.4 to the letter returns the scope's claims (email,
  // profile) from its UserInfo endpoint only, not in the ID token: ask it, for the same subject.
  if (claims.email === undefined && config.serverMetadata().userinfo_endpoint) {
    try {
      const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
      return identityOf({ ...info, ...claims, email: info.email, email_verified: info.email_verified })
    } catch (error) {
      throw refusalOf(provider, error)
    }
  }
  return identityOf(claims)
}

/** The library's message, and its cause's (which names the claim or the check that failed). */
function reasonOf(error: unknown): string {
  // Stryker disable next-line ConditionalExpression: openid-client throws only Errors (its own and TypeErrors as they are, anything else wrapped in a ClientError), so this never returns.
  if (!(error instanceof Error)) return String(error)
  const cause = error.cause instanceof Error ? error.cause.message : undefined
  return cause && cause !== error.message ? `${error.message} (${cause})` : error.message
}

/** What a failed code exchange means for the client: the provider's own error, a refusal, or an outage. */
function refusalOf(provider: IdentityProviderConfig, error: unknown): Error {
  if (error instanceof client.AuthorizationResponseError) {
    // The provider redirected back with an error (the user said no, or the request was refused).
    return error.error === 'access_denied'
      ? new ProviderAnswerRefusedError('access_denied', `The sign-in was cancelled at "${provider.name}".`)
      : new ProviderAnswerRefusedError(
          'provider_error',
          `"${provider.name}" refused the sign-in (${error.error}).`,
        )
  }
  if (error instanceof client.ResponseBodyError)
    return new ProviderAnswerRefusedError(
      'provider_error',
      `"${provider.name}" refused to exchange the code (${error.error}).`,
    )
  if (isUnreachable(error))
    return new ProviderUnavailableError(`The provider "${provider.id}" did not answer in time.`)
  const status = serverFailureOf(error)
  if (status !== undefined)
    return new ProviderUnavailableError(`The provider "${provider.id}" failed on its side (HTTP ${status}).`)
  return new ProviderAnswerRefusedError(
    'invalid_answer',
    `The provider's answer failed verification: ${reasonOf(error)}.`,
  )
}
