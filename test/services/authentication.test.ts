/**
 * The authentication rules on their own, over stand-ins for the token service, the revocation list
 * and the known sessions: each refusal is the right kind of error with the right facts, and an
 * error that is not about the token (a database that fails) is never turned into a 401.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { KnownSessions } from '../../src/auth/known-sessions.js'
import { TokenError, type AccessTokenClaims } from '../../src/auth/tokens.js'
import type { Repositories } from '../../src/repositories/index.js'
import { createAuthenticationService } from '../../src/services/authentication.js'
import { DomainError } from '../../src/services/errors.js'

const CLAIMS: AccessTokenClaims = {
  sub: '7',
  user_id: 7,
  role: 'user',
  sid: 'session-7',
  jti: 'jti',
  iat: 0,
  exp: 0,
  amr: ['pwd', 'otp', 'mfa'],
}

function service(
  options: {
    verify?: () => Promise<AccessTokenClaims>
    revoked?: boolean
    session?: Awaited<ReturnType<KnownSessions['check']>>
    user?: { id: number; is_active: boolean }
  } = {},
) {
  const checked: [string, number][] = []
  const authentication = createAuthenticationService({
    repos: { users: { findById: async () => options.user } } as unknown as Repositories,
    tokens: { verifyAccessToken: options.verify ?? (async () => CLAIMS) },
    revocations: { isRevoked: async () => options.revoked ?? false },
    knownSessions: {
      check: async (sessionId, userId) => {
        checked.push([sessionId, userId])
        return options.session ?? 'issued'
      },
    },
  })
  return { authentication, checked }
}

/** Asserts a rejection with a DomainError of this kind, detail and `credentialsPresented`. */
async function refused(promise: Promise<unknown>, kind: string, detail: RegExp, presented?: boolean) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof DomainError, String(error))
    assert.equal(error.kind, kind)
    assert.match(error.detail, detail)
    if (presented !== undefined) assert.equal(error.facts.credentialsPresented, presented)
    return true
  })
}

test('a valid token of an issued, unrevoked session is its actor', async () => {
  const { authentication, checked } = service()
  assert.deepEqual(await authentication.authenticate('token'), {
    id: 7,
    role: 'user',
    sessionId: 'session-7',
    amr: ['pwd', 'otp', 'mfa'],
  })
  assert.deepEqual(checked, [['session-7', 7]])
})

test('no token: unauthenticated, credentials not presented, saying what to send', async () => {
  await refused(
    service().authentication.authenticate(undefined),
    'unauthenticated',
    /Authorization: Bearer/,
    false,
  )
})

test('a refused token: unauthenticated with the token error’s own words, credentials presented', async () => {
  for (const reason of ['expired', 'invalid'] as const) {
    const { authentication } = service({ verify: async () => Promise.reject(new TokenError(reason)) })
    const words = reason === 'expired' ? /has expired/ : /is invalid/
    await refused(authentication.authenticate('token'), 'unauthenticated', words, true)
  }
})

test('a failure that is not the token’s (the database) is thrown as it is, never a 401', async () => {
  const failure = new Error('database: connection refused')
  const { authentication } = service({ verify: async () => Promise.reject(failure) })
  await assert.rejects(authentication.authenticate('token'), (error) => error === failure)
})

test('a revoked session, or one the database says ended: the session has ended', async () => {
  await refused(
    service({ revoked: true }).authentication.authenticate('t'),
    'unauthenticated',
    /session has ended/,
    true,
  )
  await refused(
    service({ session: 'revoked' }).authentication.authenticate('t'),
    'unauthenticated',
    /session has ended/,
    true,
  )
})

test('a session the server never issued to that user: the token is invalid', async () => {
  await refused(
    service({ session: 'unknown' }).authentication.authenticate('t'),
    'unauthenticated',
    /access token is invalid/,
    true,
  )
})

test('currentUser: the account, unless it is gone or inactive', async () => {
  const actor = { id: 7, role: 'user' as const, sessionId: 's' }
  const active = { id: 7, is_active: true }
  assert.equal(await service({ user: active }).authentication.currentUser(actor), active)
  await refused(service().authentication.currentUser(actor), 'unauthenticated', /no longer exists/, true)
  await refused(
    service({ user: { id: 7, is_active: false } }).authentication.currentUser(actor),
    'unauthenticated',
    /no longer exists/,
  )
})

test('requireRole: the role asked for, else forbidden naming it; no actor is forbidden too', () => {
  const { authentication } = service()
  authentication.requireRole({ id: 1, role: 'admin', sessionId: 's' }, 'admin')
  assert.throws(
    () => authentication.requireRole({ id: 1, role: 'user', sessionId: 's' }, 'admin'),
    (error) => error instanceof DomainError && error.kind === 'forbidden' && /admin role/.test(error.detail),
  )
  assert.throws(
    () => authentication.requireRole(undefined, 'admin'),
    (error) => error instanceof DomainError && error.kind === 'forbidden',
  )
})
