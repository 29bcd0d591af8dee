/**
 * The revocation list on a clock the test moves: how long an entry lives (to the millisecond), when
 * the list reads the database, and what it does when Redis fails (each branch without a Redis).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Redis } from 'ioredis'
import {
  createRevocationList,
  MAX_LAG_MS,
  type RevocationListOptions,
  type RevokedSession,
} from '../../src/auth/revocation.js'
import { bearer, describeEachEngine, registerAndLogin } from '../support/app.js'
import { MINUTE, SECOND, TestClock } from '../support/clock.js'

const TTL = 16 * MINUTE

/** A list over a database that answers `rows` (and counts the reads and what they asked). */
function listOn(clock: TestClock, rows: RevokedSession[] = [], options: Partial<RevocationListOptions> = {}) {
  const reads: Date[] = []
  const failures: unknown[] = []
  const list = createRevocationList({
    ttlMs: TTL,
    revokedSince: async (since) => {
      reads.push(since)
      return rows.filter((row) => row.revokedAt >= since)
    },
    onSyncFailure: (error) => failures.push(error),
    now: clock.now,
    ...options,
  })
  return { list, reads, failures }
}

/** A Redis client whose every command fails, and a monitor that records what it is told. */
function failingRedis(available = true) {
  const told: unknown[] = []
  let exists = 0
  const client = {
    exists: async () => {
      exists += 1
      throw new Error('redis: connection reset')
    },
    pipeline: () => ({
      set() {
        return this
      },
      exec: async () => [[new Error('redis: READONLY'), null]],
    }),
  } as unknown as Redis
  const monitor = {
    name: 'redis',
    get available() {
      return available
    },
    failed: (error: unknown) => told.push(error),
  }
  return {
    redis: { client, keyPrefix: 'test:', monitor: monitor as never },
    told,
    existsCalls: () => exists,
  }
}

test('an entry lives exactly its lifetime from the revocation, then the list forgets it', async () => {
  const clock = new TestClock()
  const { list } = listOn(clock)
  await list.start()
  const revokedAt = clock.now()
  await list.revoke(['s1'])
  clock.set(revokedAt + SECOND)
  assert.equal(await list.isRevoked('s1'), true, 'a second later')
  clock.set(revokedAt + TTL - 1)
  assert.equal(await list.isRevoked('s1'), true, 'its last millisecond')
  clock.set(revokedAt + TTL)
  assert.equal(await list.isRevoked('s1'), false, 'at its end (the access tokens have expired)')
  assert.equal(await list.isRevoked('s2'), false)
  await list.close()
})

test('revocations read from the database live their lifetime from when they were revoked', async () => {
  const clock = new TestClock()
  const revokedAt = new Date(clock.now() - MINUTE)
  const { list, reads } = listOn(clock, [{ sessionId: 'old', revokedAt }])
  await list.start()
  assert.equal(reads[0]!.getTime(), clock.now() - TTL, 'the first read goes back one lifetime')
  assert.equal(await list.isRevoked('old'), true)
  clock.set(revokedAt.getTime() + TTL - 1)
  assert.equal(await list.isRevoked('old'), true)
  clock.set(revokedAt.getTime() + TTL)
  assert.equal(await list.isRevoked('old'), false)
  await list.close()
})

test(`the list answers alone for ${MAX_LAG_MS} ms after a read; later, a check reads the database first`, async () => {
  const clock = new TestClock()
  const rows: RevokedSession[] = []
  const { list, reads } = listOn(clock, rows)
  await list.start()
  const started = clock.now()
  // Revoked by another instance: only the database knows.
  rows.push({ sessionId: 'elsewhere', revokedAt: new Date(started) })
  clock.set(started + MAX_LAG_MS)
  assert.equal(await list.isRevoked('elsewhere'), false, 'within the lag: the list as it is')
  assert.equal(reads.length, 1)
  clock.set(started + MAX_LAG_MS + 1)
  assert.equal(await list.isRevoked('elsewhere'), true, 'past the lag: read first')
  assert.equal(reads.length, 2)
  // Each later read overlaps the previous one by 30 s (a commit can land after its revoked_at).
  assert.equal(reads[1]!.getTime(), started - 30 * SECOND)
  await list.close()
})

test('a database that does not answer past the lag makes a check throw, never answer "not revoked"', async () => {
  const clock = new TestClock()
  let failing = false
  const { list } = listOn(clock, [], {
    revokedSince: async () => {
      if (failing) throw new Error('database: connection refused')
      return []
    },
  })
  await list.start()
  failing = true
  clock.advance(MAX_LAG_MS + 1)
  await assert.rejects(list.isRevoked('any'), /connection refused/)
  await list.close()
})

test('Redis failing: a check answers from the list (fail-open to the list) and tells the monitor', async () => {
  const clock = new TestClock()
  const { redis, told, existsCalls } = failingRedis()
  const { list } = listOn(clock, [], { redis })
  await list.start()
  assert.equal(list.sharedThroughRedis, true)
  assert.equal(await list.isRevoked('unknown'), false)
  assert.equal(existsCalls(), 1)
  assert.equal(told.length, 1, 'the failure is reported')
  await list.revoke(['local'])
  assert.equal(told.length, 2, 'a failed publish is reported too')
  assert.equal(await list.isRevoked('local'), true, 'the list still has it')
  await list.close()
})

test('Redis known to be down: no call is made to it at all', async () => {
  const clock = new TestClock()
  const { redis, told, existsCalls } = failingRedis(false)
  const { list } = listOn(clock, [], { redis })
  await list.start()
  await list.revoke(['s'])
  assert.equal(await list.isRevoked('other'), false)
  assert.equal(existsCalls(), 0)
  assert.equal(told.length, 0)
  await list.close()
})

const appClock = new TestClock()

describeEachEngine(
  'a logged-out session on the app clock',
  (ctx) => {
    test('stays refused until its access token expires, however much time passes before that', async () => {
      const loggedIn = Date.now()
      appClock.set(loggedIn)
      const user = await registerAndLogin(ctx.app)
      const loggedOut = await ctx.app.inject({ method: 'POST', url: '/logout', headers: user.headers })
      assert.equal(loggedOut.statusCode, 204)
      for (const later of [2 * SECOND, MINUTE, 14 * MINUTE + 59 * SECOND]) {
        appClock.set(loggedIn + later)
        const response = await ctx.app.inject({ url: '/current-user', headers: bearer(user.token) })
        assert.equal(response.statusCode, 401, `${later} ms after the logout: ${response.body}`)
      }
    })
  },
  { build: { clock: appClock } },
)
