/**
 * Sessions (issue 4, SPEC §2 Authentication and §3 Protection): login starts a session with a
 * refresh token, POST /token/refresh rotates it (reuse ends the session; a duplicate right after a
 * rotation, concurrent refreshes included, gets the same new token, so that a thief racing the
 * client is exposed at the next rotation; issue 11), a session ends SESSION_MAX_LIFETIME_DAYS after
 * its login whatever its activity (issue 11), and every way of ending a session (logout, DELETE /sessions/{id}, password change,
 * deactivation, role change, deletion) refuses its tokens on the very next request — on one
 * instance, on two instances sharing Redis, and while Redis is away.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { Writable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { decodeJwt } from 'jose'
import { buildApp } from '../src/app.js'
import {
  adminAndLogin,
  assertProblem,
  bearer,
  describeEachEngine,
  register,
  testConfig,
  uniqueUser,
} from './helper.js'
import { REDIS_SERVER, freePort, startRedis, stopRedis } from './support/processes.js'

// ------------------------------------------------------------------ helpers

const REFRESH_TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/
const USER_AGENT = 'sessions-test/1.0 (node:test)'
const CLIENT_IP = '203.0.113.7'
const REDIS_URL = process.env.TEST_REDIS_URL

interface TokenPair {
  access_token: string
  token_type: string
  expires_in: number
  refresh_token: string
}

interface SessionItem {
  id: string
  created_at: string
  last_used_at: string
  expires_at: string
  user_agent: string | null
  ip: string | null
  current: boolean
}

type Reply = Awaited<ReturnType<FastifyInstance['inject']>>

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex')
const sidOf = (accessToken: string) => decodeJwt(accessToken).sid as string
/** A refresh token of the right shape that was never issued. */
const neverIssued = () => randomBytes(32).toString('base64url')

/** Logs in through the real /login, from a known user agent and IP, and returns the token pair. */
async function loginPair(
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
async function userWithSession(app: FastifyInstance) {
  const account = await register(app, uniqueUser())
  return { account, session: await loginPair(app, account) }
}

function refresh(app: FastifyInstance, refreshToken: unknown, extra: Record<string, unknown> = {}) {
  return app.inject({
    method: 'POST',
    url: '/token/refresh',
    payload: { refresh_token: refreshToken, ...extra },
  })
}

function currentUser(app: FastifyInstance, accessToken: string) {
  return app.inject({ method: 'GET', url: '/current-user', headers: bearer(accessToken) })
}

function logout(app: FastifyInstance, accessToken?: string) {
  return app.inject({
    method: 'POST',
    url: '/logout',
    headers: accessToken === undefined ? {} : bearer(accessToken),
  })
}

function listSessions(app: FastifyInstance, accessToken: string) {
  return app.inject({ method: 'GET', url: '/sessions', headers: bearer(accessToken) })
}

function deleteSession(app: FastifyInstance, accessToken: string, id: string) {
  return app.inject({ method: 'DELETE', url: `/sessions/${id}`, headers: bearer(accessToken) })
}

function changePassword(app: FastifyInstance, accessToken: string, body: Record<string, unknown>) {
  return app.inject({ method: 'PUT', url: '/users/me/password', headers: bearer(accessToken), payload: body })
}

/** The access token is accepted: /current-user answers 200 with this user. */
async function assertAccessWorks(app: FastifyInstance, accessToken: string, userId: number, what = '') {
  const response = await currentUser(app, accessToken)
  assert.equal(response.statusCode, 200, `${what} access token refused: ${response.body}`)
  assert.equal(response.json<{ id: number }>().id, userId)
}

/** The access token is refused: 401 problem+json with a Bearer invalid_token challenge. */
async function assertAccessRefused(app: FastifyInstance, accessToken: string, what = '') {
  const response = await currentUser(app, accessToken)
  assert.equal(response.statusCode, 401, `${what} access token: ${response.statusCode} ${response.body}`)
  assertProblem(response, 401)
  assert.match(String(response.headers['www-authenticate']), /^Bearer .*error="invalid_token"/)
}

/** The refresh token is refused with a 401 problem and no tokens. */
async function assertRefreshRefused(app: FastifyInstance, refreshToken: string, what = '') {
  const response = await refresh(app, refreshToken)
  assert.equal(response.statusCode, 401, `${what} refresh token: ${response.statusCode} ${response.body}`)
  const problem = assertProblem(response, 401)
  assert.equal('access_token' in problem, false)
  assert.equal('refresh_token' in problem, false)
}

/** Refreshes and asserts success; returns the new pair. */
async function refreshOk(app: FastifyInstance, refreshToken: string, what = ''): Promise<TokenPair> {
  const response = await refresh(app, refreshToken)
  assert.equal(response.statusCode, 200, `${what} refresh: ${response.body}`)
  return response.json<TokenPair>()
}

/** A session that can still be used: its access token works and its refresh token rotates. */
async function assertSessionAlive(app: FastifyInstance, pair: TokenPair, userId: number, what = '') {
  await assertAccessWorks(app, pair.access_token, userId, what)
  const next = await refreshOk(app, pair.refresh_token, what)
  await assertAccessWorks(app, next.access_token, userId, `${what} (refreshed)`)
  return next
}

/** A session that is over: both its access and its refresh token are refused. */
async function assertSessionDead(app: FastifyInstance, pair: TokenPair, what = '') {
  await assertAccessRefused(app, pair.access_token, what)
  await assertRefreshRefused(app, pair.refresh_token, what)
}

/** Moves the rotation of a used refresh token back in time, as if it had happened `ms` ago. */
async function backdateRotation(app: FastifyInstance, refreshToken: string, ms: number) {
  const result = await app.db
    .updateTable('refresh_tokens')
    .set({ used_at: new Date(Date.now() - ms) })
    .where('token_hash', '=', sha256(refreshToken))
    .where('used_at', 'is not', null)
    .executeTakeFirst()
  assert.equal(Number(result.numUpdatedRows), 1, 'the refresh token was used')
}

/** How long after its rotation a refresh token presented again is a duplicate, not reuse. */
const DUPLICATE_WINDOW_MS = 10_000
const DAY_MS = 24 * 60 * 60 * 1000

/** The refresh token rows of a session (hashes, expiry, use). */
function refreshTokenRows(app: FastifyInstance, sessionId: string) {
  return app.db.selectFrom('refresh_tokens').selectAll().where('session_id', '=', sessionId).execute()
}

function sessionRow(app: FastifyInstance, id: string) {
  return app.db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst()
}

function invalidFields(response: Reply): string[] {
  const problem = assertProblem(response, 422)
  assert.ok(Array.isArray(problem.errors), `a 422 lists its errors: ${response.body}`)
  return problem.errors.map((issue) => issue.field)
}

/** Waits until `condition` holds; the timeout is only a safety net, never what is tested. */
async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** Every key under a prefix (SCAN, never KEYS). */
async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    keys.push(...batch)
    cursor = next
  } while (cursor !== '0')
  return keys
}

async function deleteKeysUnder(redis: Redis, prefix: string) {
  const keys = await keysUnder(redis, prefix)
  if (keys.length > 0) await redis.del(...keys)
}

const uniquePrefix = (what: string) =>
  `fastauth-test:${what}:${process.pid}:${randomBytes(4).toString('hex')}:`

// ------------------------------------------------------------------ login starts a session

