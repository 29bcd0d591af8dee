import { createHash, timingSafeEqual } from 'node:crypto'
import { generateOpaqueToken, hashOpaqueToken } from '../auth/opaque-tokens.js'
import {
  codeChallengeOf,
  createOidcProviderClient,
  ProviderAnswerRefusedError,
  ProviderUnavailableError,
  randomCodeVerifier,
  type OidcProviderClient,
} from '../auth/oidc-client.js'
import type { Config, IdentityProviderConfig } from '../config.js'
import type { ExternalLoginPurpose } from '../db/database.js'
import type { Repositories } from '../repositories/index.js'
import type { ExternalLoginRecord } from '../repositories/external-logins.js'
import type { AuditService } from './audit.js'
import { dateOf, type Clock } from './clock.js'
import type { RequestContext } from './context.js'
import { badRequest, invalidInput, notFound, unavailable } from './errors.js'

/** How long a user may take at the provider, from GET /login/{provider} to the callback. */
export const EXTERNAL_LOGIN_LIFETIME_SECONDS = 10 * 60
/** How long the client has to exchange the one-time code the callback hands it. */
export const ONE_TIME_CODE_LIFETIME_SECONDS = 60
/** What a client waits before trying a provider that could not be reached. */
const PROVIDER_RETRY_SECONDS = 30

export type ExternalLoginConfig = Pick<
  Config,
  'identityProviders' | 'publicUrl' | 'corsOrigins' | 'webauthnOrigins' | 'requireEmailVerification'
>

export interface ExternalLoginDependencies {
  config: ExternalLoginConfig
  repos: Repositories
  audit: AuditService
  clock: Clock
}

/** What starting a sign-in (or a link) takes from the client. */
export interface StartRequest {
  /** The client's PKCE challenge: base64url SHA-256 of a verifier only the client knows. */
  codeChallenge: string
  /** Where the browser goes back with the one-time code; the account page when absent. */
  returnTo?: string
  /** The part of the request that carried returnTo (`query` or `body`), for a refusal to name it. */
  sentIn: 'query' | 'body'
}

/**
 * The part of a sign-in with an OpenID Connect provider that talks to the provider: the start
 * (state, nonce and PKCE towards the provider, kept server-side) and the callback (every check of
 * the provider's answer, then a one-time code for the client). The client's own PKCE verifier binds
 * the code to the client that started: a code read from a URL, a log or a browser history is worth
 * nothing without it. The accounts' side (find, link or create) is in external-accounts.ts.
 */
