/**
 * What each refused login, refresh and session request says, word for word and header by header:
 * a refresh token or a password is no bearer credential, so its 401 carries the bare challenge
 * (RFC 6750 §3), and every refused refresh, whatever the reason, is the same answer.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, bearer, describeEachEngine, register, uniqueUser } from '../../support/app.js'
import { deleteSession, loginPair, neverIssued, refresh, refreshOk, type Reply } from './support.js'

const INVALID_REFRESH = 'The refresh token is invalid or expired; log in again.'

function assertRefusedRefresh(response: Reply, what: string) {
  const problem = assertProblem(response, 401)
  assert.equal(problem.detail, INVALID_REFRESH, what)
  assert.equal(response.headers['www-authenticate'], 'Bearer realm="api"', `${what}: a bare challenge`)
}

describeEachEngine('refusals of logins, refreshes and sessions', (ctx) => {
  const newAccount = () => register(ctx.app, uniqueUser())

  test('a wrong password: 401 "Incorrect username or password." with a bare challenge', async () => {
    const account = await newAccount()
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/login',
      payload: { username: account.email, password: 'not the password' },
    })
    assert.equal(assertProblem(response, 401).detail, 'Incorrect username or password.')
    assert.equal(response.headers['www-authenticate'], 'Bearer realm="api"')
  })

  test('every refused refresh is the same 401: unknown, reused, of a deactivated or deleted account', async () => {
    assertRefusedRefresh(await refresh(ctx.app, neverIssued()), 'never issued')

    const account = await newAccount()
    const first = await loginPair(ctx.app, account)
    await refreshOk(ctx.app, first.refresh_token)
    // Long after the rotation it would be reuse; within the window it is a duplicate. Either way
    // the deactivated account below gets no token.
    const second = await loginPair(ctx.app, account)
    await ctx.app.repos.users.update(account.id, { is_active: false })
    assertRefusedRefresh(await refresh(ctx.app, second.refresh_token), 'a deactivated account')
    assertRefusedRefresh(await refresh(ctx.app, first.refresh_token), 'a duplicate of a deactivated account')

    const deleted = await newAccount()
    const pair = await loginPair(ctx.app, deleted)
    await ctx.app.repos.users.delete(deleted.id)
    assertRefusedRefresh(await refresh(ctx.app, pair.refresh_token), 'a deleted account')
  })

  test('ending a session that is not one of yours: 404 saying you have none with that id', async () => {
    const [owner, other] = [await newAccount(), await newAccount()]
    const ownerPair = await loginPair(ctx.app, owner)
    const otherPair = await loginPair(ctx.app, other)
    const sessions = await ctx.app.inject({ url: '/sessions', headers: bearer(otherPair.access_token) })
    const otherSession = sessions.json<{ items: { id: string }[] }>().items[0]!.id
    const response = await deleteSession(ctx.app, ownerPair.access_token, otherSession)
    assert.equal(assertProblem(response, 404).detail, 'You have no active session with this id.')
  })
})
