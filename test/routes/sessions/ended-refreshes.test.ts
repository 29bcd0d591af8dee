/**
 * Refresh tokens of sessions that ended: the same 401 with a bare challenge whether the token is
 * unused or a duplicate, and the events each leaves in the audit trail (what was ended, and how
 * long after its rotation a duplicate came).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, bearer, describeEachEngine, register, uniqueUser } from '../../support/app.js'
import { deleteSession, loginPair, logout, refresh, refreshOk, sidOf, type Reply } from './support.js'

function assertBareRefusal(response: Reply, what: string) {
  assertProblem(response, 401)
  assert.equal(response.headers['www-authenticate'], 'Bearer realm="api"', what)
}

describeEachEngine('refresh tokens of ended sessions', (ctx) => {
  const events = (sessionId: string) =>
    ctx.app.db
      .selectFrom('audit_events')
      .select(['event', 'outcome', 'user_id', 'details'])
      .where('details', 'like', `%${sessionId}%`)
      .orderBy('id')
      .execute()

  test('a logged-out session: its unused refresh token and a duplicate of the rotated one are both refused', async () => {
    const account = await register(ctx.app, uniqueUser())
    const first = await loginPair(ctx.app, account)
    const second = await refreshOk(ctx.app, first.refresh_token)
    assert.equal((await logout(ctx.app, second.access_token)).statusCode, 204)
    assertBareRefusal(await refresh(ctx.app, second.refresh_token), 'the unused token of an ended session')
    assertBareRefusal(
      await refresh(ctx.app, first.refresh_token),
      'a duplicate within the window, session ended',
    )
  })

  test('a duplicate answered with the successor is recorded with the time since the rotation', async () => {
    const account = await register(ctx.app, uniqueUser())
    const first = await loginPair(ctx.app, account)
    const second = await refreshOk(ctx.app, first.refresh_token)
    const again = await refreshOk(ctx.app, first.refresh_token)
    assert.equal(again.refresh_token, second.refresh_token)
    const sid = sidOf(first.access_token)
    const [duplicate] = (await events(sid)).filter((row) => row.event === 'refresh_token_duplicate')
    assert.ok(duplicate, 'one duplicate event')
    assert.equal(duplicate.outcome, 'success')
    assert.equal(duplicate.user_id, account.id)
    const details = JSON.parse(String(duplicate.details)) as {
      ms_since_rotation: unknown
      session_id: string
    }
    assert.equal(typeof details.ms_since_rotation, 'number')
    assert.equal(details.session_id, sid)
  })

  test('ending one of your sessions is recorded, naming it', async () => {
    const account = await register(ctx.app, uniqueUser())
    const current = await loginPair(ctx.app, account)
    const other = await loginPair(ctx.app, account)
    const otherSid = sidOf(other.access_token)
    assert.equal((await deleteSession(ctx.app, current.access_token, otherSid)).statusCode, 204)
    const rows = await events(otherSid)
    const revoked = rows.find((row) => row.event === 'session_revoked')
    assert.ok(revoked, `a session_revoked row: ${JSON.stringify(rows)}`)
    assert.equal(revoked.outcome, 'success')
    assert.equal(revoked.user_id, account.id)
    // And the session is over for its holder.
    const me = await ctx.app.inject({ url: '/current-user', headers: bearer(other.access_token) })
    assert.equal(me.statusCode, 401)
  })
})
