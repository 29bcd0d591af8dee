/** Requests and codes shared by the second-factor tests. */
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { decodeJwt } from 'jose'
import { HOTP, Secret } from 'otpauth'
import { totpStep } from '../../../src/auth/totp.js'
import { assertProblem, bearer, register, uniqueUser } from '../../support/app.js'
import type { TestClock } from '../../support/clock.js'

export const UA = 'mfa-test-client/1.0'
export const STEP_MS = 30_000

/** The code an authenticator app shows at `step` (HOTP over the step, as RFC 6238 computes it). */
export function codeAt(secret: string, step: number): string {
  return HOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, counter: step })
}

/** The step of the test clock now. */
export const stepOf = (clock: TestClock) => totpStep(clock.now())

/** A code of the same length and form that is not the one of `step` nor of its neighbours. */
export function wrongCodeAt(secret: string, step: number): string {
  const taken = new Set([-2, -1, 0, 1, 2].map((delta) => codeAt(secret, step + delta)))
  for (let n = 0; ; n++) {
    const code = String(n).padStart(6, '0')
    if (!taken.has(code)) return code
  }
}

export function loginRequest(app: FastifyInstance, username: string, password: string, userAgent = UA) {
  return app.inject({
    method: 'POST',
    url: '/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': userAgent },
    payload: new URLSearchParams({ username, password }).toString(),
  })
}

export function mfaLogin(app: FastifyInstance, body: Record<string, unknown>, userAgent = UA) {
  return app.inject({
    method: 'POST',
    url: '/login/mfa',
    headers: { 'user-agent': userAgent },
    payload: body,
  })
}

export interface Challenge {
  error: string
  mfa_token: string
  factors: string[]
  expires_in: number
}

/** POST /login for an account with a second factor: its 403 `mfa_required` body. */
export async function challenge(
  app: FastifyInstance,
  user: { email: string; password: string },
  userAgent = UA,
): Promise<Challenge> {
  const response = await loginRequest(app, user.email, user.password, userAgent)
  const body = assertProblem(response, 403) as unknown as Challenge
  assert.equal(body.error, 'mfa_required', response.body)
  return body
}

export const amrOf = (accessToken: string) => decodeJwt(accessToken).amr

/** A registered user logged in with the password alone (no factor yet), with their token. */
export async function userWithToken(app: FastifyInstance) {
  const user = await register(app, uniqueUser())
  const response = await loginRequest(app, user.email, user.password)
  assert.equal(response.statusCode, 200, response.body)
  const token = response.json<{ access_token: string }>().access_token
  return { ...user, token, headers: { ...bearer(token), 'user-agent': UA } }
}

export type TestUser = Awaited<ReturnType<typeof userWithToken>>

/** Starts and confirms TOTP at the clock's current step: the secret and the recovery codes. */
export async function enrolTotp(app: FastifyInstance, user: TestUser, clock: TestClock) {
  const started = await app.inject({ method: 'POST', url: '/mfa/totp', headers: user.headers })
  assert.equal(started.statusCode, 200, started.body)
  const { secret } = started.json<{ secret: string }>()
  const confirmed = await app.inject({
    method: 'POST',
    url: '/mfa/totp/confirm',
    headers: user.headers,
    payload: { code: codeAt(secret, stepOf(clock)) },
  })
  assert.equal(confirmed.statusCode, 200, confirmed.body)
  return { secret, recoveryCodes: confirmed.json<{ recovery_codes: string[] }>().recovery_codes }
}

/** The user's audit events with these names, oldest first. */
export async function eventsOf(app: FastifyInstance, userId: number, prefix = 'mfa_') {
  const rows = await app.db
    .selectFrom('audit_events')
    .select(['event', 'outcome', 'details'])
    .where('user_id', '=', userId)
    .orderBy('id')
    .execute()
  return rows.filter((row) => row.event.startsWith(prefix))
}
