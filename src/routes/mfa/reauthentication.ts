import { Type } from 'typebox'
import { contextOf } from '../../http/context.js'
import type { TypedApp } from '../../http/typed-app.js'
import { IdParams } from '../../schemas/common.js'
import { MfaTokenRequest, Reauthenticated, ReauthenticationRequest } from '../../schemas/mfa.js'
import { AuthenticationOptions } from '../../schemas/passkeys.js'
import { problemResponses } from '../../schemas/problem.js'
import { noStore } from '../../http/no-store.js'
import { proofOf } from './shared.js'

/** Passkey options for the second step of a login, re-authentication, and an admin's reset. */

export function registerMfaPasskeyOptions(app: TypedApp) {
  app.post(
    '/login/mfa/passkey-options',
    {
      schema: {
        tags: ['auth'],
        summary: 'Passkey options for the second step of a login',
        description:
          'With the `mfa_token` of a 403 `mfa_required` whose factors include `passkey`: options for ' +
          'navigator.credentials.get() listing the account’s passkeys, with a challenge valid for 5 minutes, once. ' +
          'Send the browser’s answer as `passkey` to POST /login/mfa. Spends nothing: the mfa_token stays usable. ' +
          '409 when the account has no passkey.',
        body: MfaTokenRequest,
        response: { 200: AuthenticationOptions, ...problemResponses(401, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      const options = await app.mfaLogin.passkeyOptions(contextOf(request), request.body.mfa_token)
      noStore(reply)
      return options
    },
  )
}

export function registerReauthentication(api: TypedApp) {
  api.post(
    '/mfa/reauthenticate',
    {
      schema: {
        tags: ['mfa'],
        summary: 'Re-authenticate with a second factor',
        description:
          'Proves a second factor in this session: for the next 5 minutes, the changes that need re-authentication ' +
          '(disabling TOTP, new recovery codes, removing the last passkey, changing the email) accept no password. ' +
          'A wrong factor is 422 and counts against the attempt limit (429).',
        body: ReauthenticationRequest,
        response: { 200: Reauthenticated, ...problemResponses(415, 422) },
      },
    },
    async (request) => api.reauthentication.withSecondFactor(contextOf(request), proofOf(request.body)),
  )
  api.post(
    '/mfa/reauthenticate/passkey-options',
    {
      schema: {
        tags: ['mfa'],
        summary: 'Passkey options to re-authenticate',
        description:
          'Options for navigator.credentials.get() listing your passkeys; send the answer as `passkey` to ' +
          'POST /mfa/reauthenticate. 409 when you have no passkey.',
        response: { 200: AuthenticationOptions, ...problemResponses(409) },
      },
    },
    async (request, reply) => {
      const options = await api.reauthentication.passkeyOptions(contextOf(request))
      noStore(reply)
      return options
    },
  )
}

export function registerAdminReset(api: TypedApp) {
  api.delete(
    '/users/:id/mfa',
    {
      preHandler: [api.requireRole('admin')],
      schema: {
        tags: ['users'],
        summary: 'Reset a user’s second factors (admin)',
        description:
          'For a user who lost their authenticator and recovery codes: removes their TOTP, passkeys and recovery ' +
          'codes, ends all their sessions and emails them. They log in with the password alone again and enrol ' +
          'anew. Recorded in the audit trail. 404 for an unknown user; 409 for your own account.',
        params: IdParams,
        response: { 204: Type.Null({ description: 'Reset' }), ...problemResponses(403, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      await api.secondFactors.resetFactors(contextOf(request), request.params.id)
      return reply.code(204).send(null)
    },
  )
}
