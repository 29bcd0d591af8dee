/** Requests and database reads shared by the passkey tests: a software authenticator plays the browser. */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server'
import {
  createSoftwareAuthenticator,
  type AssertionOverrides,
  type CeremonyOverrides,
  type SoftwareAuthenticator,
  type SoftwareAuthenticatorOptions,
} from '../../support/software-authenticator.js'
import { eventsOf, UA, userWithToken, type TestUser } from '../mfa/support.js'

/** The origin and RP ID the test configuration gets: PUBLIC_URL's default host is an IP, so localhost. */
export const RP_ID = 'localhost'
export const ORIGIN = 'http://localhost:8000'
/** Every challenge (and the options' timeout) lives 5 minutes. */
export const CHALLENGE_LIFETIME_MS = 5 * 60_000

export const authenticatorFor = (
  options: Partial<SoftwareAuthenticatorOptions> = {},
): SoftwareAuthenticator => createSoftwareAuthenticator({ origin: ORIGIN, ...options })

type Headers = Record<string, string>

/** A passkey as the API shows it. */
export interface PasskeyBody {
  id: number
  name: string
  created_at: string
  last_used_at: string | null
  device_type: 'singleDevice' | 'multiDevice'
  backed_up: boolean
}

export interface TokenPairBody {
  access_token: string
  refresh_token: string
  token_type: string
}

export async function registrationOptions(app: FastifyInstance, headers: Headers) {
  const response = await app.inject({ method: 'POST', url: '/passkeys/registration-options', headers })
  assert.equal(response.statusCode, 200, response.body)
  return response.json<PublicKeyCredentialCreationOptionsJSON>()
}

export function postPasskey(
  app: FastifyInstance,
  headers: Headers,
  answer: RegistrationResponseJSON,
  name?: string,
) {
  return app.inject({
    method: 'POST',
    url: '/passkeys',
    headers,
    payload: { response: answer, ...(name === undefined ? {} : { name }) },
  })
}

/** Registers a passkey of `authenticator` for the caller: the POST /passkeys response. */
export async function registerPasskey(
  app: FastifyInstance,
  headers: Headers,
  authenticator: SoftwareAuthenticator,
  options: { name?: string; overrides?: CeremonyOverrides } = {},
) {
  const creation = await registrationOptions(app, headers)
  const answer = await authenticator.register(creation, options.overrides)
  return postPasskey(app, headers, answer, options.name)
}

/** A new user (logged in with the password) with one passkey: its body, the recovery codes it brought. */
export async function userWithPasskey(
  app: FastifyInstance,
  options: { authenticator?: SoftwareAuthenticator; name?: string } = {},
) {
  const user = await userWithToken(app)
  const authenticator = options.authenticator ?? authenticatorFor()
  const response = await registerPasskey(app, user.headers, authenticator, { name: options.name })
  assert.equal(response.statusCode, 201, response.body)
  const body = response.json<{ passkey: PasskeyBody; recovery_codes?: string[] }>()
  return { user, authenticator, passkey: body.passkey, recoveryCodes: body.recovery_codes ?? [] }
}

/** Another passkey for a user who has one: a second authenticator (one holds one passkey per account). */
export async function addPasskey(app: FastifyInstance, user: TestUser, name?: string) {
  const authenticator = authenticatorFor()
  const response = await registerPasskey(app, user.headers, authenticator, { name })
  assert.equal(response.statusCode, 201, response.body)
  return { authenticator, passkey: response.json<{ passkey: PasskeyBody }>().passkey }
}

export async function passkeyLoginOptions(app: FastifyInstance) {
  const response = await app.inject({
    method: 'POST',
    url: '/login/passkey/options',
    headers: { 'user-agent': UA },
  })
  assert.equal(response.statusCode, 200, response.body)
  return response.json<PublicKeyCredentialRequestOptionsJSON>()
}

export function postPasskeyLogin(
  app: FastifyInstance,
  answer: AuthenticationResponseJSON,
  extra: { remoteAddress?: string } = {},
) {
  return app.inject({
    method: 'POST',
    url: '/login/passkey',
    headers: { 'user-agent': UA },
    payload: { response: answer },
    ...extra,
  })
}

/** A password-less login with `authenticator`: the POST /login/passkey response. */
export async function passkeyLogin(
  app: FastifyInstance,
  authenticator: SoftwareAuthenticator,
  overrides?: AssertionOverrides,
) {
  const answer = await authenticator.authenticate(await passkeyLoginOptions(app), overrides)
  return postPasskeyLogin(app, answer)
}

/** POST /login/mfa/passkey-options for an mfa_token (from the client it was issued to, unless told). */
export function mfaPasskeyOptionsRequest(app: FastifyInstance, mfaToken: string, userAgent = UA) {
  return app.inject({
    method: 'POST',
    url: '/login/mfa/passkey-options',
    headers: { 'user-agent': userAgent },
    payload: { mfa_token: mfaToken },
  })
}