describeEachEngine('sessions: login', (ctx) => {
  test('login answers a refresh token (43 base64url characters) and creates one session row', async () => {
    const account = await register(ctx.app)
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/login',
      remoteAddress: CLIENT_IP,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': USER_AGENT },
      payload: new URLSearchParams({ username: account.email, password: account.password }).toString(),
    })
    assert.equal(response.statusCode, 200, response.body)
    assert.match(String(response.headers['cache-control']), /\bno-store\b/)
    const pair = response.json<TokenPair>()
    assert.deepEqual(Object.keys(pair).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type'])
    assert.equal(pair.token_type, 'bearer')
    assert.match(pair.refresh_token, REFRESH_TOKEN_SHAPE)

    const rows = await ctx.app.db
      .selectFrom('sessions')
      .selectAll()
      .where('user_id', '=', account.id)
      .execute()
    assert.equal(rows.length, 1)
    const [row] = rows
    assert.equal(row!.id, sidOf(pair.access_token), 'the access token carries the session id')
    assert.equal(row!.user_agent, USER_AGENT)
    assert.equal(row!.ip, CLIENT_IP)
    assert.equal(row!.revoked_at, null)
    assert.ok(row!.expires_at > row!.created_at)
    await assertAccessWorks(ctx.app, pair.access_token, account.id)
  })

  test('the refresh token is stored only as its SHA-256 hash: the raw token is nowhere in the database', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const sid = sidOf(session.access_token)
    const tokens = await ctx.app.db
      .selectFrom('refresh_tokens')
      .selectAll()
      .where('session_id', '=', sid)
      .execute()
    assert.equal(tokens.length, 1)
    assert.equal(tokens[0]!.token_hash, sha256(session.refresh_token))
    assert.equal(tokens[0]!.used_at, null)

    const raw = session.refresh_token
    const rawHex = Buffer.from(raw, 'base64url').toString('hex')
    const everything = JSON.stringify([
      await ctx.app.db.selectFrom('sessions').selectAll().execute(),
      await ctx.app.db.selectFrom('refresh_tokens').selectAll().execute(),
      await ctx.app.db.selectFrom('users').selectAll().where('id', '=', account.id).execute(),
    ])
    assert.equal(everything.includes(raw), false, 'the raw refresh token is stored')
    assert.equal(everything.includes(rawHex), false, 'the refresh token bytes are stored')
  })

  test('a very long User-Agent is stored cut to 512 characters, and the login works', async () => {
    const account = await register(ctx.app)
    const pair = await loginPair(ctx.app, account, `agent/${'x'.repeat(2000)}`)
    const row = await sessionRow(ctx.app, sidOf(pair.access_token))
    assert.equal(row?.user_agent, `agent/${'x'.repeat(2000)}`.slice(0, 512))
    await assertAccessWorks(ctx.app, pair.access_token, account.id)
  })

  test('every login is a session of its own, with its own refresh token', async () => {
    const { account, session: first } = await userWithSession(ctx.app)
    const second = await loginPair(ctx.app, account, 'another-device/2.0')
    assert.notEqual(sidOf(first.access_token), sidOf(second.access_token))
    assert.notEqual(first.refresh_token, second.refresh_token)
    const rows = await ctx.app.db
      .selectFrom('sessions')
      .select(['id', 'user_agent'])
      .where('user_id', '=', account.id)
      .execute()
    assert.deepEqual(rows.map((row) => row.user_agent).sort(), ['another-device/2.0', USER_AGENT].sort())
  })
})

// ------------------------------------------------------------------ POST /token/refresh

describeEachEngine('POST /token/refresh', (ctx) => {
  test('rotates: a new access and refresh token of the same session; the old refresh token then fails once the duplicate window is over', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const response = await refresh(ctx.app, session.refresh_token)
    assert.equal(response.statusCode, 200, response.body)
    assert.match(String(response.headers['cache-control']), /\bno-store\b/)
    const next = response.json<TokenPair>()
    assert.equal(next.token_type, 'bearer')
    assert.equal(next.expires_in, session.expires_in)
    assert.match(next.refresh_token, REFRESH_TOKEN_SHAPE)
    assert.notEqual(next.refresh_token, session.refresh_token)
    assert.notEqual(next.access_token, session.access_token)
    assert.notEqual(decodeJwt(next.access_token).jti, decodeJwt(session.access_token).jti)
    assert.equal(sidOf(next.access_token), sidOf(session.access_token), 'same session id')
    await assertAccessWorks(ctx.app, next.access_token, account.id, 'new')

    // In the database: the presented token is marked used, the new one is stored as a hash.
    const sid = sidOf(session.access_token)
    const rows = await ctx.app.db
      .selectFrom('refresh_tokens')
      .selectAll()
      .where('session_id', '=', sid)
      .execute()
    assert.equal(rows.length, 2)
    const old = rows.find((row) => row.token_hash === sha256(session.refresh_token))
    const fresh = rows.find((row) => row.token_hash === sha256(next.refresh_token))
    assert.ok(old?.used_at, 'the presented refresh token is marked used')
    assert.equal(fresh?.used_at, null)
    assert.equal(
      (await ctx.app.db.selectFrom('sessions').select('id').where('user_id', '=', account.id).execute())
        .length,
      1,
    )

    await backdateRotation(ctx.app, session.refresh_token, DUPLICATE_WINDOW_MS + 1000)
    await assertRefreshRefused(ctx.app, session.refresh_token, 'rotated')
  })

  test('a refresh marks the session used now and extends it (the listed last_used_at moves)', async () => {
    const { session } = await userWithSession(ctx.app)
    const sid = sidOf(session.access_token)
    const longAgo = new Date(Date.now() - 3 * 24 * 60 * 60 * 1000)
    await ctx.app.db
      .updateTable('sessions')
      .set({ last_used_at: longAgo, expires_at: new Date(Date.now() + 60 * 60 * 1000) })
      .where('id', '=', sid)
      .execute()
    const before = await sessionRow(ctx.app, sid)
    const next = await refreshOk(ctx.app, session.refresh_token)
    const after = await sessionRow(ctx.app, sid)
    assert.ok(after!.last_used_at > before!.last_used_at, 'last_used_at moves forward')
    assert.ok(after!.expires_at > before!.expires_at, 'the session is extended')
    const listed = (await listSessions(ctx.app, next.access_token)).json<{ items: SessionItem[] }>()
    assert.equal(Date.parse(listed.items[0]!.last_used_at), after!.last_used_at.getTime())
  })

  test('a refresh token that was never issued is 401 problem+json, and no session is created', async () => {
    const before = await ctx.app.db.selectFrom('sessions').select('id').execute()
    const response = await refresh(ctx.app, neverIssued())
    assertProblem(response, 401)
    assert.match(String(response.headers['www-authenticate']), /^Bearer/)
    const after = await ctx.app.db.selectFrom('sessions').select('id').execute()
    assert.equal(after.length, before.length)
  })

  const wrongShapes: [string, unknown][] = [
    ['an empty string', ''],
    ['42 characters', 'a'.repeat(42)],
    ['44 characters', 'a'.repeat(44)],
    ['base64 "+" and "/"', `${'a'.repeat(41)}+/`],
    ['padding', `${'a'.repeat(42)}=`],
    ['a space inside', `${'a'.repeat(21)} ${'a'.repeat(21)}`],
    ['a number', 12345],
    ['null', null],
    ['an array', ['a'.repeat(43)]],
  ]
  for (const [title, value] of wrongShapes) {
    test(`a refresh token that is ${title} is 422 naming refresh_token`, async () => {
      assert.deepEqual(invalidFields(await refresh(ctx.app, value)), ['refresh_token'])
    })
  }

  test('an access token sent as the refresh token is 422 (wrong shape), never accepted', async () => {
    const { session } = await userWithSession(ctx.app)
    assert.deepEqual(invalidFields(await refresh(ctx.app, session.access_token)), ['refresh_token'])
  })

  test('a missing refresh_token is 422, and an unknown field is 422 without using up the token', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const missing = await ctx.app.inject({ method: 'POST', url: '/token/refresh', payload: {} })
    assert.deepEqual(invalidFields(missing), ['refresh_token'])
    const unknown = await refresh(ctx.app, session.refresh_token, { grant_type: 'refresh_token' })
    assert.deepEqual(invalidFields(unknown), ['grant_type'])
    // Refused before anything happened: the token is still good (not used, not reused).
    await assertSessionAlive(ctx.app, session, account.id)
  })

  test('a text/plain body is 415 problem+json, and the token stays usable', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/token/refresh',
      headers: { 'content-type': 'text/plain' },
      payload: session.refresh_token,
    })
    assertProblem(response, 415)
    await assertSessionAlive(ctx.app, session, account.id)
  })

  test('an expired refresh token is 401', async () => {
    const { session } = await userWithSession(ctx.app)
    await ctx.app.db
      .updateTable('refresh_tokens')
      .set({ expires_at: new Date(Date.now() - 60_000) })
      .where('token_hash', '=', sha256(session.refresh_token))
      .execute()
    await assertRefreshRefused(ctx.app, session.refresh_token, 'expired')
  })

  test('the refresh token of an expired session is 401, and the session is not listed', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const other = await loginPair(ctx.app, account)
    await ctx.app.db
      .updateTable('sessions')
      .set({ expires_at: new Date(Date.now() - 60_000) })
      .where('id', '=', sidOf(session.access_token))
      .execute()
    await assertRefreshRefused(ctx.app, session.refresh_token, 'expired session')
    const listed = await listSessions(ctx.app, other.access_token)
    assert.equal(listed.statusCode, 200, listed.body)
    assert.deepEqual(
      listed.json<{ items: { id: string }[] }>().items.map((item) => item.id),
      [sidOf(other.access_token)],
    )
  })

  test('the refresh token of a deactivated user is 401', async () => {
    const { account, session } = await userWithSession(ctx.app)
    await ctx.app.db.updateTable('users').set({ is_active: false }).where('id', '=', account.id).execute()
    await assertRefreshRefused(ctx.app, session.refresh_token, 'deactivated')
  })
})

