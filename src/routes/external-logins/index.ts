import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Config } from '../../config.js'
import { contextOf } from '../../http/context.js'
import { noStore } from '../../http/no-store.js'
import type { TypedApp } from '../../http/typed-app.js'
import { TokenResponse } from '../../schemas/auth.js'
import {
  CallbackQuery,
  CodeExchange,
  ProviderList,
  ProviderParams,
  StartQuery,
} from '../../schemas/identities.js'
import { problemResponses } from '../../schemas/problem.js'

const redirect = (description: string) =>
  Type.Null({ description: `${description} (the address is in the Location header)` })

/**
 * Sign-in with an OpenID Connect provider (OIDC_PROVIDERS), in three steps that never put a token
 * in a URL: the browser is sent to the provider (GET /login/{provider}), comes back to the callback,
 * which verifies the provider's answer and sends the browser on to the client with a one-time code;
 * the client exchanges that code, with its PKCE verifier, for the token pair (POST).
 */
const externalLoginRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app) => {
  registerProviders(app)
  registerStart(app)
  registerCallback(app)
  registerExchange(app)
}

function registerProviders(app: TypedApp) {
  app.get(
    '/login/providers',
    {
      schema: {
        tags: ['auth'],
        summary: 'The identity providers you can sign in with',
        description:
          'The providers of OIDC_PROVIDERS, for "Sign in with …" buttons; empty when none is configured.',
        response: { 200: ProviderList },
      },
    },
    async () => ({
      providers: app.externalLogins
        .providers()
        .map(({ id, name }) => ({ id, name, login_url: `/login/${id}` })),
    }),
  )
}

function registerStart(app: TypedApp) {
  app.get(
    '/login/:provider',
    {
      schema: {
        tags: ['auth'],
        summary: 'Sign in with an identity provider',
        description:
          'Open it in the browser (a top-level navigation, not fetch): it redirects to the provider with an ' +
          'authorization-code request (PKCE S256, state and nonce, kept by this server). First make a random ' +
          '`code_verifier` (43–128 characters of `A-Z a-z 0-9 - . _ ~`), keep it, and send its ' +
          '`code_challenge` = base64url(SHA-256(code_verifier)). After the sign-in the browser comes back to ' +
          '`return_to` with `?code=…&provider=…`: exchange it at POST /login/{provider}/token. ' +
          '404 for a provider that is not configured; 503 when the provider cannot be reached.',
        params: ProviderParams,
        querystring: StartQuery,
        response: { 302: redirect("To the provider's sign-in page"), ...problemResponses(404, 422, 503) },
      },
    },
    async (request, reply) => {
      const { code_challenge, return_to } = request.query
      const url = await app.externalLogins.start(contextOf(request), request.params.provider, {
        codeChallenge: code_challenge,
        returnTo: return_to,
        sentIn: 'query',
      })
      noStore(reply)
      return reply.redirect(url.href, 302)
    },
  )
}

function registerCallback(app: TypedApp) {
  app.get(
    '/login/:provider/callback',
    {
      schema: {
        tags: ['auth'],
        summary: 'Where the provider sends the browser back (its redirect URI)',
        description:
          'Register `PUBLIC_URL/login/{provider}/callback` at the provider. The answer is verified (state, the ' +
          'code exchanged with PKCE, and the ID token: signature with the provider’s published keys, issuer, ' +
          'audience, expiry, nonce); the browser then goes to the `return_to` of the sign-in with ' +
          '`?code=…&provider=…`, or with `?error=…&error_description=…` when the provider said no or its ' +
          'answer was refused. 400 when the state is missing, unknown, expired or used: there is no sign-in ' +
          'to go back to.',
        params: ProviderParams,
        querystring: CallbackQuery,
        response: { 303: redirect('Back to the client'), ...problemResponses(400, 404) },
      },
    },
    async (request, reply) => {
      const question = request.url.indexOf('?')
      const query = question === -1 ? '' : request.url.slice(question + 1)
      const url = await app.externalLogins.callback(contextOf(request), request.params.provider, query)
      noStore(reply)
      // The one-time code must not travel on to the pages the client's page links to.
      reply.header('referrer-policy', 'no-referrer')
      return reply.redirect(url.href, 303)
    },
  )
}

function registerExchange(app: TypedApp) {
  app.post(
    '/login/:provider/token',
    {
      preHandler: [app.limitAttempts('external_login', () => undefined)],
      schema: {
        tags: ['auth'],
        summary: 'Exchange the one-time code of a provider sign-in for tokens',
        description:
          'Answers the token pair, as POST /login does; the session’s `amr` is ["fed"]. The account is the one ' +
          'the provider’s identity is linked to; else the account of the same email when both the provider ' +
          'and this server say that email is verified (the identity is then linked); else a new account ' +
          'without a password when the provider verified the email. 400 for a code that is unknown, used, ' +
          'expired or whose `code_verifier` does not match; 403 when the account is deactivated, has a second ' +
          'factor, or the provider has not verified the email; 409 when an account has this email but one ' +
          'side has not verified it (log in to it, then link the provider).',
        params: ProviderParams,
        body: CodeExchange,
        response: { 200: TokenResponse, ...problemResponses(400, 403, 404, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      const { code, code_verifier } = request.body
      const pair = await app.externalAccounts.signIn(
        contextOf(request),
        request.params.provider,
        code,
        code_verifier,
      )
      noStore(reply)
      return pair
    },
  )
}

export default externalLoginRoutes
