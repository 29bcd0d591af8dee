/**
 * A session's lifetimes at their exact ends, on a clock the test moves: a refresh token lives 14
 * days from its session's last use, a session at most 30 days from its login however active it
 * is, and a rotated refresh token presented again within 10 s is a duplicate, later a reuse.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { describeEachEngine, register, uniqueUser } from '../../support/app.js'
import { HOUR, SECOND, TestClock } from '../../support/clock.js'
import {
  assertRefreshRefused,
  listSessions,
  loginPair,
  refreshOk,
  sidOf,
  type SessionItem,
} from './support.js'

const DAY = 24 * HOUR
const REFRESH_LIFETIME = 14 * DAY
const SESSION_LIFETIME = 30 * DAY
const DUPLICATE_WINDOW = 10 * SECOND

const clock = new TestClock()
const start = () => {
  const time = Math.floor(Date.now() / SECOND) * SECOND
  clock.set(time)
  return time
}

describeEachEngine(
  'session lifetimes on the server clock',
  (ctx) => {
    const newSession = async () => loginPair(ctx.app, await register(ctx.app, uniqueUser()))

    test('a refresh token works until the second before its 14 days end, and not at their end', async () => {
      const loggedIn = start()
      const [kept, late] = [await newSession(), await newSession()]
      clock.set(loggedIn + REFRESH_LIFETIME - SECOND)
      await refreshOk(ctx.app, kept.refresh_token, 'in its last second')
      clock.set(loggedIn + REFRESH_LIFETIME)
      await assertRefreshRefused(ctx.app, late.refresh_token, 'at its end')
    })

    test('each refresh gives the session 14 more days, up to 30 days from the login and no further', async () => {
      const loggedIn = start()
      let pair = await newSession()
      // Refreshed every 13 days: always before its token ends.
      for (const day of [13, 26]) {
        clock.set(loggedIn + day * DAY)
        pair = await refreshOk(ctx.app, pair.refresh_token, `day ${day}`)
      }
      const listed = await listSessions(ctx.app, pair.access_token)
      const session = listed.json<{ items: SessionItem[] }>().items.find((item) => item.current)!
      assert.equal(new Date(session.expires_at).getTime(), loggedIn + SESSION_LIFETIME, 'capped at 30 days')
      assert.equal(new Date(session.last_used_at).getTime(), loggedIn + 26 * DAY)

      clock.set(loggedIn + SESSION_LIFETIME - SECOND)
      pair = await refreshOk(ctx.app, pair.refresh_token, 'its last second')
      clock.set(loggedIn + SESSION_LIFETIME)
      await assertRefreshRefused(ctx.app, pair.refresh_token, 'after 30 days, however active')
    })

    test('an ended session is no longer listed; a live one is, until its end', async () => {
      const loggedIn = start()
      const pair = await newSession()
      clock.set(loggedIn + REFRESH_LIFETIME - SECOND)
      const fresh = await refreshOk(ctx.app, pair.refresh_token)
      const listed = (await listSessions(ctx.app, fresh.access_token)).json<{ items: SessionItem[] }>()
      assert.deepEqual(
        listed.items.map((item) => item.id),
        [sidOf(fresh.access_token)],
      )
      assert.equal(new Date(listed.items[0]!.expires_at).getTime(), loggedIn + 2 * REFRESH_LIFETIME - SECOND)
    })

    test(`a rotated refresh token presented again within ${DUPLICATE_WINDOW / SECOND} s gets the same successor; at ${DUPLICATE_WINDOW / SECOND} s it ends the session`, async () => {
      const rotatedAt = start()
      const first = await newSession()
      const successor = await refreshOk(ctx.app, first.refresh_token)
      clock.set(rotatedAt + DUPLICATE_WINDOW - 1)
      const duplicate = await refreshOk(ctx.app, first.refresh_token, 'a duplicate')
      assert.equal(duplicate.refresh_token, successor.refresh_token)

      const other = await newSession()
      clock.set(rotatedAt + DUPLICATE_WINDOW)
      await refreshOk(ctx.app, other.refresh_token)
      clock.set(rotatedAt + 2 * DUPLICATE_WINDOW)
      await assertRefreshRefused(ctx.app, other.refresh_token, 'presented again 10 s after its rotation')
    })
  },
  { build: { clock } },
)
