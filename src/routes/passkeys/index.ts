import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '../../auth/webauthn.js'
import type { Config } from '../../config.js'
import { authenticated, beforeMfaEnrolment } from '../../http/authenticated.js'
import { contextOf } from '../../http/context.js'
import { noStore } from '../../http/no-store.js'
import type { TypedApp } from '../../http/typed-app.js'
import { TokenResponse } from '../../schemas/auth.js'
import { Reauthentication, reauthenticationResponse } from '../../schemas/mfa.js'
import {
  AuthenticationOptions,
  PasskeyIdParams,
  PasskeyList,
  PasskeyLoginRequest,
  PasskeyPublic,
  PasskeyRegistered,
  PasskeyRegistrationRequest,
  PasskeyRename,
  RegistrationOptions,
} from '../../schemas/passkeys.js'
import { problemResponses } from '../../schemas/problem.js'
import type { PasskeyView } from '../../services/passkeys.js'

/** A passkey as JSON: its times as ISO 8601 text. */
const passkeyJson = (passkey: PasskeyView) => ({
  ...passkey,
  created_at: passkey.created_at.toISOString(),
  last_used_at: passkey.last_used_at?.toISOString() ?? null,
})

/**
 * Passkeys (WebAuthn): the password-less login (public) and the caller's own passkeys
 * (authenticated). The JSON is WebAuthn's own serialisation, as browsers' PublicKeyCredential
 * toJSON() and @simplewebauthn/browser write it.
 */
const passkeyRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app) => {
  registerPasskeyLogin(app)
  await app.register(
    authenticated(async (api) => {
      registerRegistration(api)
      registerManagement(api)
    }),
  )
}

function registerPasskeyLogin(app: TypedApp) {
  app.post(
    '/login/passkey/options',
    {
      schema: {
        tags: ['auth'],
        summary: 'Start a password-less login with a passkey',
        description:
          'Options for navigator.credentials.get() with no account named: the browser offers the passkeys it holds ' +
          'for this site, and the authenticator verifies its user (PIN or biometric). The challenge is valid for 5 ' +
          'minutes, once. Send the answer to POST /login/passkey.',
        response: { 200: AuthenticationOptions },
      },
    },
    async (request, reply) => {
      const options = await app.passkeyLogin.options(contextOf(request))
      noStore(reply)
      return options
    },
  )
  app.post(
    '/login/passkey',
    {
      schema: {
        tags: ['auth'],
        summary: 'Log in with a passkey',
        description:
          'The answer of navigator.credentials.get() to the options of POST /login/passkey/options, as `response`. ' +
          'Answers the token pair, as POST /login does; the session’s `amr` is ["hwk", "user", "mfa"] (a passkey ' +
          'with user verification is two factors, so no second factor is asked). 401 for an answer that is not ' +
          'accepted (unknown passkey, challenge unknown, used or expired, wrong origin, no user verification, ' +
          'a signature counter that went back); tries count against the attempt limit (429).',
        body: PasskeyLoginRequest,
        response: { 200: TokenResponse, ...problemResponses(401, 403, 415, 422) },
      },
    },
    async (request, reply) => {
      const answer = request.body.response as AuthenticationResponseJSON
      const pair = await app.passkeyLogin.complete(contextOf(request), answer)
      noStore(reply)
      return pair
    },
  )
}

function registerRegistration(api: TypedApp) {
  api.post(
    '/passkeys/registration-options',
    {
      ...beforeMfaEnrolment,
      schema: {
        tags: ['passkeys'],
        summary: 'Start registering a passkey',
        description:
          'Options for navigator.credentials.create(): a discoverable credential with user verification, for this ' +
          'account, excluding the passkeys it has. The challenge is valid for 5 minutes, once. Send the answer to ' +
          'POST /passkeys.',
        response: { 200: RegistrationOptions },
      },
    },
    async (request, reply) => {
      const options = await api.passkeys.registrationOptions(contextOf(request))
      noStore(reply)
      return options
    },
  )
  api.post(
    '/passkeys',
    {
      ...beforeMfaEnrolment,
      schema: {
        tags: ['passkeys'],
        summary: 'Register a passkey',
        description:
          'The answer of navigator.credentials.create() to the options of POST /passkeys/registration-options, as ' +
          '`response`, with an optional `name`. The attestation is verified (challenge, origin, RP ID, user ' +
          'verification). The passkey then logs in alone (POST /login/passkey) and is a second factor of password ' +
          'logins. When it is the account’s first second factor, the answer carries 10 recovery codes, shown this ' +
          'once. 422 for an answer that is not accepted; 409 for a passkey already registered.',
        body: PasskeyRegistrationRequest,
        response: { 201: PasskeyRegistered, ...problemResponses(409, 415, 422) },
      },
    },
    async (request, reply) => {
      const { response, name } = request.body
      const registered = await api.passkeys.register(
        contextOf(request),
        response as RegistrationResponseJSON,
        name?.trim(),
      )
      noStore(reply)
      return reply.code(201).send({ ...registered, passkey: passkeyJson(registered.passkey) })
    },
  )
}

function registerManagement(api: TypedApp) {
  api.get(
    '/passkeys',
    {
      ...beforeMfaEnrolment,
      schema: {
        tags: ['passkeys'],
        summary: 'Your passkeys',
        description: 'Oldest first; never a key or a credential id.',
        response: { 200: PasskeyList },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      return { items: (await api.passkeys.list(contextOf(request))).map(passkeyJson) }
    },
  )
  api.patch(
    '/passkeys/:id',
    {
      schema: {
        tags: ['passkeys'],
        summary: 'Rename a passkey',
        params: PasskeyIdParams,
        body: PasskeyRename,
        response: { 200: PasskeyPublic, ...problemResponses(404, 415, 422) },
      },
    },
    async (request) =>
      passkeyJson(await api.passkeys.rename(contextOf(request), request.params.id, request.body.name.trim())),
  )
  api.delete(
    '/passkeys/:id',
    {
      schema: {
        tags: ['passkeys'],
        summary: 'Remove a passkey',
        description:
          'Send `{}`, or `{"password": …}`: removing your last passkey needs the current `password`, or a second ' +
          'factor proved in the last 5 ' +
          'minutes (POST /mfa/reauthenticate); when it was your last second factor, the recovery codes go too. ' +
          '404 for a passkey that is not yours; 409 when it is the last factor of an admin who must keep one ' +
          '(REQUIRE_MFA_FOR_ADMINS).',
        params: PasskeyIdParams,
        body: Reauthentication,
        response: {
          204: Type.Null({ description: 'Removed' }),
          ...reauthenticationResponse,
          ...problemResponses(404, 409, 415, 422),
        },
      },
    },
    async (request, reply) => {
      await api.passkeys.remove(contextOf(request), request.params.id, request.body.password)
      return reply.code(204).send(null)
    },
  )
}

export default passkeyRoutes
