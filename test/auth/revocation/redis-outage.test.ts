/** While Redis is away (stopped, flushed, frozen), ended sessions stay refused on every instance. */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { buildApp } from '../../../src/app.js'
import { describeEachEngine, testConfig } from '../../support/app.js'
import { REDIS_SERVER, freePort, startRedis, stopRedis } from '../../support/processes.js'
import {
  REDIS_URL,
  sidOf,
  loginPair,
  userWithSession,
  logout,
  listSessions,
  assertAccessWorks,
  assertAccessRefused,
  until,
  keysUnder,
  uniquePrefix,
} from '../../routes/sessions/support.js'

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
