/**
 * The sessions an instance has found in the database: read once each, honoured only for the user
 * they were issued to, never remembered when revoked or unknown, and bounded in number.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createKnownSessions, type SessionOwnership } from '../../src/auth/known-sessions.js'

function sessionsIn(rows: Record<string, SessionOwnership>, capacity?: number) {
  const reads: string[] = []
  const known = createKnownSessions(async (id) => {
    reads.push(id)
    return rows[id]
  }, capacity)
  return { known, reads }
}

test('an issued session is read once, then known; only for the user it was issued to', async () => {
  const { known, reads } = sessionsIn({ s1: { user_id: 1, revoked_at: null } })
  assert.equal(await known.check('s1', 1), 'issued')
  assert.equal(await known.check('s1', 1), 'issued')
  assert.deepEqual(reads, ['s1'], 'one read')
  assert.equal(await known.check('s1', 2), 'unknown', 'another user, even once known')
  assert.deepEqual(reads, ['s1'])
})

test('unknown, deleted-user and other-user sessions are unknown; revoked ones revoked; none is remembered', async () => {
  const { known, reads } = sessionsIn({
    deleted: { user_id: null, revoked_at: null },
    theirs: { user_id: 2, revoked_at: null },
    ended: { user_id: 1, revoked_at: new Date() },
  })
  for (let round = 0; round < 2; round++) {
    assert.equal(await known.check('missing', 1), 'unknown')
    assert.equal(await known.check('deleted', 1), 'unknown')
    assert.equal(await known.check('theirs', 1), 'unknown')
    assert.equal(await known.check('ended', 1), 'revoked')
  }
  assert.equal(reads.length, 8, 'read again each time')
})

test('past its capacity, the oldest known session is forgotten (and read again when next used)', async () => {
  const { known, reads } = sessionsIn(
    {
      a: { user_id: 1, revoked_at: null },
      b: { user_id: 1, revoked_at: null },
      c: { user_id: 1, revoked_at: null },
    },
    2,
  )
  for (const id of ['a', 'b']) await known.check(id, 1)
  await known.check('b', 1)
  assert.deepEqual(reads, ['a', 'b'])
  await known.check('c', 1)
  await known.check('b', 1)
  await known.check('c', 1)
  assert.deepEqual(reads, ['a', 'b', 'c'], 'b and c stay known')
  await known.check('a', 1)
  assert.deepEqual(reads, ['a', 'b', 'c', 'a'], 'a was forgotten')
})
