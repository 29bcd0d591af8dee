/** Two instances sharing one Redis: a session ended on one is refused on the other at the very next request. */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { buildApp } from '../../../src/app.js'
import { assertProblem, describeEachEngine, testConfig } from '../../support/app.js'
import {
  REDIS_URL,
  sidOf,
  loginPair,
  userWithSession,
  refresh,
  logout,
  deleteSession,
  changePassword,
  assertAccessWorks,
  assertAccessRefused,
  assertRefreshRefused,
  refreshOk,
  assertSessionAlive,
  keysUnder,
  deleteKeysUnder,
  uniquePrefix,
} from '../../routes/sessions/support.js'

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
