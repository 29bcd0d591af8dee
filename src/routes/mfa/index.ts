import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Config } from '../../config.js'
import { authenticated, beforeMfaEnrolment } from '../../http/authenticated.js'
import { contextOf } from '../../http/context.js'
import type { TypedApp } from '../../http/typed-app.js'
import { TokenResponse } from '../../schemas/auth.js'
import {
  MfaLoginRequest,
  Reauthentication,
  reauthenticationResponse,
  RecoveryCodes,
  SecondFactorStatus,
  TotpConfirmation,
  TotpEnrolment,
} from '../../schemas/mfa.js'
import { problemResponses } from '../../schemas/problem.js'
import {
  registerAdminReset,
  registerMfaPasskeyOptions,
  registerReauthentication,
} from './reauthentication.js'
import { noStore } from '../../http/no-store.js'
import { proofOf } from './shared.js'

/**
 * Second factors: the second step of a login (public, with its mfa_token), and the caller's own
 * factors and re-authentication (authenticated).
 */
const mfaRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app) => {
  registerMfaLogin(app)
  registerMfaPasskeyOptions(app)
  await app.register(
    authenticated(async (api) => {
      registerStatus(api)
      registerTotpEnrolment(api)
      registerTotpConfirmation(api)
      registerTotpRemoval(api)
      registerRecoveryCodes(api)
      registerReauthentication(api)
      registerAdminReset(api)
    }),
  )
}

function registerMfaLogin(app: TypedApp) {
  app.post(
    '/login/mfa',
    {
      schema: {
        tags: ['auth'],
        summary: 'Finish a login with a second factor',
        description:
          'After POST /login answered 403 `mfa_required`: the `mfa_token` of that answer with the current TOTP `code` ' +
          'of the authenticator app, one `recovery_code`, or a `passkey` assertion (ask POST /login/mfa/passkey-options ' +
          'for its options first). Answers the token pair, as POST /login does. The ' +
          'mfa_token works once, for 5 minutes, from the client (User-Agent) that logged in, and only while the ' +
          'password is the one it was issued for. A wrong code is 401 and leaves the mfa_token usable; every try ' +
          'counts against the account’s attempt limit (429 past it). An mfa_token that cannot be used is 401: log in again.',
        body: MfaLoginRequest,
        response: { 200: TokenResponse, ...problemResponses(401, 415, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body
      const pair = await app.mfaLogin.complete(contextOf(request), body.mfa_token, proofOf(body))
      noStore(reply)
      return pair
    },
  )
}

function registerStatus(api: TypedApp) {
  api.get(
    '/mfa',
    {
      ...beforeMfaEnrolment,
      schema: {
        tags: ['mfa'],
        summary: 'Your second factors',
        description: 'Which factors are active and how many recovery codes are left; never a secret.',
        response: { 200: SecondFactorStatus },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      return api.secondFactors.status(contextOf(request))
    },
  )
}

function registerTotpEnrolment(api: TypedApp) {
  api.post(
    '/mfa/totp',
    {
      ...beforeMfaEnrolment,
      schema: {
        tags: ['mfa'],
        summary: 'Start a TOTP enrolment',
        description:
          'A new secret for an authenticator app, as text, otpauth:// link and QR code: shown in this answer only. ' +
          'The enrolment stays pending (logins do not ask for it) until POST /mfa/totp/confirm; starting again ' +
          'replaces a pending one. 409 when TOTP is already active.',
        response: { 200: TotpEnrolment, ...problemResponses(409) },
      },
    },
    async (request, reply) => {
      const enrolment = await api.secondFactors.startTotpEnrolment(contextOf(request))
      noStore(reply)
      return enrolment
    },
  )
}

function registerTotpConfirmation(api: TypedApp) {
  api.post(
    '/mfa/totp/confirm',
    {
      ...beforeMfaEnrolment,
      schema: {
        tags: ['mfa'],
        summary: 'Activate TOTP with a code of the app',
        description:
          'A current code of the pending enrolment activates it and answers 10 recovery codes, shown this once. ' +
          'A wrong code is 422 and the enrolment stays pending; tries count against the attempt limit (429). ' +
          '409 when there is no pending enrolment.',
        body: TotpConfirmation,
        response: { 200: RecoveryCodes, ...problemResponses(409, 415, 422) },
      },
    },
    async (request, reply) => {
      const codes = await api.secondFactors.confirmTotp(contextOf(request), request.body.code)
      noStore(reply)
      return { recovery_codes: codes }
    },
  )
}

function registerTotpRemoval(api: TypedApp) {
  api.delete(
    '/mfa/totp',
    {
      schema: {
        tags: ['mfa'],
        summary: 'Disable TOTP',
        description:
          'Needs the current password, or a second factor proved in the last 5 minutes (POST /mfa/reauthenticate). ' +
          'Removes TOTP (active or pending); when it was the last factor, the recovery codes too, and logins need ' +
          'the password alone again. 404 when there is no TOTP factor; 409 when it is the last factor of an admin ' +
          'who must keep one (REQUIRE_MFA_FOR_ADMINS).',
        body: Reauthentication,
        response: {
          204: Type.Null({ description: 'Disabled' }),
          ...reauthenticationResponse,
          ...problemResponses(404, 409, 415, 422),
        },
      },
    },
    async (request, reply) => {
      await api.secondFactors.disableTotp(contextOf(request), request.body.password)
      return reply.code(204).send(null)
    },
  )
}

function registerRecoveryCodes(api: TypedApp) {
  api.post(
    '/mfa/recovery-codes',
    {
      schema: {
        tags: ['mfa'],
        summary: 'New recovery codes',
        description:
          'Needs the current password, or a second factor proved in the last 5 minutes (POST /mfa/reauthenticate). ' +
          'Answers 10 new codes, shown this once; every earlier code stops working. 409 when the account has no ' +
          'second factor (TOTP or a passkey).',
        body: Reauthentication,
        response: { 200: RecoveryCodes, ...reauthenticationResponse, ...problemResponses(409, 415, 422) },
      },
    },
    async (request, reply) => {
      const codes = await api.secondFactors.regenerateRecoveryCodes(contextOf(request), request.body.password)
      noStore(reply)
      return { recovery_codes: codes }
    },
  )
}

export default mfaRoutes
