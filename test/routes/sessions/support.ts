/** Requests and assertions shared by the tests of sessions: login, refresh, ending them, revocation. */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { decodeJwt } from 'jose'
import { assertProblem, bearer, register, uniqueUser } from '../../support/app.js'

// ------------------------------------------------------------------ helpers

export const REFRESH_TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/
export const USER_AGENT = 'sessions-test/1.0 (node:test)'
export const CLIENT_IP = '203.0.113.7'
export const REDIS_URL = process.env.TEST_REDIS_URL

export interface TokenPair {
  access_token: string
  token_type: string
  expires_in: number
  refresh_token: string
}

export interface SessionItem {
  id: string
  created_at: string
  last_used_at: string
  expires_at: string
  user_agent: string | null
  ip: string | null
  current: boolean
}

export type Reply = Awaited<ReturnType<FastifyInstance['inject']>>

export const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex')
export const sidOf = (accessToken: string) => decodeJwt(accessToken).sid as string
/** A refresh token of the right shape that was never issued. */
export const neverIssued = () => randomBytes(32).toString('base64url')

/** Logs in through the real /login, from a known user agent and IP, and returns the token pair. */
export async function loginPair(
  app: FastifyInstance,
  account: { email: string; password: string },
  userAgent = USER_AGENT,
): Promise<TokenPair> {
  const response = await app.inject({
    method: 'POST',
    url: '/login',
    remoteAddress: CLIENT_IP,
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': userAgent },
    payload: new URLSearchParams({ username: account.email, password: account.password }).toString(),
  })
  assert.equal(response.statusCode, 200, `login: ${response.body}`)
  return response.json<TokenPair>()
}

/** A newly registered user and one logged-in session of theirs. */
export async function userWithSession(app: FastifyInstance) {
  const account = await register(app, uniqueUser())
  return { account, session: await loginPair(app, account) }
}

export function refresh(app: FastifyInstance, refreshToken: unknown, extra: Record<string, unknown> = {}) {
  return app.inject({
    method: 'POST',
    url: '/token/refresh',
    payload: { refresh_token: refreshToken, ...extra },
  })
}

export function currentUser(app: FastifyInstance, accessToken: string) {
  return app.inject({ method: 'GET', url: '/current-user', headers: bearer(accessToken) })
}

export function logout(app: FastifyInstance, accessToken?: string) {
  return app.inject({
    method: 'POST',
    url: '/logout',
    headers: accessToken === undefined ? {} : bearer(accessToken),
  })
}

export function listSessions(app: FastifyInstance, accessToken: string) {
  return app.inject({ method: 'GET', url: '/sessions', headers: bearer(accessToken) })
}

export function deleteSession(app: FastifyInstance, accessToken: string, id: string) {
  return app.inject({ method: 'DELETE', url: `/sessions/${id}`, headers: bearer(accessToken) })
}

export function changePassword(app: FastifyInstance, accessToken: string, body: Record<string, unknown>) {
  return app.inject({ method: 'PUT', url: '/users/me/password', headers: bearer(accessToken), payload: body })
}

/** The access token is accepted: /current-user answers 200 with this user. */
export async function assertAccessWorks(
  app: FastifyInstance,
  accessToken: string,
  userId: number,
  what = '',
) {
  const response = await currentUser(app, accessToken)
  assert.equal(response.statusCode, 200, `${what} access token refused: ${response.body}`)
  assert.equal(response.json<{ id: number }>().id, userId)
}

/** The access token is refused: 401 problem+json with a Bearer invalid_token challenge. */
export async function assertAccessRefused(app: FastifyInstance, accessToken: string, what = '') {
  const response = await currentUser(app, accessToken)
  assert.equal(response.statusCode, 401, `${what} access token: ${response.statusCode} ${response.body}`)
  assertProblem(response, 401)
  assert.match(String(response.headers['www-authenticate']), /^Bearer .*error="invalid_token"/)
}

/** The refresh token is refused with a 401 problem and no tokens. */
export async function assertRefreshRefused(app: FastifyInstance, refreshToken: string, what = '') {
  const response = await refresh(app, refreshToken)
  assert.equal(response.statusCode, 401, `${what} refresh token: ${response.statusCode} ${response.body}`)
  const problem = assertProblem(response, 401)
  assert.equal('access_token' in problem, false)
  assert.equal('refresh_token' in problem, false)
}

/** Refreshes and asserts success; returns the new pair. */
export async function refreshOk(app: FastifyInstance, refreshToken: string, what = ''): Promise<TokenPair> {
  const response = await refresh(app, refreshToken)
  assert.equal(response.statusCode, 200, `${what} refresh: ${response.body}`)
  return response.json<TokenPair>()
}

/** A session that can still be used: its access token works and its refresh token rotates. */
export async function assertSessionAlive(app: FastifyInstance, pair: TokenPair, userId: number, what = '') {
  await assertAccessWorks(app, pair.access_token, userId, what)
  const next = await refreshOk(app, pair.refresh_token, what)
  await assertAccessWorks(app, next.access_token, userId, `${what} (refreshed)`)
  return next
}

/** A session that is over: both its access and its refresh token are refused. */
export async function assertSessionDead(app: FastifyInstance, pair: TokenPair, what = '') {
  await assertAccessRefused(app, pair.access_token, what)
  await assertRefreshRefused(app, pair.refresh_token, what)
}

/** Moves the rotation of a used refresh token back in time, as if it had happened `ms` ago. */
export async function backdateRotation(app: FastifyInstance, refreshToken: string, ms: number) {
  const result = await app.db
    .updateTable('refresh_tokens')
    .set({ used_at: new Date(Date.now() - ms) })
    .where('token_hash', '=', sha256(refreshToken))
    .where('used_at', 'is not', null)
    .executeTakeFirst()
  assert.equal(Number(result.numUpdatedRows), 1, 'the refresh token was used')
}

/** How long after its rotation a refresh token presented again is a duplicate, not reuse. */
export const DUPLICATE_WINDOW_MS = 10_000
export const DAY_MS = 24 * 60 * 60 * 1000

/** The refresh token rows of a session (hashes, expiry, use). */
export function refreshTokenRows(app: FastifyInstance, sessionId: string) {
  return app.db.selectFrom('refresh_tokens').selectAll().where('session_id', '=', sessionId).execute()
}

export function sessionRow(app: FastifyInstance, id: string) {
  return app.db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst()
}

export function invalidFields(response: Reply): string[] {
  const problem = assertProblem(response, 422)
  assert.ok(Array.isArray(problem.errors), `a 422 lists its errors: ${response.body}`)
  return problem.errors.map((issue) => issue.field)
}

/** Waits until `condition` holds; the timeout is only a safety net, never what is tested. */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** Every key under a prefix (SCAN, never KEYS). */
export async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    keys.push(...batch)
    cursor = next
  } while (cursor !== '0')
  return keys
}

export async function deleteKeysUnder(redis: Redis, prefix: string) {
  const keys = await keysUnder(redis, prefix)
  if (keys.length > 0) await redis.del(...keys)
}

export const uniquePrefix = (what: string) =>
  `fastauth-test:${what}:${process.pid}:${randomBytes(4).toString('hex')}:`
