import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { contextOf } from '../../http/context.js'
import { noStore } from '../../http/no-store.js'
import type { TypedApp } from '../../http/typed-app.js'
import {
  AuthorizationRedirect,
  CodeExchange,
  LinkedIdentity,
  LinkedIdentityList,
  LinkRequest,
  ProviderParams,
} from '../../schemas/identities.js'
import { reauthenticationResponse } from '../../schemas/mfa.js'
import { problemResponses } from '../../schemas/problem.js'
import type { IdentityView } from '../../services/external-identities.js'

const identityJson = (identity: IdentityView) => ({
  ...identity,
  created_at: identity.created_at.toISOString(),
  last_used_at: identity.last_used_at?.toISOString() ?? null,
})

/** The caller's identities at OpenID Connect providers: list, link, unlink; registered authenticated. */
const identityRoutes: FastifyPluginAsyncTypebox = async (app) => {
  registerList(app)
  registerLink(app)
  registerUnlink(app)
}

function registerList(app: TypedApp) {
  app.get(
    '/users/me/identities',
    {
      schema: {
        tags: ['identities'],
        summary: 'Your linked identity providers',
        response: { 200: LinkedIdentityList },
      },
    },
    async (request, reply) => {
      const identities = await app.externalIdentities.list(contextOf(request))
      reply.header('cache-control', 'no-store')
      return { items: identities.map(identityJson) }
    },
  )
}

function registerLink(app: TypedApp) {
  app.post(
    '/users/me/identities/:provider/authorization',
    {
      schema: {
        tags: ['identities'],
        summary: 'Start linking an identity provider to your account',
        description:
          'Needs your `password` (or a second factor proved in the last 5 minutes). Answers the provider’s ' +
          'sign-in address: send the browser there. It comes back to `return_to` with `?code=…&provider=…`; ' +
          'finish with POST /users/me/identities/{provider} and the same `code_verifier` whose ' +
          '`code_challenge` you sent here. 409 when an identity of this provider is linked already.',
        params: ProviderParams,
        body: LinkRequest,
        response: {
          200: AuthorizationRedirect,
          ...reauthenticationResponse,
          ...problemResponses(404, 409, 415, 422, 503),
        },
      },
    },
    async (request, reply) => {
      const { code_challenge, return_to, password } = request.body
      const url = await app.externalIdentities.startLink(
        contextOf(request),
        request.params.provider,
        { codeChallenge: code_challenge, returnTo: return_to, sentIn: 'body' },
        password,
      )
      noStore(reply)
      return { authorization_url: url.href }
    },
  )
  app.post(
    '/users/me/identities/:provider',
    {
      schema: {
        tags: ['identities'],
        summary: 'Finish linking an identity provider',
        description:
          'The one-time code of the link’s callback, with its `code_verifier`. The provider’s identity then ' +
          'signs in to your account. 400 for a code that is unknown, used, expired, not from your link or whose ' +
          'verifier does not match; 409 when that identity is linked to another account.',
        params: ProviderParams,
        body: CodeExchange,
        response: { 201: LinkedIdentity, ...problemResponses(400, 404, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      const { code, code_verifier } = request.body
      const identity = await app.externalIdentities.completeLink(
        contextOf(request),
        request.params.provider,
        code,
        code_verifier,
      )
      return reply.code(201).send(identityJson(identity))
    },
  )
}

function registerUnlink(app: TypedApp) {
  app.delete(
    '/users/me/identities/:provider',
    {
      schema: {
        tags: ['identities'],
        summary: 'Unlink an identity provider',
        description:
          'It no longer signs in to your account. 409 when it is the last way to log in (no password, no ' +
          'passkey, no other provider): set a password through password recovery, or add a passkey, first.',
        params: ProviderParams,
        response: { 204: Type.Null({ description: 'Unlinked' }), ...problemResponses(404, 409, 422) },
      },
    },
    async (request, reply) => {
      await app.externalIdentities.unlink(contextOf(request), request.params.provider)
      return reply.code(204).send(null)
    },
  )
}

export default identityRoutes