export async function mfaPasskeyOptions(app: FastifyInstance, mfaToken: string) {
  const response = await mfaPasskeyOptionsRequest(app, mfaToken)
  assert.equal(response.statusCode, 200, response.body)
  return response.json<PublicKeyCredentialRequestOptionsJSON>()
}

export async function reauthenticationOptions(app: FastifyInstance, headers: Headers) {
  const response = await app.inject({ method: 'POST', url: '/mfa/reauthenticate/passkey-options', headers })
  assert.equal(response.statusCode, 200, response.body)
  return response.json<PublicKeyCredentialRequestOptionsJSON>()
}

export function reauthenticate(app: FastifyInstance, headers: Headers, payload: Record<string, unknown>) {
  return app.inject({ method: 'POST', url: '/mfa/reauthenticate', headers, payload })
}

export function deletePasskey(app: FastifyInstance, headers: Headers, id: number, payload: object = {}) {
  return app.inject({ method: 'DELETE', url: `/passkeys/${id}`, headers, payload })
}

/**
 * The same answer with other members in its clientDataJSON. Only a registration answer with
 * attestation 'none' stays valid after it (nothing signs its client data): a client replaying an
 * authenticator's attestation for another challenge, or sending it to another account.
 */
export function withClientData<T extends { response: { clientDataJSON: string } }>(
  answer: T,
  changes: Record<string, unknown>,
): T {
  const clientData = JSON.parse(
    Buffer.from(answer.response.clientDataJSON, 'base64url').toString('utf8'),
  ) as object
  const clientDataJSON = Buffer.from(JSON.stringify({ ...clientData, ...changes })).toString('base64url')
  return { ...answer, response: { ...answer.response, clientDataJSON } }
}

/** A challenge-shaped value (43 base64url characters) the server never issued. */
export const unknownChallenge = () => randomBytes(32).toString('base64url')

// ------------------------------------------------------------------ what the database holds

/** The user's passkeys as stored, with the engines' number and boolean forms made one. */
export async function passkeyRows(app: FastifyInstance, userId: number) {
  const rows = await app.db
    .selectFrom('passkeys')
    .selectAll()
    .where('user_id', '=', userId)
    .orderBy('id')
    .execute()
  return rows.map((row) => ({
    ...row,
    sign_count: Number(row.sign_count),
    backed_up: Boolean(row.backed_up),
  }))
}

/** The challenges stored for the user, or for no account (null: password-less logins'). */
export function challengeRows(app: FastifyInstance, userId: number | null) {
  return app.db
    .selectFrom('webauthn_challenges')
    .selectAll()
    .where((eb) => (userId === null ? eb('user_id', 'is', null) : eb('user_id', '=', userId)))
    .orderBy('created_at')
    .execute()
}

export async function recoveryCodeRows(app: FastifyInstance, userId: number) {
  return app.db
    .selectFrom('recovery_codes')
    .select(['code_hash', 'used_at'])
    .where('user_id', '=', userId)
    .orderBy('code_hash')
    .execute()
}

export async function sessionRows(app: FastifyInstance, userId: number) {
  return app.db
    .selectFrom('sessions')
    .select(['id', 'amr', 'factor_verified_at', 'revoked_at'])
    .where('user_id', '=', userId)
    .orderBy('created_at')
    .execute()
}

export async function mfaTokenRows(app: FastifyInstance, userId: number) {
  return app.db
    .selectFrom('mfa_tokens')
    .select(['token_hash', 'used_at'])
    .where('user_id', '=', userId)
    .orderBy('token_hash')
    .execute()
}

/**
 * What a refusal must leave as it was: the user's passkeys (counters, last use), sessions,
 * recovery codes and logins waiting for a second factor.
 */
export async function accountState(app: FastifyInstance, userId: number) {
  return {
    passkeys: await passkeyRows(app, userId),
    sessions: await sessionRows(app, userId),
    recoveryCodes: await recoveryCodeRows(app, userId),
    mfaTokens: await mfaTokenRows(app, userId),
  }
}

/** The user's audit events whose names start with `prefix`, oldest first, details parsed. */
export async function auditOf(app: FastifyInstance, userId: number, prefix = 'passkey_') {
  return (await eventsOf(app, userId, prefix)).map((row) => ({
    event: row.event,
    outcome: row.outcome,
    details: row.details === null ? null : (JSON.parse(row.details) as Record<string, unknown>),
  }))
}

/** The newest audit event with this name, whoever's (a refusal of an unknown passkey names no user). */
export async function lastEvent(app: FastifyInstance, event: string) {
  const row = await app.db
    .selectFrom('audit_events')
    .select(['event', 'outcome', 'user_id', 'details'])
    .where('event', '=', event)
    .orderBy('id', 'desc')
    .executeTakeFirst()
  return row && { ...row, details: row.details === null ? null : (JSON.parse(row.details) as unknown) }
}

export async function countEvents(app: FastifyInstance, event: string) {
  const row = await app.db
    .selectFrom('audit_events')
    .select((eb) => eb.fn.countAll<number | string>().as('count'))
    .where('event', '=', event)
    .executeTakeFirstOrThrow()
  return Number(row.count)
}
