/**
 * The MFA tokens repository, on every engine: each condition of a lookup and of a use on its own,
 * at the exact end of a token's life; the claim that exactly one of two concurrent consumers gets
 * the token; housekeeping at its boundary; and the tokens going with their user.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { hashOpaqueToken } from '../../src/auth/opaque-tokens.js'
import { describeEachEngine } from '../support/app.js'
import { at, insertPlainUser, raceInTransactions } from './support.js'

const ROUNDS = 5
/** A millisecond before `date`. */
const justBefore = (date: Date) => new Date(date.getTime() - 1)

describeEachEngine('mfa tokens repository', (ctx) => {
  const tokens = () => ctx.app.repos.mfaTokens
  const newUser = () => insertPlainUser(ctx.app.repos)

  /** Stores a token of `userId` that expires at `expires`; answers its hash and what it says. */
  async function newToken(userId: number, expires: Date) {
    const hash = hashOpaqueToken(randomUUID())
    const record = {
      user_id: userId,
      client_hash: hashOpaqueToken(`client of ${hash}`),
      credential_stamp: hashOpaqueToken(`password of ${hash}`),
      created_at: new Date(expires.getTime() - 300_000),
      expires_at: expires,
    }
    await tokens().insert({ token_hash: hash, ...record })
    return { hash, record }
  }
  const usedAt = async (hash: string) =>
    (
      await ctx.app.db
        .selectFrom('mfa_tokens')
        .select('used_at')
        .where('token_hash', '=', hash)
        .executeTakeFirst()
    )?.used_at

  test('findUsable: what the token says, until its last millisecond; spends nothing', async () => {
    const user = await newUser()
    await newToken(user, at(100)) // another token of the user, stored first
    const { hash, record } = await newToken(user, at(10))
    assert.deepEqual(await tokens().findUsable(hash, at(0)), record)
    assert.deepEqual(await tokens().findUsable(hash, justBefore(at(10))), record, 'its last millisecond')
    assert.equal(await tokens().findUsable(hash, at(10)), undefined, 'at its expiry')
    assert.equal(await tokens().findUsable(hashOpaqueToken('unknown'), at(0)), undefined)
    assert.equal(await usedAt(hash), null, 'still unused')
    assert.ok(await tokens().consume(hash, user, at(0)))
    assert.equal(await tokens().findUsable(hash, at(0)), undefined, 'once used')
  })

  test('consume: answers what the token says, once; the time of its use is kept', async () => {
    const user = await newUser()
    const earlier = await newToken(user, at(100)) // another token of the user, stored first
    const { hash, record } = await newToken(user, at(10))
    assert.deepEqual(await tokens().consume(hash, user, at(2)), record)
    assert.equal((await usedAt(hash))?.getTime(), at(2).getTime())
    assert.equal(await tokens().consume(hash, user, at(3)), undefined, 'twice')
    assert.equal((await usedAt(hash))?.getTime(), at(2).getTime(), 'the first use stays')
    assert.equal(await usedAt(earlier.hash), null, 'only that token')
    assert.equal(await tokens().consume(hashOpaqueToken('unknown'), user, at(0)), undefined)
  })

  test('consume: another user’s token is not spent by naming it', async () => {
    const [user, other] = [await newUser(), await newUser()]
    const { hash, record } = await newToken(user, at(10))
    assert.equal(await tokens().consume(hash, other, at(1)), undefined)
    assert.equal(await usedAt(hash), null)
    assert.deepEqual(await tokens().consume(hash, user, at(1)), record)
  })

  test('consume: a consumer whose transaction rolls back leaves the token usable', async () => {
    const user = await newUser()
    const { hash, record } = await newToken(user, at(10))
    const wrongFactor = new Error('wrong factor')
    await assert.rejects(
      ctx.app.transaction(async (repos) => {
        assert.deepEqual(await repos.mfaTokens.consume(hash, user, at(1)), record)
        throw wrongFactor
      }),
      wrongFactor,
    )
    assert.equal(await usedAt(hash), null)
    assert.deepEqual(await tokens().consume(hash, user, at(2)), record)
  })

  test('consume: not at its expiry, which spends nothing; in its last millisecond, yes', async () => {
    const user = await newUser()
    const { hash, record } = await newToken(user, at(10))
    assert.equal(await tokens().consume(hash, user, at(10)), undefined)
    assert.equal(await usedAt(hash), null)
    assert.deepEqual(await tokens().consume(hash, user, justBefore(at(10))), record)
  })

  test('deleteExpired: the tokens expired at that time, used or not, of every user; answers how many', async () => {
    const [user, other] = [await newUser(), await newUser()]
    // Far in the past, so that no other test's token is expired by then.
    const now = at(-1_000_000)
    const before = await newToken(user, justBefore(now))
    const atNow = await newToken(other, now)
    const after = await newToken(user, new Date(now.getTime() + 1))
    const usedLater = await newToken(other, at(-999_000))
    await tokens().consume(usedLater.hash, other, at(-999_999))
    assert.equal(await tokens().deleteExpired(now), 2)
    for (const gone of [before, atNow]) assert.equal(await usedAt(gone.hash), undefined)
    assert.equal(await usedAt(after.hash), null, 'a millisecond left')
    assert.ok(await usedAt(usedLater.hash), 'used, but not expired: kept')
    assert.equal(await tokens().deleteExpired(now), 0)
  })

  test('deleteForUser: every token of that user, used or not, and no other’s; answers how many', async () => {
    const [user, other] = [await newUser(), await newUser()]
    const mine = [await newToken(user, at(10)), await newToken(user, at(20))]
    const theirs = await newToken(other, at(10))
    await tokens().consume(mine[0]!.hash, user, at(1))
    assert.equal(await tokens().deleteForUser(user), 2)
    for (const { hash } of mine) assert.equal(await usedAt(hash), undefined)
    assert.deepEqual(await tokens().findUsable(theirs.hash, at(0)), theirs.record)
    assert.equal(await tokens().deleteForUser(user), 0)
  })

  test('deleting the user deletes the tokens', async () => {
    const user = await newUser()
    const { hash } = await newToken(user, at(10))
    await ctx.app.repos.users.delete(user)
    assert.equal(await usedAt(hash), undefined)
  })

  test('consume: of two concurrent consumers of one token, exactly one gets it', async () => {
    const user = await newUser()
    for (let round = 0; round < ROUNDS; round++) {
      const { hash, record } = await newToken(user, at(10))
      const outcomes = await raceInTransactions(ctx, 2, (repos) => repos.mfaTokens.consume(hash, user, at(1)))
      const winners = outcomes.filter((outcome) => outcome !== undefined)
      assert.deepEqual(winners, [record], `round ${round}`)
    }
  })
})
