/**
 * A rotated refresh token presented after its duplicate window is reuse, also when its session has
 * already ended: 401 with a bare challenge, and the attempt recorded as blocked (a copy of the
 * token exists somewhere). And the odd client: a session started without a User-Agent.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, describeEachEngine, register, uniqueUser } from '../../support/app.js'
import { SECOND, TestClock } from '../../support/clock.js'
import { loginPair, logout, refresh, refreshOk, sidOf } from './support.js'

const clock = new TestClock()

describeEachEngine(
  'reuse of a refresh token after its session ended',
  (ctx) => {
    const reuseRows = (sessionId: string) =>
      ctx.app.db
        .selectFrom('audit_events')
        .select(['event', 'outcome'])
        .where('event', '=', 'refresh_token_reuse')
        .where('details', 'like', `%${sessionId}%`)
        .execute()

    test('after logout, a rotated token presented 11 s later: 401, bare challenge, recorded as blocked reuse', async () => {
      const start = Math.floor(Date.now() / SECOND) * SECOND
      clock.set(start)
      const account = await register(ctx.app, uniqueUser())
      const first = await loginPair(ctx.app, account)
      const second = await refreshOk(ctx.app, first.refresh_token)
      assert.equal((await logout(ctx.app, second.access_token)).statusCode, 204)
      clock.set(start + 11 * SECOND)
      const response = await refresh(ctx.app, first.refresh_token)
      assertProblem(response, 401)
      assert.equal(response.headers['www-authenticate'], 'Bearer realm="api"')
      assert.deepEqual(await reuseRows(sidOf(first.access_token)), [
        { event: 'refresh_token_reuse', outcome: 'blocked' },
      ])
    })

    test('a session started without a User-Agent stores none, and works', async () => {
      clock.set(Date.now())
      const account = await register(ctx.app, uniqueUser())
      const pair = await ctx.app.sessions.start(
        { id: account.id, role: 'user' },
        { ip: '192.0.2.9', userAgent: undefined },
        ['pwd'],
      )
      const row = await ctx.app.repos.sessions.findById(sidOf(pair.access_token))
      assert.equal(row?.user_agent, null)
      assert.equal(row?.ip, '192.0.2.9')
      await refreshOk(ctx.app, pair.refresh_token)
    })
  },
  { build: { clock } },
)
