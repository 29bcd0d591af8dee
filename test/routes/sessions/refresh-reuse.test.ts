/**
 * A rotated refresh token presented again ends its session (reuse), except a duplicate right after
 * a rotation, concurrent refreshes included: it gets the same new token, so that a thief racing the
 * client is exposed at the next rotation.
 */
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { before, test } from 'node:test'
import { buildApp } from '../../../src/app.js'
import { assertProblem, describeEachEngine, testConfig } from '../../support/app.js'
import {
  type TokenPair,
  sha256,
  sidOf,
  loginPair,
  userWithSession,
  refresh,
  logout,
  assertAccessWorks,
  assertAccessRefused,
  assertRefreshRefused,
  refreshOk,
  assertSessionAlive,
  assertSessionDead,
  backdateRotation,
  DUPLICATE_WINDOW_MS,
  refreshTokenRows,
  sessionRow,
} from './support.js'

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