export interface ExternalLogins {
  /** The configured providers, as the sign-in buttons name them. */
  providers(): IdentityProviderConfig[]
  /** The provider of this id, or 404. */
  provider(id: string): IdentityProviderConfig
  /** The provider's authorization URL for a new sign-in (or a link of `userId`'s account). */
  start(
    context: RequestContext,
    providerId: string,
    request: StartRequest,
    link?: { userId: number },
  ): Promise<URL>
  /**
   * The provider's answer at /login/{provider}/callback (`query`: its raw query string): where to
   * send the browser, the client's return URL with `code` (or `error` and `error_description`).
   * An unknown, expired or used state is a 400: there is no client to send back to.
   */
  callback(context: RequestContext, providerId: string, query: string): Promise<URL>
  /**
   * Spends a one-time code with its verifier: what the provider vouched for. A code that is
   * unknown, used, expired, of another provider or purpose, or whose verifier does not match is
   * a 400 (OAuth's invalid_grant), and nothing is spent.
   */
  spendCode(
    context: RequestContext,
    providerId: string,
    code: string,
    codeVerifier: string,
    purpose: ExternalLoginPurpose,
    userId?: number,
  ): Promise<ExternalLoginRecord>
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

const sameText = (a: string, b: string) =>
  // Stryker disable next-line ConditionalExpression: both are S256 challenges of 43 characters (the schemas say so); the length check only keeps timingSafeEqual from throwing.
  Buffer.byteLength(a) === Buffer.byteLength(b) && timingSafeEqual(Buffer.from(a), Buffer.from(b))

/** The origins a browser may be sent back to: ours, the account pages', and the allowed front-ends. */
function allowedOrigins(config: ExternalLoginConfig): Set<string> {
  return new Set([new URL(config.publicUrl).origin, ...config.webauthnOrigins, ...config.corsOrigins])
}

function returnUrlOf(config: ExternalLoginConfig, { returnTo, sentIn }: StartRequest): string {
  if (returnTo === undefined) return `${config.publicUrl}/account`
  const url = URL.canParse(returnTo) ? new URL(returnTo) : undefined
  if (!url || !allowedOrigins(config).has(url.origin) || url.hash !== '')
    throw invalidInput('return_to is not an address this server may send a browser to.', [
      {
        in: sentIn,
        field: 'return_to',
        message: 'must be a URL without a fragment on PUBLIC_URL, WEBAUTHN_ORIGINS or CORS_ORIGINS',
      },
    ])
  return url.href
}

function withParameters(address: string, parameters: Record<string, string>): URL {
  const url = new URL(address)
  for (const [name, value] of Object.entries(parameters)) url.searchParams.set(name, value)
  return url
}

/** What the steps share: the dependencies, a client per provider, our redirect URI. */
interface Flows extends ExternalLoginDependencies {
  clientFor(providerId: string): OidcProviderClient
  redirectUriOf(providerId: string): string
}

export function createExternalLogins(
  deps: ExternalLoginDependencies,
  clientOf: (provider: IdentityProviderConfig) => OidcProviderClient = (provider) =>
    createOidcProviderClient(provider),
): ExternalLogins {
  const { config } = deps
  const clients = new Map(config.identityProviders.map((provider) => [provider.id, clientOf(provider)]))
  const flows: Flows = {
    ...deps,
    clientFor(providerId) {
      const client = clients.get(providerId)
      if (!client) throw notFound(`No identity provider "${providerId}" is configured here.`)
      return client
    },
    redirectUriOf: (providerId) => `${config.publicUrl}/login/${providerId}/callback`,
  }
  return {
    providers: () => config.identityProviders,
    provider: (id) => flows.clientFor(id).provider,
    start: (context, providerId, request, link) => start(flows, context, providerId, request, link),
    callback: (context, providerId, query) => callback(flows, context, providerId, query),
    spendCode: (context, providerId, code, codeVerifier, purpose, userId) =>
      spendCode(flows, context, { providerId, code, codeVerifier, purpose, userId }),
  }
}

async function start(
  flows: Flows,
  context: RequestContext,
  providerId: string,
  request: StartRequest,
  link: { userId: number } | undefined,
): Promise<URL> {
  const { config, repos, audit, clock } = flows
  const client = flows.clientFor(providerId)
  const returnTo = returnUrlOf(config, request)
  const state = generateOpaqueToken()
  const nonce = generateOpaqueToken()
  const codeVerifier = randomCodeVerifier()
  let url: URL
  try {
    url = await client.authorizationUrl({
      redirectUri: flows.redirectUriOf(providerId),
      state,
      nonce,
      codeVerifier,
    })
  } catch (error) {
    // Stryker disable next-line ConditionalExpression: authorizationUrl throws nothing else; a bug there would answer 503 instead of 500.
    if (error instanceof ProviderUnavailableError) throw unavailable(error.message, PROVIDER_RETRY_SECONDS)
    throw error
  }
  const now = dateOf(clock)
  await repos.externalLogins.deleteExpired(now)
  await repos.externalLogins.insert({
    state_hash: sha256(state),
    provider: providerId,
    purpose: link ? 'link' : 'sign_in',
    user_id: link?.userId ?? null,
    nonce,
    code_verifier: codeVerifier,
    client_challenge: request.codeChallenge,
    return_to: returnTo,
    created_at: now,
    expires_at: new Date(now.getTime() + EXTERNAL_LOGIN_LIFETIME_SECONDS * 1000),
  })
  await audit.record(context, {
    event: 'external_login_started',
    outcome: 'success',
    userId: link?.userId,
    details: { provider: providerId, purpose: link ? 'link' : 'sign_in' },
  })
  return url
}

/** Ends a flow whose answer was refused (its state is spent): back to the client with the error. */
async function refuse(
  flows: Flows,
  context: RequestContext,
  flow: ExternalLoginRecord,
  reason: string,
  description: string,
): Promise<URL> {
  await flows.repos.externalLogins.abandon(flow.state_hash)
  await flows.audit.record(context, {
    event: 'external_login_failed',
    outcome: 'failure',
    userId: flow.user_id ?? undefined,
    details: { provider: flow.provider, reason },
  })
  return withParameters(flow.return_to, { error: reason, error_description: description })
}

async function callback(
  flows: Flows,
  context: RequestContext,
  providerId: string,
  query: string,
): Promise<URL> {
  const { repos, audit, clock } = flows
  const client = flows.clientFor(providerId)
  const state = new URLSearchParams(query).get('state')
  const flow = state ? await repos.externalLogins.findPending(sha256(state), dateOf(clock)) : undefined
  if (!state || !flow || flow.provider !== providerId) {
    await audit.record(context, {
      event: 'external_login_failed',
      outcome: 'failure',
      details: { provider: providerId, reason: 'unknown_state' },
    })
    throw badRequest(
      'This sign-in is unknown, expired or already finished (its state does not match one this server started): start again.',
    )
  }
  let identity
  try {
    identity = await client.verifyAnswer(new URL(`${flows.redirectUriOf(providerId)}?${query}`), {
      state,
      nonce: flow.nonce!,
      codeVerifier: flow.code_verifier!,
    })
  } catch (error) {
    if (error instanceof ProviderAnswerRefusedError)
      return refuse(flows, context, flow, error.reason, error.message)
    // Stryker disable next-line ConditionalExpression: verifyAnswer throws nothing else (oidc-client.ts turns every failure into one of the two); a bug there would send the client back with temporarily_unavailable instead of a 500.
    if (error instanceof ProviderUnavailableError)
      return refuse(flows, context, flow, 'temporarily_unavailable', error.message)
    throw error
  }
  const code = generateOpaqueToken()
  const expiresAt = new Date(dateOf(clock).getTime() + ONE_TIME_CODE_LIFETIME_SECONDS * 1000)
  // Of two callbacks with one state (a reload, a replay), only the first gets a code.
  if (!(await repos.externalLogins.vouch(flow.state_hash, identity, hashOpaqueToken(code), expiresAt)))
    throw badRequest('This sign-in is already finished: start again.')
  return withParameters(flow.return_to, { code, provider: providerId })
}

async function spendCode(
  flows: Flows,
  context: RequestContext,
  asked: {
    providerId: string
    code: string
    codeVerifier: string
    purpose: ExternalLoginPurpose
    userId?: number
  },
): Promise<ExternalLoginRecord> {
  const { repos, audit, clock } = flows
  flows.clientFor(asked.providerId)
  const codeHash = hashOpaqueToken(asked.code)
  const flow = await repos.externalLogins.findByCode(codeHash)
  const matches =
    flow !== undefined &&
    flow.provider === asked.providerId &&
    // Stryker disable next-line ConditionalExpression: a flow is a link exactly when it has a user_id (start) and the callers give a userId exactly for links, so the user_id comparison below refuses a code of the other purpose as well.
    flow.purpose === asked.purpose &&
    flow.user_id === (asked.userId ?? null) &&
    sameText(await codeChallengeOf(asked.codeVerifier), flow.client_challenge)
  if (!matches || !(await repos.externalLogins.spendCode(codeHash, dateOf(clock)))) {
    await audit.record(context, {
      event: 'external_login_failed',
      outcome: 'failure',
      userId: asked.userId ?? flow?.user_id ?? undefined,
      details: { provider: asked.providerId, reason: flow?.used_at ? 'code_reused' : 'code' },
    })
    throw badRequest(
      'The code is unknown, used, expired, or was not issued to this client (the code_verifier does not match its code_challenge): sign in again.',
    )
  }
  return flow
}