// ------------------------------------------------------------------ absolute session lifetime

describeEachEngine(
  'absolute session lifetime (SESSION_MAX_LIFETIME_DAYS=3, below the 14-day refresh lifetime)',
  (ctx) => {
    const MAX_LIFETIME_MS = 3 * DAY_MS

    /** Moves a session's login back in time; its expiry is as a refresh just now would have left it. */
    async function ageSession(sessionId: string, createdAt: Date, expiresAt: Date) {
      await ctx.app.db
        .updateTable('sessions')
        .set({ created_at: createdAt, last_used_at: createdAt, expires_at: expiresAt })
        .where('id', '=', sessionId)
        .execute()
    }

    test('a login ends at the maximum lifetime when that comes before the refresh lifetime', async () => {
      const { session } = await userWithSession(ctx.app)
      const sid = sidOf(session.access_token)
      const row = await sessionRow(ctx.app, sid)
      assert.equal(row!.expires_at.getTime(), row!.created_at.getTime() + MAX_LIFETIME_MS)
      const [token] = await refreshTokenRows(ctx.app, sid)
      assert.equal(token!.expires_at.getTime(), row!.expires_at.getTime())
    })

    test('a session older than the maximum cannot be refreshed, though its refresh token is fresh and its expiry was pushed', async () => {
      const { account, session } = await userWithSession(ctx.app)
      const sid = sidOf(session.access_token)
      // Logged in 3 days and a minute ago, refreshed all along: each refresh pushed the expiry on.
      const now = Date.now()
      await ageSession(sid, new Date(now - MAX_LIFETIME_MS - 60_000), new Date(now + 13 * DAY_MS))
      const before = await sessionRow(ctx.app, sid)

      const response = await refresh(ctx.app, session.refresh_token)
      const problem = assertProblem(response, 401)
      assert.equal('refresh_token' in problem, false)
      // The same answer as for an expired refresh token: nothing says more to whoever holds it.
      const expired = assertProblem(await refresh(ctx.app, neverIssued()), 401)
      assert.equal(problem.detail, expired.detail)

      // Not extended, and the token was not spent: the session just ended.
      const after = await sessionRow(ctx.app, sid)
      assert.equal(after!.expires_at.getTime(), before!.expires_at.getTime())
      assert.equal(after!.last_used_at.getTime(), before!.last_used_at.getTime())
      const tokens = await refreshTokenRows(ctx.app, sid)
      assert.equal(tokens.length, 1)
      assert.equal(tokens[0]!.used_at, null)
      // Refusing it is not a reuse: the user's other sessions and a new login work.
      assert.equal(after!.revoked_at, null)
      await assertSessionAlive(ctx.app, await loginPair(ctx.app, account), account.id, 'new login')
    })

    test('a refresh near the end extends the session only up to its absolute end', async () => {
      const { account, session } = await userWithSession(ctx.app)
      const sid = sidOf(session.access_token)
      const now = Date.now()
      const createdAt = new Date(now - 2 * DAY_MS)
      const absoluteEnd = createdAt.getTime() + MAX_LIFETIME_MS
      await ageSession(sid, createdAt, new Date(absoluteEnd))

      const next = await refreshOk(ctx.app, session.refresh_token)
      await assertAccessWorks(ctx.app, next.access_token, account.id)
      const row = await sessionRow(ctx.app, sid)
      assert.equal(row!.expires_at.getTime(), absoluteEnd, 'a day away, not 14')
      assert.ok(row!.last_used_at.getTime() >= now, 'the refresh is recorded')
      const [token] = (await refreshTokenRows(ctx.app, sid)).filter(
        (candidate) => candidate.token_hash === sha256(next.refresh_token),
      )
      assert.equal(token!.expires_at.getTime(), absoluteEnd, 'the new refresh token ends there too')
      // What the user sees in the list of their sessions.
      const listed = (await listSessions(ctx.app, next.access_token)).json<{ items: SessionItem[] }>()
      assert.equal(Date.parse(listed.items.find((item) => item.id === sid)!.expires_at), absoluteEnd)
    })

    test('a duplicate presented after the absolute end is refused', async () => {
      const { session } = await userWithSession(ctx.app)
      const sid = sidOf(session.access_token)
      const second = await refreshOk(ctx.app, session.refresh_token)
      const now = Date.now()
      await ageSession(sid, new Date(now - MAX_LIFETIME_MS - 60_000), new Date(now + DAY_MS))
      await assertRefreshRefused(ctx.app, session.refresh_token, 'duplicate past the end')
      await assertRefreshRefused(ctx.app, second.refresh_token, 'newest past the end')
    })
  },
  { env: { SESSION_MAX_LIFETIME_DAYS: '3' } },
)

// ------------------------------------------------------------------ reuse detection

