/** Logout, the list of one's sessions and deleting one: the ended session's tokens are refused on the very next request. */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { assertProblem, describeEachEngine } from '../../support/app.js'
import {
  USER_AGENT,
  CLIENT_IP,
  type SessionItem,
  sidOf,
  loginPair,
  userWithSession,
  logout,
  listSessions,
  deleteSession,
  assertAccessWorks,
  assertAccessRefused,
  refreshOk,
  assertSessionAlive,
  assertSessionDead,
  sessionRow,
  invalidFields,
} from './support.js'

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
