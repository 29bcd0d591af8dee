/**
 * Closing the revocation list while one of its reads of the database is under way: the read's
 * end schedules no further read, and a read that fails once the list is closed (the app shutting
 * down, its database going with it) is no failure to report.
 */
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'node:test'
import { createRevocationList, SYNC_INTERVAL_MS } from '../../src/auth/revocation.js'
import { TestClock } from '../support/clock.js'

/** A database whose reads after the first wait until the test lets them end (and can fail). */
function heldDatabase() {
  let reads = 0
  let release: ((fail: boolean) => void) | undefined
  const started: (() => void)[] = []
  return {
    reads: () => reads,
    revokedSince: async () => {
      reads += 1
      if (reads === 1) return []
      for (const notify of started.splice(0)) notify()
      const fail = await new Promise<boolean>((resolve) => (release = resolve))
      if (fail) throw new Error('database: the pool is closed')
      return []
    },
    nextReadStarted: () => new Promise<void>((resolve) => started.push(resolve)),
    end: (fail: boolean) => release?.(fail),
  }
}

for (const fail of [false, true])
  test(`a read ${fail ? 'failing' : 'ending'} after close: no report, and no read after it`, async (t) => {
    const database = heldDatabase()
    const failures: unknown[] = []
    const list = createRevocationList({
      ttlMs: 60_000,
      revokedSince: database.revokedSince,
      onSyncFailure: (error) => failures.push(error),
      now: new TestClock().now,
    })
    // The list's timer does not keep a process alive (unref'd): this test's own wait must.
    const keepAlive = setInterval(() => {}, 1000)
    t.after(() => clearInterval(keepAlive))
    await list.start()
    await database.nextReadStarted() // the list's own follow-up read, SYNC_INTERVAL_MS later
    await list.close()
    database.end(fail)
    await sleep(SYNC_INTERVAL_MS * 3)
    assert.equal(database.reads(), 2, 'no read after the one under way at close')
    assert.deepEqual(failures, [], 'nothing reported')
  })
