/**
 * A refresh is refused at the first of three ends, each checked on its own: the session's expiry,
 * the refresh token's own expiry, and 30 days from the login. They coincide for rows this version
 * writes; rows written otherwise (by an older version, or edited by hand) must not outlive any of
 * them, so each is tested here with the other two moved out of the way.
 */
import { test } from 'node:test'
import { describeEachEngine, register, uniqueUser } from '../../support/app.js'
import { HOUR, SECOND, TestClock } from '../../support/clock.js'
import { assertRefreshRefused, loginPair, refreshOk, sha256, sidOf } from './support.js'

const DAY = 24 * HOUR
const clock = new TestClock()

describeEachEngine(
  'the stored ends of a session, each on its own',
  (ctx) => {
    /** A session logged in at a whole second, and its tokens. */
    async function session() {
      const loggedIn = Math.floor(Date.now() / SECOND) * SECOND
      clock.set(loggedIn)
      const pair = await loginPair(ctx.app, await register(ctx.app, uniqueUser()))
      return { loggedIn, pair, id: sidOf(pair.access_token) }
    }
    const setSessionExpiry = (id: string, at: number) =>
      ctx.app.db
        .updateTable('sessions')
        .set({ expires_at: new Date(at) })
        .where('id', '=', id)
        .execute()
    const setTokenExpiry = (refreshToken: string, at: number) =>
      ctx.app.db
        .updateTable('refresh_tokens')
        .set({ expires_at: new Date(at) })
        .where('token_hash', '=', sha256(refreshToken))
        .execute()

    test('the session’s expiry, with the token’s later', async () => {
      const { loggedIn, pair, id } = await session()
      await setTokenExpiry(pair.refresh_token, loggedIn + 20 * DAY)
      await setSessionExpiry(id, loggedIn + 5 * DAY)
      clock.set(loggedIn + 5 * DAY)
      await assertRefreshRefused(ctx.app, pair.refresh_token, 'at the session’s end')
    })

    test('the refresh token’s own expiry, with the session’s later', async () => {
      const early = await session()
      await setSessionExpiry(early.id, early.loggedIn + 20 * DAY)
      await setTokenExpiry(early.pair.refresh_token, early.loggedIn + 5 * DAY)
      clock.set(early.loggedIn + 5 * DAY - SECOND)
      await refreshOk(ctx.app, early.pair.refresh_token, 'in the token’s last second')

      const late = await session()
      await setSessionExpiry(late.id, late.loggedIn + 20 * DAY)
      await setTokenExpiry(late.pair.refresh_token, late.loggedIn + 5 * DAY)
      clock.set(late.loggedIn + 5 * DAY)
      await assertRefreshRefused(ctx.app, late.pair.refresh_token, 'at the token’s end')
    })

    test('30 days from the login, with both stored expiries later (a row from before the cap)', async () => {
      const early = await session()
      await setSessionExpiry(early.id, early.loggedIn + 60 * DAY)
      await setTokenExpiry(early.pair.refresh_token, early.loggedIn + 60 * DAY)
      clock.set(early.loggedIn + 30 * DAY - SECOND)
      await refreshOk(ctx.app, early.pair.refresh_token, 'the last second of the 30 days')

      const late = await session()
      await setSessionExpiry(late.id, late.loggedIn + 60 * DAY)
      await setTokenExpiry(late.pair.refresh_token, late.loggedIn + 60 * DAY)
      clock.set(late.loggedIn + 30 * DAY)
      await assertRefreshRefused(ctx.app, late.pair.refresh_token, 'at 30 days, whatever the rows say')
    })
  },
  { build: { clock } },
)
