/** Signing in with the test OpenID provider through our API, step by step, as a client would. */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { TestIdentityProvider } from '../../support/oidc-provider.js'

/** PUBLIC_URL of the test configuration, where the provider sends the browser back. */
export const PUBLIC_URL = 'http://127.0.0.1:8000'
export const PROVIDER = 'test'
export const callbackOf = (provider: string) => `${PUBLIC_URL}/login/${provider}/callback`

/** A client's PKCE pair (RFC 7636): the verifier it keeps, the challenge it sends. */
export function pkcePair() {
  const verifier = randomBytes(32).toString('base64url')
  const challenge = createHash('sha256').update(verifier).digest('base64url')
  return { verifier, challenge }
}

export interface StartedSignIn {
  verifier: string
  /** The provider's authorization URL our server redirected to. */
  authorizationUrl: URL
}

/** GET /login/{provider}: the redirect to the provider, with the client's PKCE pair. */
export async function startSignIn(
  app: FastifyInstance,
  options: { provider?: string; returnTo?: string } = {},
): Promise<StartedSignIn> {
  const { verifier, challenge } = pkcePair()
  const query = new URLSearchParams({ code_challenge: challenge, code_challenge_method: 'S256' })
  if (options.returnTo) query.set('return_to', options.returnTo)
  const response = await app.inject({ method: 'GET', url: `/login/${options.provider ?? PROVIDER}?${query}` })
  assert.equal(response.statusCode, 302, response.body)
  return { verifier, authorizationUrl: new URL(response.headers.location as string) }
}

/** Our callback, as the browser reaches it: where it sends the browser next. */
export async function callback(app: FastifyInstance, address: URL) {
  const response = await app.inject({ method: 'GET', url: `${address.pathname}${address.search}` })
  return response
}

/** The provider's answer at our callback, then the return address it sends the browser to. */
export async function returnAfter(app: FastifyInstance, address: URL): Promise<URL> {
  const response = await callback(app, address)
  assert.equal(response.statusCode, 303, response.body)
  return new URL(response.headers.location as string)
}

export const exchange = (
  app: FastifyInstance,
  body: { code: string; code_verifier: string },
  provider = PROVIDER,
) => app.inject({ method: 'POST', url: `/login/${provider}/token`, payload: body })

/** A whole sign-in as `sub`: start, provider, callback; the one-time code and its verifier. */
export async function codeFor(
  app: FastifyInstance,
  idp: TestIdentityProvider,
  sub: string,
  options: { provider?: string } = {},
) {
  const started = await startSignIn(app, options)
  const back = await returnAfter(app, await idp.signIn(started.authorizationUrl.href, sub))
  const code = back.searchParams.get('code')
  assert.ok(code, `the callback sent the browser back without a code: ${back.href}`)
  return { code, verifier: started.verifier, back }
}

/** A whole sign-in as `sub`, up to our token pair (or the refusal). */
export async function signInAs(app: FastifyInstance, idp: TestIdentityProvider, sub: string) {
  const { code, verifier } = await codeFor(app, idp, sub)
  return exchange(app, { code, code_verifier: verifier })
}

/**
 * An identity stored for a user by its row, as a sign-in that made or linked it would leave it:
 * for states no request makes directly (a provider no longer configured, a link of an account
 * that cannot re-authenticate, an unverified account already linked).
 */
export async function storeIdentity(
  app: FastifyInstance,
  identity: { userId: number; subject: string; provider?: string; createdAt?: Date },
) {
  await app.db
    .insertInto('external_identities')
    .values({
      user_id: identity.userId,
      provider: identity.provider ?? PROVIDER,
      subject: identity.subject,
      email: null,
      created_at: identity.createdAt ?? new Date(),
      last_used_at: null,
    })
    .execute()
}

export async function identityRows(app: FastifyInstance, userId?: number) {
  return app.db
    .selectFrom('external_identities')
    .selectAll()
    .$if(userId !== undefined, (qb) => qb.where('user_id', '=', userId!))
    .orderBy('id')
    .execute()
}

export async function userByEmail(app: FastifyInstance, email: string) {
  return app.db.selectFrom('users').selectAll().where('email', '=', email.toLowerCase()).executeTakeFirst()
}