describeEachEngine('refresh token reuse', (ctx) => {
  test('reuse is logged as a security event, and no token is ever written to the log', async () => {
    const lines: string[] = []
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean))
        done()
      },
    })
    const logged = await buildApp(testConfig({ DATABASE_URL: ctx.databaseUrl }), {
      logger: { level: 'info', stream },
    })
    try {
      await logged.ready()
      const { account, session: first } = await userWithSession(logged)
      const second = await refreshOk(logged, first.refresh_token)
      const duplicate = await refreshOk(logged, first.refresh_token, 'duplicate')
      const third = await refreshOk(logged, second.refresh_token)
      assertProblem(await refresh(logged, first.refresh_token), 401)
      const events = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
      const duplicates = events.filter((event) => event.event === 'refresh_token_duplicate')
      assert.equal(duplicates.length, 1, lines.join('\n'))
      assert.equal(duplicates[0]!.level, 30, 'information: a second tab or a retry is ordinary')
      assert.equal(duplicates[0]!.sessionId, sidOf(first.access_token))
      const reuse = events.filter((event) => event.event === 'refresh_token_reuse')
      assert.equal(reuse.length, 1, lines.join('\n'))
      assert.equal(reuse[0]!.level, 40, 'a warning')
      assert.equal(reuse[0]!.userId, account.id)
      assert.equal(reuse[0]!.sessionId, sidOf(first.access_token))
      const log = lines.join('\n')
      for (const token of [first, second, duplicate, third].flatMap((pair) => [
        pair.access_token,
        pair.refresh_token,
      ]))
        assert.equal(log.includes(token), false, 'a token was logged')
      assert.equal(log.includes(account.password), false, 'the password was logged')
    } finally {
      await logged.close()
    }
  })

  test('presenting a rotated refresh token again is 401 and ends the whole session', async () => {
    const { account, session: first } = await userWithSession(ctx.app)
    const otherSession = await loginPair(ctx.app, account, 'other-device')
    const second = await refreshOk(ctx.app, first.refresh_token)
    const third = await refreshOk(ctx.app, second.refresh_token)
    await assertAccessWorks(ctx.app, third.access_token, account.id, 'newest')

    // The first refresh token comes back (a stolen copy, or a client replaying it).
    const replay = await refresh(ctx.app, first.refresh_token)
    assertProblem(replay, 401)

    // The whole family is dead on the very next request: the newest refresh token and every access token.
    await assertRefreshRefused(ctx.app, third.refresh_token, 'newest')
    for (const [what, pair] of [
      ['newest', third],
      ['second', second],
      ['first', first],
    ] as const)
      await assertAccessRefused(ctx.app, pair.access_token, what)
    const row = await sessionRow(ctx.app, sidOf(first.access_token))
    assert.ok(row?.revoked_at, 'the session is revoked in the database')
    assert.equal(row.revoked_reason, 'refresh_token_reuse')

    // The same user's other session is untouched.
    await assertSessionAlive(ctx.app, otherSession, account.id, 'other session')
  })

  test('a rotated token presented again after the 10-second window ends the session', async () => {
    const { account, session: first } = await userWithSession(ctx.app)
    const second = await refreshOk(ctx.app, first.refresh_token)
    await assertAccessWorks(ctx.app, second.access_token, account.id)
    // The rotation happened 11 seconds ago: the database says so (nothing here waits).
    await backdateRotation(ctx.app, first.refresh_token, DUPLICATE_WINDOW_MS + 1000)

    assertProblem(await refresh(ctx.app, first.refresh_token), 401)
    await assertSessionDead(ctx.app, second, 'newest pair')
    await assertAccessRefused(ctx.app, first.access_token, 'first access token')
    assert.equal(
      (await sessionRow(ctx.app, sidOf(first.access_token)))?.revoked_reason,
      'refresh_token_reuse',
    )
    // The user can log in again: a new session works.
    await assertSessionAlive(ctx.app, await loginPair(ctx.app, account), account.id, 'new login')
  })

  test('presented again right after its rotation (a duplicate request) it gets the same new refresh token, and the session goes on', async () => {
    const { account, session: first } = await userWithSession(ctx.app)
    const sid = sidOf(first.access_token)
    const second = await refreshOk(ctx.app, first.refresh_token)
    // A second tab, or a retried request whose answer was lost, sends the same token a moment later.
    const response = await refresh(ctx.app, first.refresh_token)
    assert.equal(response.statusCode, 200, response.body)
    assert.match(String(response.headers['cache-control']), /\bno-store\b/)
    const duplicate = response.json<TokenPair>()
    assert.equal(duplicate.refresh_token, second.refresh_token, 'the same new refresh token')
    assert.equal(sidOf(duplicate.access_token), sid, 'an access token of the same session')
    await assertAccessWorks(ctx.app, duplicate.access_token, account.id, 'duplicate')
    await assertAccessWorks(ctx.app, second.access_token, account.id, 'first answer')
    // Nothing new is stored: the answer is the successor that the rotation stored.
    const rows = await refreshTokenRows(ctx.app, sid)
    assert.deepEqual(
      rows.map((row) => row.token_hash).sort(),
      [first, second].map((pair) => sha256(pair.refresh_token)).sort(),
    )
    assert.equal((await sessionRow(ctx.app, sid))?.revoked_at, null)
    await assertSessionAlive(ctx.app, duplicate, account.id, 'after the duplicate')
  })

  test('presented again within seconds but after its successor was used, it ends the session', async () => {
    const { account, session: first } = await userWithSession(ctx.app)
    const second = await refreshOk(ctx.app, first.refresh_token)
    const third = await refreshOk(ctx.app, second.refresh_token)
    // The session has moved on: whoever still holds the first token holds a copy.
    assertProblem(await refresh(ctx.app, first.refresh_token), 401)
    await assertSessionDead(ctx.app, third, 'after the replay')
    await assertAccessRefused(ctx.app, second.access_token, 'second')
    assert.equal(
      (await sessionRow(ctx.app, sidOf(first.access_token)))?.revoked_reason,
      'refresh_token_reuse',
    )
    await assertSessionAlive(ctx.app, await loginPair(ctx.app, account), account.id, 'new login')
  })

  test('a duplicate after the session was logged out is 401 and gives no tokens', async () => {
    const { session: first } = await userWithSession(ctx.app)
    const second = await refreshOk(ctx.app, first.refresh_token)
    assert.equal((await logout(ctx.app, second.access_token)).statusCode, 204)
    await assertRefreshRefused(ctx.app, first.refresh_token, 'duplicate after logout')
    await assertSessionDead(ctx.app, second, 'logged out')
    assert.equal((await sessionRow(ctx.app, sidOf(first.access_token)))?.revoked_reason, 'logout')
  })
})

// ------------------------------------------------------------------ a stolen refresh token

describeEachEngine('a stolen refresh token', (ctx) => {
  test('a thief who redeems it first cannot lock the client out: the client gets the same new token, and the next rotation ends the session', async () => {
    const { account, session: login } = await userWithSession(ctx.app)
    const sid = sidOf(login.access_token)
    const stolen = login.refresh_token
    // The thief redeems the stolen token first; the client's own refresh with it lands seconds later.
    const thief = await refreshOk(ctx.app, stolen, 'thief')
    const client = await refreshOk(ctx.app, login.refresh_token, "client's duplicate")
    assert.equal(client.refresh_token, thief.refresh_token, 'both now hold one refresh token')
    assert.equal(sidOf(client.access_token), sid)
    await assertAccessWorks(ctx.app, client.access_token, account.id, 'client')

    // The thief rotates again. Minutes later the client refreshes on its own schedule.
    const thiefAgain = await refreshOk(ctx.app, thief.refresh_token, 'thief again')
    await backdateRotation(ctx.app, thief.refresh_token, 5 * 60_000)
    await assertRefreshRefused(ctx.app, client.refresh_token, 'client after the thief rotated')

    // That reuse ended the session: the thief's newest tokens are refused too.
    await assertSessionDead(ctx.app, thiefAgain, "thief's newest pair")
    await assertAccessRefused(ctx.app, thief.access_token, "thief's first access token")
    await assertAccessRefused(ctx.app, client.access_token, "client's access token")
    const row = await sessionRow(ctx.app, sid)
    assert.ok(row?.revoked_at, 'the session is revoked in the database')
    assert.equal(row.revoked_reason, 'refresh_token_reuse')
  })

  test('a thief who presents it right after the client gets the same new token, and the next rotation ends the session', async () => {
    const { account, session: login } = await userWithSession(ctx.app)
    const sid = sidOf(login.access_token)
    const stolen = login.refresh_token
    const client = await refreshOk(ctx.app, login.refresh_token, 'client')
    const thief = await refreshOk(ctx.app, stolen, "thief's duplicate")
    assert.equal(thief.refresh_token, client.refresh_token, 'both now hold one refresh token')

    // The client rotates on; later the thief tries the token it got.
    const clientAgain = await refreshOk(ctx.app, client.refresh_token, 'client again')
    await assertAccessWorks(ctx.app, clientAgain.access_token, account.id, 'client')
    await backdateRotation(ctx.app, client.refresh_token, 5 * 60_000)
    await assertRefreshRefused(ctx.app, thief.refresh_token, 'thief after the client rotated')

    await assertAccessRefused(ctx.app, thief.access_token, "thief's access token")
    await assertSessionDead(ctx.app, clientAgain, "client's newest pair")
    assert.equal((await sessionRow(ctx.app, sid))?.revoked_reason, 'refresh_token_reuse')
    // The client logs in again; the thief has nothing left.
    await assertSessionAlive(ctx.app, await loginPair(ctx.app, account), account.id, 'new login')
  })

  test('the rotated refresh token that a duplicate is answered with is stored only as its hash', async () => {
    const { session } = await userWithSession(ctx.app)
    const next = await refreshOk(ctx.app, session.refresh_token)
    assert.equal(
      (await refreshOk(ctx.app, session.refresh_token, 'duplicate')).refresh_token,
      next.refresh_token,
    )
    const rows = await refreshTokenRows(ctx.app, sidOf(session.access_token))
    assert.ok(rows.some((row) => row.token_hash === sha256(next.refresh_token)))
    const everything = JSON.stringify([
      await ctx.app.db.selectFrom('sessions').selectAll().execute(),
      await ctx.app.db.selectFrom('refresh_tokens').selectAll().execute(),
      await ctx.app.db.selectFrom('audit_events').selectAll().execute(),
    ])
    for (const token of [session.refresh_token, next.refresh_token]) {
      assert.equal(everything.includes(token), false, 'a raw refresh token is stored')
      assert.equal(everything.includes(Buffer.from(token, 'base64url').toString('hex')), false)
    }
  })
})

