/**
 * The recovery codes repository, on every engine: a set replaced whole, each condition of a use
 * on its own, the claim that exactly one of two concurrent uses of one code wins, two
 * regenerations at once leaving one whole set, and the codes going with their user.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateRecoveryCodes, hashRecoveryCode } from '../../src/auth/recovery-codes.js'
import { isUniqueViolation } from '../../src/db/errors.js'
import { describeEachEngine } from '../support/app.js'
import { at, insertPlainUser, raceInTransactions } from './support.js'

const ROUNDS = 5
/** The hashes of `count` new random codes (80 bits each: no two calls share one). */
function newHashes(count: number): string[] {
  const hashes: string[] = []
  while (hashes.length < count) hashes.push(...generateRecoveryCodes().map(hashRecoveryCode))
  return hashes.slice(0, count)
}

describeEachEngine('recovery codes repository', (ctx) => {
  const codes = () => ctx.app.repos.recoveryCodes
  const newUser = () => insertPlainUser(ctx.app.repos)
  /** The user's rows, by hash. */
  const rowsOf = async (userId: number) =>
    (
      await ctx.app.db
        .selectFrom('recovery_codes')
        .select(['code_hash', 'created_at', 'used_at'])
        .where('user_id', '=', userId)
        .orderBy('code_hash')
        .execute()
    ).map((row) => ({
      ...row,
      created_at: row.created_at.getTime(),
      used_at: row.used_at?.getTime() ?? null,
    }))
  const unused = (hashes: string[], created: Date) =>
    [...hashes].sort().map((code_hash) => ({ code_hash, created_at: created.getTime(), used_at: null }))

  test('replaceAll: stores the codes unused; the whole earlier set goes, used or not; another user’s stays', async () => {
    const [user, other] = [await newUser(), await newUser()]
    const [first, second, theirs] = [newHashes(10), newHashes(10), newHashes(3)]
    assert.equal(await codes().replaceAll(user, first, at(0)), true)
    assert.equal(await codes().replaceAll(other, theirs, at(0)), true)
    assert.deepEqual(await rowsOf(user), unused(first, at(0)))
    assert.equal(await codes().consume(user, first[0]!, at(1)), true)
    assert.equal(await codes().replaceAll(user, second, at(2)), true)
    assert.deepEqual(await rowsOf(user), unused(second, at(2)))
    assert.equal(await codes().consume(user, first[1]!, at(3)), false, 'an old code no longer works')
    assert.deepEqual(await rowsOf(other), unused(theirs, at(0)))
  })

  test('replaceAll: an empty list leaves the user without codes', async () => {
    const user = await newUser()
    await codes().replaceAll(user, newHashes(2), at(0))
    assert.equal(await codes().replaceAll(user, [], at(1)), true)
    assert.deepEqual(await rowsOf(user), [])
  })

  test('replaceAll: false for a user that does not exist, and nothing is written', async () => {
    const user = await newUser()
    await ctx.app.repos.users.delete(user)
    assert.equal(await codes().replaceAll(user, newHashes(2), at(0)), false)
    assert.deepEqual(await rowsOf(user), [])
  })

  test('a hash is unique per user, not across users', async () => {
    const [user, other] = [await newUser(), await newUser()]
    const [hash] = newHashes(1)
    await assert.rejects(codes().replaceAll(user, [hash!, hash!], at(0)), isUniqueViolation)
    assert.deepEqual(await rowsOf(user), [])
    await codes().replaceAll(user, [hash!], at(0))
    await codes().replaceAll(other, [hash!], at(0))
    assert.deepEqual(await rowsOf(other), unused([hash!], at(0)))
  })

  test('consume: once, only that user’s code, and only that code', async () => {
    const [user, other] = [await newUser(), await newUser()]
    const hashes = newHashes(3)
    await codes().replaceAll(user, hashes, at(0))
    // The same hash for another user: only the user tells the two rows apart.
    await codes().replaceAll(other, [hashes[0]!], at(0))
    assert.equal(await codes().consume(user, newHashes(1)[0]!, at(1)), false, 'not a code of the user')
    assert.equal(await codes().consume(user, hashes[0]!, at(5)), true)
    assert.equal(await codes().consume(user, hashes[0]!, at(6)), false, 'twice')
    assert.deepEqual(
      await rowsOf(user),
      unused(hashes, at(0)).map((row) =>
        row.code_hash === hashes[0] ? { ...row, used_at: at(5).getTime() } : row,
      ),
    )
    assert.deepEqual(await rowsOf(other), unused([hashes[0]!], at(0)), 'another user’s row is untouched')
    assert.equal(await codes().consume(other, hashes[1]!, at(1)), false, 'another user’s code')
  })

  test('countUnused: the user’s unused codes only', async () => {
    const [user, other] = [await newUser(), await newUser()]
    const hashes = newHashes(4)
    assert.equal(await codes().countUnused(user), 0)
    await codes().replaceAll(user, hashes, at(0))
    await codes().replaceAll(other, newHashes(7), at(0))
    assert.equal(await codes().countUnused(user), 4)
    await codes().consume(user, hashes[2]!, at(1))
    await codes().consume(user, hashes[3]!, at(1))
    assert.equal(await codes().countUnused(user), 2)
    assert.equal(await codes().countUnused(other), 7)
  })

  test('deleteAll: every code of the user, used or not, and no other’s; answers how many', async () => {
    const [user, other] = [await newUser(), await newUser()]
    const hashes = newHashes(3)
    await codes().replaceAll(user, hashes, at(0))
    await codes().replaceAll(other, newHashes(2), at(0))
    await codes().consume(user, hashes[0]!, at(1))
    assert.equal(await codes().deleteAll(user), 3)
    assert.deepEqual(await rowsOf(user), [])
    assert.equal(await codes().countUnused(other), 2)
    assert.equal(await codes().deleteAll(user), 0)
  })

  test('deleting the user deletes the codes', async () => {
    const user = await newUser()
    await codes().replaceAll(user, newHashes(2), at(0))
    await ctx.app.repos.users.delete(user)
    assert.deepEqual(await rowsOf(user), [])
  })

  test('consume: of two concurrent uses of one code, exactly one wins', async () => {
    const user = await newUser()
    const hashes = newHashes(ROUNDS)
    await codes().replaceAll(user, hashes, at(0))
    for (const [round, hash] of hashes.entries()) {
      const outcomes = await raceInTransactions(ctx, 2, (repos) =>
        repos.recoveryCodes.consume(user, hash, at(1)),
      )
      assert.deepEqual(outcomes.sort(), [false, true], `round ${round}`)
    }
    assert.equal(await codes().countUnused(user), 0)
  })

  test('replaceAll: two regenerations at once leave one whole set, never both', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const user = await newUser()
      await codes().replaceAll(user, newHashes(10), at(0))
      const sets = [newHashes(10), newHashes(10)]
      const outcomes = await raceInTransactions(ctx, 2, (repos, party) =>
        repos.recoveryCodes.replaceAll(user, sets[party]!, at(1)),
      )
      assert.deepEqual(outcomes, [true, true])
      const left = (await rowsOf(user)).map((row) => row.code_hash)
      assert.ok(
        sets.some((set) => JSON.stringify([...set].sort()) === JSON.stringify(left)),
        `round ${round}: ${left.length} codes left`,
      )
    }
  })

  test('replaceAll and deleteAll at once: the user ends with no codes or with the new set whole', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const user = await newUser()
      await codes().replaceAll(user, newHashes(10), at(0))
      const fresh = newHashes(10)
      const [, deleted] = await raceInTransactions<boolean | number>(ctx, 2, (repos, party) =>
        party === 0
          ? repos.recoveryCodes.replaceAll(user, fresh, at(1))
          : repos.recoveryCodes.deleteAll(user),
      )
      // Whichever runs first, the removal takes a whole set of 10: the old one (and the new one
      // stays whole) or the new one (and nothing is left). Never the old set alone with the new
      // one slipping past it.
      assert.equal(deleted, 10, `round ${round}`)
      const left = (await rowsOf(user)).map((row) => row.code_hash)
      assert.ok(
        left.length === 0 || JSON.stringify(left) === JSON.stringify([...fresh].sort()),
        `round ${round}`,
      )
    }
  })
})
