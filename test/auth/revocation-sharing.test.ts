/**
 * The revocation list's work beside the checks: what it writes to Redis, how it follows the
 * database on its own, how concurrent checks share one read, and that a later expiry is never
 * shortened by an older row. Redis is a recording stand-in here (test/auth/revocation/ runs the
 * real one, and stops it).
 */
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'node:test'
import type { Redis } from 'ioredis'
import { createRevocationList, SYNC_INTERVAL_MS, type RevokedSession } from '../../src/auth/revocation.js'
import { MINUTE, SECOND, TestClock } from '../support/clock.js'

const TTL = 16 * MINUTE

/** A Redis that answers: records what is written, and knows the keys it was told of. */
function recordingRedis(existing: string[] = []) {
  const sets: unknown[][] = []
  const execs: number[] = []
  const asked: string[] = []
  const told: unknown[] = []
  const client = {
    exists: async (key: string) => {
      asked.push(key)
      return existing.includes(key) ? 1 : 0
    },
    pipeline: () => {
      const pipeline = {
        set: (...args: unknown[]) => {
          sets.push(args)
          return pipeline
        },
        exec: async () => {
          execs.push(sets.length)
          return sets.map(() => [null, 'OK'])
        },
      }
      return pipeline
    },
  } as unknown as Redis
  const monitor = { name: 'redis', available: true, failed: (error: unknown) => told.push(error) }
  return { redis: { client, keyPrefix: 'app:', monitor: monitor as never }, sets, execs, asked, told }
}

function listWith(
  clock: TestClock,
  rows: RevokedSession[],
  redis?: ReturnType<typeof recordingRedis>['redis'],
) {
  const reads: Date[] = []
  const failures: unknown[] = []
  let failing = false
  const list = createRevocationList({
    ttlMs: TTL,
    revokedSince: async (since) => {
      reads.push(since)
      if (failing) throw new Error('database: connection refused')
      return rows.filter((row) => row.revokedAt >= since)
    },
    onSyncFailure: (error) => failures.push(error),
    now: clock.now,
    redis,
  })
  return { list, reads, failures, fail: () => (failing = true) }
}

test('a revocation is written to Redis under the prefix, for as long as an access token lives', async () => {
  const { redis, sets, execs, told } = recordingRedis()
  const { list } = listWith(new TestClock(), [], redis)
  await list.start()
  await list.revoke(['s1', 's2'])
  assert.deepEqual(sets, [
    ['app:revoked-session:s1', '1', 'PX', TTL],
    ['app:revoked-session:s2', '1', 'PX', TTL],
  ])
  assert.deepEqual(execs, [2], 'one round trip for both')
  await list.revoke([])
  assert.deepEqual(execs, [2], 'nothing to write, no call')
  assert.deepEqual(told, [])
  await list.close()
})

test('a check that the list cannot answer asks Redis, and remembers a yes for the lifetime', async () => {
  const clock = new TestClock()
  const { redis, asked } = recordingRedis(['app:revoked-session:elsewhere'])
  const { list } = listWith(clock, [], redis)
  await list.start()
  assert.equal(await list.isRevoked('elsewhere'), true)
  assert.equal(await list.isRevoked('live'), false)
  assert.deepEqual(asked, ['app:revoked-session:elsewhere', 'app:revoked-session:live'])
  assert.equal(await list.isRevoked('elsewhere'), true)
  assert.equal(asked.length, 2, 'remembered: Redis is not asked again')
  clock.advance(TTL - 1)
  assert.equal(await list.isRevoked('elsewhere'), true)
  assert.equal(asked.length, 2)
  await list.close()
})

test('a later expiry is never shortened by an older row of the same session', async () => {
  const clock = new TestClock()
  const revokedNow = clock.now()
  const rows: RevokedSession[] = []
  const { list, reads } = listWith(clock, rows)
  await list.start()
  await list.revoke(['s'])
  // The database then shows an older revocation of it (another instance's, read late).
  rows.push({ sessionId: 's', revokedAt: new Date(revokedNow - 20 * SECOND) })
  clock.advance(2 * SECOND) // past the lag: the next check reads the database
  assert.equal(await list.isRevoked('other'), false)
  assert.equal(reads.length, 2)
  clock.set(revokedNow + TTL - 1)
  assert.equal(await list.isRevoked('s'), true, 'the expiry of the later revocation holds')
  await list.close()
})

test('concurrent checks of a lagging list share one read of the database', async () => {
  const clock = new TestClock()
  const { list, reads } = listWith(clock, [])
  await list.start()
  clock.advance(2 * SECOND)
  assert.deepEqual(await Promise.all([list.isRevoked('a'), list.isRevoked('b'), list.isRevoked('c')]), [
    false,
    false,
    false,
  ])
  assert.equal(reads.length, 2, 'the start, then one read for the three checks')
  await list.close()
})

test('the list follows the database on its own, reports a failed read, and stops when closed', async () => {
  const clock = new TestClock()
  const { list, reads, failures, fail } = listWith(clock, [])
  await list.start()
  await sleep(SYNC_INTERVAL_MS * 2.5)
  assert.ok(reads.length >= 2, `read every ${SYNC_INTERVAL_MS} ms without a check (${reads.length} reads)`)
  fail()
  await sleep(SYNC_INTERVAL_MS * 2.5)
  assert.ok(failures.length >= 1, 'a failed read is reported (the database monitor hears of it)')
  await list.close()
  const afterClose = reads.length
  await sleep(SYNC_INTERVAL_MS * 2.5)
  assert.equal(reads.length, afterClose, 'no read after close')
  assert.equal(await list.isRevoked('anything'), false)
})

test('closing forgets the revocations it held', async () => {
  const clock = new TestClock()
  const { list } = listWith(clock, [])
  await list.start()
  await list.revoke(['s'])
  await list.close()
  assert.equal(await list.isRevoked('s'), false)
})

test('a pipeline that answers nothing (ioredis gives null when it was not run) is no failure', async () => {
  const told: unknown[] = []
  const client = {
    exists: async () => 0,
    pipeline: () => ({ set: () => undefined, exec: async () => null }),
  } as unknown as Redis
  const redis = {
    client,
    keyPrefix: 'app:',
    monitor: { available: true, failed: (e: unknown) => told.push(e) },
  }
  const { list } = listWith(new TestClock(), [], redis as never)
  await list.start()
  await list.revoke(['s'])
  assert.deepEqual(told, [])
  await list.close()
})

test('expired entries are dropped at the first read of the database after their end; live ones stay', async () => {
  const clock = new TestClock()
  const start = clock.now()
  const { list } = listWith(clock, [])
  await list.start()
  await list.revoke(['early'])
  clock.set(start + MINUTE)
  await list.revoke(['late'])
  assert.equal(list.size, 2)
  clock.set(start + TTL)
  assert.equal(await list.isRevoked('other'), false, 'a check past the lag reads the database')
  assert.equal(list.size, 1, '"early" ended exactly now and is dropped')
  clock.set(start + MINUTE + TTL - 1)
  assert.equal(await list.isRevoked('late'), true)
  assert.equal(list.size, 1)
  await list.close()
  assert.equal(list.size, 0)
})