// ------------------------------------------------------------------ concurrent refresh

describeEachEngine('concurrent refresh', (ctx) => {
  let baseUrl: string
  before(async () => {
    baseUrl = await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  })

  async function refreshOverHttp(refreshToken: string) {
    const response = await fetch(`${baseUrl}/token/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: refreshToken }),
      signal: AbortSignal.timeout(20_000),
    })
    return {
      status: response.status,
      type: response.headers.get('content-type'),
      body: await response.json(),
    }
  }

  test('parallel refreshes with one token all get the same new refresh token, exactly one is stored, and the session goes on', async () => {
    const PARALLEL = 8
    const ROUNDS = 4
    const { account, session } = await userWithSession(ctx.app)
    const sid = sidOf(session.access_token)
    let current = session
    for (let round = 1; round <= ROUNDS; round++) {
      const results = await Promise.all(
        Array.from({ length: PARALLEL }, () => refreshOverHttp(current.refresh_token)),
      )
      assert.deepEqual(
        results.map((result) => result.status),
        Array.from({ length: PARALLEL }, () => 200),
        `round ${round}: ${JSON.stringify(results.filter((result) => result.status !== 200))}`,
      )
      const pairs = results.map((result) => result.body as TokenPair)
      const refreshTokens = new Set(pairs.map((pair) => pair.refresh_token))
      assert.equal(refreshTokens.size, 1, `round ${round}: one refresh token for all`)
      for (const pair of pairs) {
        assert.equal(sidOf(pair.access_token), sid)
        await assertAccessWorks(ctx.app, pair.access_token, account.id, `round ${round}`)
      }
      // One rotation happened: one successor row, the only unused one, and the presented token used.
      const rows = await refreshTokenRows(ctx.app, sid)
      assert.equal(rows.length, round + 1, `round ${round}: one new row per rotation`)
      assert.deepEqual(
        rows.filter((row) => row.used_at === null).map((row) => row.token_hash),
        [sha256(pairs[0]!.refresh_token)],
      )
      current = pairs[0]!
    }
    const row = await sessionRow(ctx.app, sid)
    assert.equal(row?.revoked_at, null, `revoked as ${String(row?.revoked_reason)}`)
    await assertSessionAlive(ctx.app, current, account.id, 'after the races')
  })
})

// ------------------------------------------------------------------ POST /logout

describeEachEngine('POST /logout', (ctx) => {
  test("204 ends that session at once; the user's other session keeps working", async () => {
    const { account, session } = await userWithSession(ctx.app)
    const other = await loginPair(ctx.app, account, 'other-device')
    await assertAccessWorks(ctx.app, session.access_token, account.id)

    const response = await logout(ctx.app, session.access_token)
    assert.equal(response.statusCode, 204, response.body)
    assert.equal(response.body, '')

    await assertSessionDead(ctx.app, session, 'logged out')
    assertProblem(await logout(ctx.app, session.access_token), 401)
    const row = await sessionRow(ctx.app, sidOf(session.access_token))
    assert.ok(row?.revoked_at)
    assert.equal(row.revoked_reason, 'logout')

    await assertSessionAlive(ctx.app, other, account.id, 'other session')
  })

  test('an access token refreshed before the logout is refused too (the session, not the token, ends)', async () => {
    const { session } = await userWithSession(ctx.app)
    const next = await refreshOk(ctx.app, session.refresh_token)
    assert.equal((await logout(ctx.app, next.access_token)).statusCode, 204)
    await assertAccessRefused(ctx.app, session.access_token, 'older access token')
    await assertSessionDead(ctx.app, next, 'newest pair')
  })

  test('without a token is 401 with a Bearer challenge', async () => {
    const response = await logout(ctx.app)
    assertProblem(response, 401)
    assert.match(String(response.headers['www-authenticate']), /^Bearer/)
    assertProblem(await logout(ctx.app, 'not-a-jwt'), 401)
  })
})

// ------------------------------------------------------------------ GET /sessions, DELETE /sessions/{id}

describeEachEngine('GET /sessions and DELETE /sessions/{id}', (ctx) => {
  test("lists only the caller's active sessions, with current=true on the caller's", async () => {
    const { account, session: phone } = await userWithSession(ctx.app)
    const laptop = await loginPair(ctx.app, account, 'laptop-browser')
    const loggedOut = await loginPair(ctx.app, account, 'logged-out-device')
    assert.equal((await logout(ctx.app, loggedOut.access_token)).statusCode, 204)
    const stranger = await userWithSession(ctx.app)

    const response = await listSessions(ctx.app, phone.access_token)
    assert.equal(response.statusCode, 200, response.body)
    assert.match(String(response.headers['cache-control']), /\bno-store\b/)
    const { items } = response.json<{ items: SessionItem[] }>()
    assert.deepEqual(
      items.map((item) => item.id).sort(),
      [sidOf(phone.access_token), sidOf(laptop.access_token)].sort(),
    )
    for (const item of items) {
      assert.deepEqual(Object.keys(item).sort(), [
        'created_at',
        'current',
        'expires_at',
        'id',
        'ip',
        'last_used_at',
        'user_agent',
      ])
      assert.equal(item.current, item.id === sidOf(phone.access_token))
      assert.equal(item.ip, CLIENT_IP)
      for (const field of ['created_at', 'last_used_at', 'expires_at'] as const)
        assert.ok(!Number.isNaN(Date.parse(item[field])), `${field}: ${item[field]}`)
    }
    assert.equal(items.find((item) => item.current)?.user_agent, USER_AGENT)
    assert.equal(items.find((item) => !item.current)?.user_agent, 'laptop-browser')
    assert.equal(
      items.some((item) => item.id === sidOf(stranger.session.access_token)),
      false,
    )

    // From the laptop, the laptop is the current one.
    const fromLaptop = (await listSessions(ctx.app, laptop.access_token)).json<{ items: SessionItem[] }>()
    assert.deepEqual(
      fromLaptop.items.filter((item) => item.current).map((item) => item.id),
      [sidOf(laptop.access_token)],
    )
  })

  test('anonymous is 401', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: '/sessions' })
    assertProblem(response, 401)
    assert.match(String(response.headers['www-authenticate']), /^Bearer/)
  })

  test("deleting one of your sessions: 204, that session's tokens die, the caller's keep working", async () => {
    const { account, session: caller } = await userWithSession(ctx.app)
    const target = await loginPair(ctx.app, account, 'lost-phone')
    const response = await deleteSession(ctx.app, caller.access_token, sidOf(target.access_token))
    assert.equal(response.statusCode, 204, response.body)
    assert.equal(response.body, '')

    await assertSessionDead(ctx.app, target, 'deleted session')
    const row = await sessionRow(ctx.app, sidOf(target.access_token))
    assert.equal(row?.revoked_reason, 'revoked_by_user')
    const listed = (await listSessions(ctx.app, caller.access_token)).json<{ items: SessionItem[] }>()
    assert.deepEqual(
      listed.items.map((item) => item.id),
      [sidOf(caller.access_token)],
    )
    await assertSessionAlive(ctx.app, caller, account.id, 'caller')

    // Already revoked: 404, like a session that does not exist.
    assertProblem(
      await deleteSession(
        ctx.app,
        (await loginPair(ctx.app, account)).access_token,
        sidOf(target.access_token),
      ),
      404,
    )
  })

  test('deleting your current session ends it, like a logout', async () => {
    const { session } = await userWithSession(ctx.app)
    const response = await deleteSession(ctx.app, session.access_token, sidOf(session.access_token))
    assert.equal(response.statusCode, 204, response.body)
    await assertSessionDead(ctx.app, session, 'current session deleted')
  })

  test("another user's session id is 404, and that session keeps working", async () => {
    const { session: attacker } = await userWithSession(ctx.app)
    const victim = await userWithSession(ctx.app)
    const victimSid = sidOf(victim.session.access_token)
    const response = await deleteSession(ctx.app, attacker.access_token, victimSid)
    const problem = assertProblem(response, 404)
    // The same answer as for an id that does not exist at all.
    const unknown = assertProblem(await deleteSession(ctx.app, attacker.access_token, randomUUID()), 404)
    assert.equal(problem.detail, unknown.detail)
    assert.equal((await sessionRow(ctx.app, victimSid))?.revoked_at, null)
    await assertSessionAlive(ctx.app, victim.session, victim.account.id, 'victim')
  })

  for (const id of ['abc', '1', `${randomUUID()}x`, 'not-a-uuid-at-all-but-36-characters!']) {
    test(`a malformed session id ${JSON.stringify(id)} is 422 naming the path parameter`, async () => {
      const { account, session } = await userWithSession(ctx.app)
      const response = await deleteSession(ctx.app, session.access_token, encodeURIComponent(id))
      assert.deepEqual(invalidFields(response), ['id'])
      await assertAccessWorks(ctx.app, session.access_token, account.id)
    })
  }

  test('DELETE without a token is 401 and the session stays', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const response = await ctx.app.inject({
      method: 'DELETE',
      url: `/sessions/${sidOf(session.access_token)}`,
    })
    assertProblem(response, 401)
    await assertAccessWorks(ctx.app, session.access_token, account.id)
  })
})

// ------------------------------------------------------------------ PUT /users/me/password

describeEachEngine('PUT /users/me/password', (ctx) => {
  const passwordHash = async (id: number) =>
    (
      await ctx.app.db
        .selectFrom('users')
        .select('password_hash')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
    ).password_hash

  test('a wrong current password is 422 naming current_password, and nothing changes', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const other = await loginPair(ctx.app, account, 'other-device')
    const hashBefore = await passwordHash(account.id)
    const response = await changePassword(ctx.app, session.access_token, {
      current_password: `${account.password}-wrong`,
      new_password: 'a brand new password',
    })
    assert.deepEqual(invalidFields(response), ['current_password'])
    assert.equal(await passwordHash(account.id), hashBefore)
    await loginPair(ctx.app, account)
    assert.equal(
      (
        await ctx.app.inject({
          method: 'POST',
          url: '/login',
          payload: { username: account.email, password: 'a brand new password' },
        })
      ).statusCode,
      401,
    )
    await assertSessionAlive(ctx.app, other, account.id, 'other session')
    await assertSessionAlive(ctx.app, session, account.id, 'current session')
  })

  test('a too short new password is 422 naming new_password, and nothing changes', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const other = await loginPair(ctx.app, account, 'other-device')
    const hashBefore = await passwordHash(account.id)
    const response = await changePassword(ctx.app, session.access_token, {
      current_password: account.password,
      new_password: 'short',
    })
    assert.deepEqual(invalidFields(response), ['new_password'])
    assert.equal(await passwordHash(account.id), hashBefore)
    await assertSessionAlive(ctx.app, other, account.id, 'other session')
  })

  test('an unknown field or a missing one is 422, and nothing changes', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const hashBefore = await passwordHash(account.id)
    const extra = await changePassword(ctx.app, session.access_token, {
      current_password: account.password,
      new_password: 'a brand new password',
      confirm: 'a brand new password',
    })
    assert.deepEqual(invalidFields(extra), ['confirm'])
    const missing = await changePassword(ctx.app, session.access_token, {
      new_password: 'a brand new password',
    })
    assert.deepEqual(invalidFields(missing), ['current_password'])
    assert.equal(await passwordHash(account.id), hashBefore)
  })

  test('anonymous is 401', async () => {
    const response = await ctx.app.inject({
      method: 'PUT',
      url: '/users/me/password',
      payload: { current_password: 'whatever it is', new_password: 'a brand new password' },
    })
    assertProblem(response, 401)
  })

  test('success: 204; the new password logs in, the old does not; only the current session survives', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const laptop = await loginPair(ctx.app, account, 'laptop')
    const tablet = await loginPair(ctx.app, account, 'tablet')
    const tabletRefreshed = await refreshOk(ctx.app, tablet.refresh_token)
    const newPassword = `new ${account.password}`

    const response = await changePassword(ctx.app, session.access_token, {
      current_password: account.password,
      new_password: newPassword,
    })
    assert.equal(response.statusCode, 204, response.body)
    assert.equal(response.body, '')

    // Every other session is refused on the very next request, access and refresh tokens alike.
    await assertSessionDead(ctx.app, laptop, 'laptop')
    await assertSessionDead(ctx.app, tabletRefreshed, 'tablet')
    await assertAccessRefused(ctx.app, tablet.access_token, 'tablet (first access token)')
    for (const pair of [laptop, tablet])
      assert.equal((await sessionRow(ctx.app, sidOf(pair.access_token)))?.revoked_reason, 'password_changed')

    // The session that changed the password goes on.
    assert.equal((await sessionRow(ctx.app, sidOf(session.access_token)))?.revoked_at, null)
    await assertSessionAlive(ctx.app, session, account.id, 'current session')

    const oldLogin = await ctx.app.inject({
      method: 'POST',
      url: '/login',
      payload: { username: account.email, password: account.password },
    })
    assertProblem(oldLogin, 401)
    await loginPair(ctx.app, { email: account.email, password: newPassword })
  })
})

// ------------------------------------------------------------------ admin actions end the user's sessions

describeEachEngine("admin actions end the user's sessions", (ctx) => {
  let admin: Awaited<ReturnType<typeof adminAndLogin>>
  before(async () => {
    admin = await adminAndLogin(ctx.app)
  })

  const patchUser = (id: number, body: Record<string, unknown>) =>
    ctx.app.inject({ method: 'PATCH', url: `/users/${id}`, headers: admin.headers, payload: body })

  /** A user with two sessions, one of them refreshed once (so older tokens exist too). */
  async function userWithTwoSessions() {
    const { account, session } = await userWithSession(ctx.app)
    const second = await loginPair(ctx.app, account, 'second-device')
    const refreshed = await refreshOk(ctx.app, second.refresh_token)
    await assertAccessWorks(ctx.app, session.access_token, account.id)
    await assertAccessWorks(ctx.app, refreshed.access_token, account.id)
    return { account, pairs: [session, refreshed] }
  }

  test("deactivating a user (is_active false) refuses the user's access and refresh tokens at once", async () => {
    const { account, pairs } = await userWithTwoSessions()
    const response = await patchUser(account.id, { is_active: false })
    assert.equal(response.statusCode, 200, response.body)
    for (const pair of pairs) {
      await assertSessionDead(ctx.app, pair, 'deactivated')
      // Not only the routes that read the account: any authenticated route refuses the token.
      assertProblem(
        await ctx.app.inject({ method: 'GET', url: '/product/', headers: bearer(pair.access_token) }),
        401,
      )
    }
    await assertAccessWorks(ctx.app, admin.token, admin.id, 'admin')
  })

  test("changing a user's role refuses the user's existing access and refresh tokens at once", async () => {
    const { account, pairs } = await userWithTwoSessions()
    const response = await patchUser(account.id, { role: 'admin' })
    assert.equal(response.statusCode, 200, response.body)
    for (const pair of pairs) await assertSessionDead(ctx.app, pair, 'role changed')
    // A new login carries the new role.
    const fresh = await loginPair(ctx.app, account)
    assert.equal(decodeJwt(fresh.access_token).role, 'admin')
    await assertAccessWorks(ctx.app, fresh.access_token, account.id)
  })

  test('changing only the name of a user leaves the sessions alone', async () => {
    const { account, pairs } = await userWithTwoSessions()
    const response = await patchUser(account.id, { name: uniqueUser().name })
    assert.equal(response.statusCode, 200, response.body)
    for (const pair of pairs) await assertSessionAlive(ctx.app, pair, account.id, 'renamed')
  })

  test("deleting a user refuses the user's access and refresh tokens at once", async () => {
    const { account, pairs } = await userWithTwoSessions()
    const response = await ctx.app.inject({
      method: 'DELETE',
      url: `/users/${account.id}`,
      headers: admin.headers,
    })
    assert.equal(response.statusCode, 204, response.body)
    for (const pair of pairs) {
      await assertSessionDead(ctx.app, pair, 'deleted user')
      // Not only the routes that read the account: any authenticated route refuses the token.
      assertProblem(
        await ctx.app.inject({ method: 'GET', url: '/product/', headers: bearer(pair.access_token) }),
        401,
      )
    }
  })
})

// ------------------------------------------------------------------ revocation store, one instance

describeEachEngine('revocation without Redis (the list alone)', (ctx) => {
  test('one instance: a logout is refused on the next request, other sessions are not', async () => {
    assert.equal(ctx.app.revocations.sharedThroughRedis, false)
    const { account, session } = await userWithSession(ctx.app)
    const other = await loginPair(ctx.app, account)
    assert.equal((await logout(ctx.app, session.access_token)).statusCode, 204)
    assert.equal(await ctx.app.revocations.isRevoked(sidOf(session.access_token)), true)
    assert.equal(await ctx.app.revocations.isRevoked(sidOf(other.access_token)), false)
    await assertAccessRefused(ctx.app, session.access_token)
    await assertAccessWorks(ctx.app, other.access_token, account.id)
  })

  test('a restarted instance still refuses access tokens of sessions ended before the restart', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const other = await loginPair(ctx.app, account)
    assert.equal((await logout(ctx.app, session.access_token)).statusCode, 204)
    // A new process on the same database (a restart or a deploy): its memory starts empty.
    const restarted = await buildApp(testConfig({ DATABASE_URL: ctx.databaseUrl }), { logger: false })
    try {
      await restarted.ready()
      await assertAccessRefused(restarted, session.access_token, 'logged out before the restart')
      await assertAccessWorks(restarted, other.access_token, account.id, 'other session')
    } finally {
      await restarted.close()
    }
  })
  test('a restarted instance still refuses access tokens of a user deleted before the restart', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const deleted = await ctx.app.inject({
      method: 'DELETE',
      url: `/users/${account.id}`,
      headers: bearer(session.access_token),
    })
    assert.equal(deleted.statusCode, 204, deleted.body)
    // The session row outlives the user (user_id null), so the new process learns it was revoked.
    const row = await ctx.app.db
      .selectFrom('sessions')
      .select(['user_id', 'revoked_reason'])
      .where('id', '=', sidOf(session.access_token))
      .executeTakeFirstOrThrow()
    assert.deepEqual(row, { user_id: null, revoked_reason: 'user_deleted' })
    const restarted = await buildApp(testConfig({ DATABASE_URL: ctx.databaseUrl }), { logger: false })
    try {
      await restarted.ready()
      // A route that does not read the account: only the revocation set can refuse the token.
      assertProblem(
        await restarted.inject({ method: 'GET', url: '/product/', headers: bearer(session.access_token) }),
        401,
      )
    } finally {
      await restarted.close()
    }
  })
})

// ------------------------------------------------------------------ two instances sharing one Redis

describeEachEngine('two instances sharing one Redis', (ctx) => {
  describe('A and B', { skip: REDIS_URL ? false : 'TEST_REDIS_URL is not set' }, () => {
    const prefix = uniquePrefix('sessions')
    let a: FastifyInstance | undefined
    let b: FastifyInstance | undefined
    let redis: Redis | undefined

    before(async () => {
      const config = testConfig({ DATABASE_URL: ctx.databaseUrl, REDIS_URL, REDIS_KEY_PREFIX: prefix })
      a = await buildApp(config, { logger: false })
      b = await buildApp(config, { logger: false })
      await Promise.all([a.ready(), b.ready()])
      redis = new Redis(REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 })
      await redis.connect()
    })
    after(async () => {
      await a?.close()
      await b?.close()
      if (redis) {
        await deleteKeysUnder(redis, prefix)
        await redis.quit()
      }
    })

    /** A user who logged in through A. */
    async function onA() {
      const { account, session } = await userWithSession(a!)
      return { account, session }
    }

    test('both instances share revocations through Redis', () => {
      assert.equal(a!.revocations.sharedThroughRedis, true)
      assert.equal(b!.revocations.sharedThroughRedis, true)
    })

    test('a token from A works on B, and a refresh token from B works on A', async () => {
      const { account, session } = await onA()
      await assertAccessWorks(b!, session.access_token, account.id, 'A token on B')
      const next = await refreshOk(b!, session.refresh_token, 'A refresh token on B')
      await assertSessionAlive(a!, next, account.id, 'B pair on A')
    })

    test('a logout through A is refused by B on the very next request', async () => {
      const { account, session } = await onA()
      const other = await loginPair(b!, account)
      await assertAccessWorks(b!, session.access_token, account.id, 'before logout')
      assert.equal((await logout(a!, session.access_token)).statusCode, 204)
      await assertAccessRefused(b!, session.access_token, 'logged out on A, on B')
      await assertRefreshRefused(b!, session.refresh_token, 'logged out on A, on B')
      await assertAccessWorks(b!, other.access_token, account.id, 'other session on B')
      await assertAccessWorks(a!, other.access_token, account.id, 'other session on A')
      // What B relies on is in Redis, under the configured prefix.
      const keys = await keysUnder(redis!, prefix)
      assert.ok(
        keys.some((key) => key.includes(sidOf(session.access_token))),
        keys.join(', '),
      )
    })

    test('refresh token reuse detected on A ends the session on B', async () => {
      const { account, session } = await onA()
      const second = await refreshOk(b!, session.refresh_token)
      const next = await refreshOk(b!, second.refresh_token)
      await assertAccessWorks(b!, next.access_token, account.id)
      // The first token comes back, after the session moved on: a replay.
      assertProblem(await refresh(a!, session.refresh_token), 401)
      await assertAccessRefused(b!, next.access_token, 'after reuse on A, on B')
      await assertRefreshRefused(b!, next.refresh_token, 'after reuse on A, on B')
    })

    test('DELETE /sessions/{id} through B is seen by A', async () => {
      const { account, session } = await onA()
      const other = await loginPair(a!, account, 'other-device')
      await assertAccessWorks(a!, other.access_token, account.id)
      const response = await deleteSession(b!, session.access_token, sidOf(other.access_token))
      assert.equal(response.statusCode, 204, response.body)
      await assertAccessRefused(a!, other.access_token, 'deleted on B, on A')
      await assertAccessWorks(a!, session.access_token, account.id, 'the caller, on A')
    })

    test('a password change through A refuses the other sessions on B', async () => {
      const { account, session } = await onA()
      const other = await loginPair(b!, account, 'other-device')
      const response = await changePassword(a!, session.access_token, {
        current_password: account.password,
        new_password: `new ${account.password}`,
      })
      assert.equal(response.statusCode, 204, response.body)
      await assertAccessRefused(b!, other.access_token, 'other session, on B')
      await assertAccessWorks(b!, session.access_token, account.id, 'current session, on B')
    })
  })
})

// ------------------------------------------------------------------ Redis going away

const outageSkip = !REDIS_URL
  ? 'TEST_REDIS_URL is not set'
  : !existsSync(REDIS_SERVER)
    ? `${REDIS_SERVER} is not installed`
    : false

describeEachEngine('when Redis goes away', (ctx) => {
  describe('an instance on its own redis-server', { skip: outageSkip }, () => {
    const prefix = uniquePrefix('outage')
    let port: number
    let child: ChildProcess | undefined
    let app: FastifyInstance | undefined

    const redisUp = () => child !== undefined && child.exitCode === null && child.signalCode === null

    /** Our redis-server is running and the app is connected to it (whatever an earlier test left). */
    async function ensureRedis() {
      if (!redisUp()) child = await startRedis(port)
      await until(() => app!.redis?.status === 'ready', 'the app is connected to Redis')
    }

    async function restartRedis() {
      await stopRedis(child)
      await until(() => app!.redis?.status !== 'ready', 'the app notices that Redis is gone')
      child = await startRedis(port)
      await until(() => app!.redis?.status === 'ready', 'the app reconnects to Redis')
    }

    /** A client of our own, to look into Redis or to change its settings. */
    async function withProbe<T>(work: (probe: Redis) => Promise<T>): Promise<T> {
      const probe = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true, maxRetriesPerRequest: 1 })
      await probe.connect()
      try {
        return await work(probe)
      } finally {
        probe.disconnect()
      }
    }

    /** A user with a session that is kept and one that was logged out while Redis was fine. */
    async function keptAndLoggedOut() {
      const { account, session: kept } = await userWithSession(app!)
      const loggedOut = await loginPair(app!, account, 'logged-out-device')
      assert.equal((await logout(app!, loggedOut.access_token)).statusCode, 204)
      await assertAccessRefused(app!, loggedOut.access_token, 'logged out, Redis up')
      await assertAccessWorks(app!, kept.access_token, account.id, 'kept, Redis up')
      return { account, kept, loggedOut }
    }

    before(async () => {
      port = await freePort()
      child = await startRedis(port)
      const config = testConfig({
        DATABASE_URL: ctx.databaseUrl,
        REDIS_URL: `redis://127.0.0.1:${port}`,
        REDIS_KEY_PREFIX: prefix,
      })
      app = await buildApp(config, { logger: false })
      await app.ready()
    })
    after(async () => {
      // The child first: a frozen Redis must not hold the app's shutdown (SIGKILL ends a stopped process too).
      try {
        await stopRedis(child)
      } finally {
        await app?.close()
      }
    })

    test(
      'while Redis is down the revocation list decides (never a 500); after a restart it works again',
      { timeout: 30_000 },
      async () => {
        await ensureRedis()
        const { account, kept, loggedOut } = await keptAndLoggedOut()
        const duringOutage = await loginPair(app!, account, 'logged-out-during')

        await stopRedis(child)
        await until(() => app!.redis?.status !== 'ready', 'the app notices that Redis is gone')

        // Down: a valid token works, a logged-out one is refused, nothing answers 500.
        await assertAccessWorks(app!, kept.access_token, account.id, 'kept, Redis down')
        await assertAccessRefused(app!, loggedOut.access_token, 'logged out, Redis down')
        assert.equal((await listSessions(app!, kept.access_token)).statusCode, 200)
        // A logout while Redis is down still ends the session (the database has it).
        const outageLogout = await logout(app!, duringOutage.access_token)
        assert.equal(outageLogout.statusCode, 204, outageLogout.body)
        await assertAccessRefused(app!, duringOutage.access_token, 'logged out while Redis was down')
        await assertAccessWorks(app!, kept.access_token, account.id, 'kept, after a logout while down')

        // Back, empty (no persistence): nothing revoked before or during the outage comes back to life.
        child = await startRedis(port)
        await until(() => app!.redis?.status === 'ready', 'the app reconnects to Redis')
        await assertAccessWorks(app!, kept.access_token, account.id, 'kept, Redis back')
        await assertAccessRefused(app!, loggedOut.access_token, 'logged out before the outage, Redis back')
        await assertAccessRefused(app!, duringOutage.access_token, 'logged out during the outage, Redis back')

        // And Redis is in use again: a new logout lands in it.
        assert.equal((await logout(app!, kept.access_token)).statusCode, 204)
        await assertAccessRefused(app!, kept.access_token, 'logged out after the outage')
        const keys = await withProbe((probe) => keysUnder(probe, prefix))
        assert.ok(
          keys.some((key) => key.includes(sidOf(kept.access_token))),
          keys.join(', '),
        )
      },
    )

    test(
      'Redis restarted empty: sessions logged out before the restart stay refused',
      { timeout: 30_000 },
      async () => {
        await ensureRedis()
        const { account, kept, loggedOut } = await keptAndLoggedOut()
        await restartRedis()
        await assertAccessRefused(app!, loggedOut.access_token, 'logged out before the restart')
        await assertAccessWorks(app!, kept.access_token, account.id, 'kept')
      },
    )

    test(
      'Redis emptied under a running instance (FLUSHALL): logged-out sessions stay refused',
      { timeout: 30_000 },
      async () => {
        await ensureRedis()
        const { account, kept, loggedOut } = await keptAndLoggedOut()
        await withProbe(async (probe) => {
          await probe.flushall()
          assert.deepEqual(await keysUnder(probe, prefix), [])
        })
        await assertAccessRefused(app!, loggedOut.access_token, 'logged out before the flush')
        await assertAccessWorks(app!, kept.access_token, account.id, 'kept')
      },
    )

    test(
      'Redis refusing writes (out of memory): a logout still takes effect, then and afterwards',
      { timeout: 30_000 },
      async () => {
        await ensureRedis()
        const { account, session: kept } = await userWithSession(app!)
        const target = await loginPair(app!, account, 'logged-out-while-redis-is-full')
        await withProbe(async (probe) => {
          await probe.config('SET', 'maxmemory', '1')
          try {
            const response = await logout(app!, target.access_token)
            assert.equal(response.statusCode, 204, response.body)
            // The write was refused: nothing under the prefix names that session.
            const keys = await keysUnder(probe, prefix)
            assert.equal(
              keys.some((key) => key.includes(sidOf(target.access_token))),
              false,
              keys.join(', '),
            )
            await assertAccessRefused(app!, target.access_token, 'logged out while Redis refused writes')
            await assertAccessWorks(app!, kept.access_token, account.id, 'kept, Redis refusing writes')
          } finally {
            await probe.config('SET', 'maxmemory', '0')
          }
          // Redis never got it; this instance's list (following the database) still has it.
          await assertAccessRefused(app!, target.access_token, 'logged out while Redis refused writes, later')
        })
      },
    )

    test(
      'a Redis that stops answering (frozen) holds no request: the revocation list decides',
      { timeout: 30_000 },
      async () => {
        await ensureRedis()
        const { account, kept, loggedOut } = await keptAndLoggedOut()
        const duringFreeze = await loginPair(app!, account, 'logged-out-during-freeze')

        // The process stops answering but keeps its connections open: no error, just silence.
        child!.kill('SIGSTOP')
        try {
          await assertAccessWorks(app!, kept.access_token, account.id, 'kept, Redis frozen')
          await assertAccessRefused(app!, loggedOut.access_token, 'logged out, Redis frozen')
          const frozenLogout = await logout(app!, duringFreeze.access_token)
          assert.equal(frozenLogout.statusCode, 204, frozenLogout.body)
          await assertAccessRefused(app!, duringFreeze.access_token, 'logged out while Redis was frozen')
        } finally {
          child!.kill('SIGCONT')
        }

        await assertAccessWorks(app!, kept.access_token, account.id, 'kept, Redis answering again')
        await assertAccessRefused(app!, loggedOut.access_token, 'logged out before, Redis answering again')
        await assertAccessRefused(app!, duringFreeze.access_token, 'logged out during, Redis answering again')
      },
    )
  })
})
