/**
 * Login starts a session with a refresh token, POST /token/refresh rotates it, and a session ends
 * SESSION_MAX_LIFETIME_DAYS after its login whatever its activity.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeJwt } from 'jose'
import { assertProblem, describeEachEngine, register } from '../../support/app.js'
import {
  REFRESH_TOKEN_SHAPE,
  USER_AGENT,
  CLIENT_IP,
  type TokenPair,
  type SessionItem,
  sha256,
  sidOf,
  neverIssued,
  loginPair,
  userWithSession,
  refresh,
  listSessions,
  assertAccessWorks,
  assertRefreshRefused,
  refreshOk,
  assertSessionAlive,
  backdateRotation,
  DUPLICATE_WINDOW_MS,
  DAY_MS,
  refreshTokenRows,
  sessionRow,
  invalidFields,
} from './support.js'

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
