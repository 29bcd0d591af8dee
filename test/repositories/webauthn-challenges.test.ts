/**
 * The WebAuthn challenges repository, on every engine: a challenge stored as issued; each
 * condition of a spend on its own (the purpose, the account or no account, the last millisecond
 * of its life), a refused spend spending nothing; the claim that of two concurrent answers to one
 * challenge exactly one gets it; which pending registration lends its user handle; housekeeping
 * at its boundary; and the challenges going with their user.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import type { WebAuthnChallengePurpose } from '../../src/db/database.js'
import { isUniqueViolation } from '../../src/db/errors.js'
import { describeEachEngine } from '../support/app.js'
import { at, insertPlainUser, raceInTransactions } from './support.js'

const ROUNDS = 5
/** A millisecond before `date`. */
const justBefore = (date: Date) => new Date(date.getTime() - 1)
/** A challenge hash (64 hex digits), optionally with its first digit chosen, to order two of them. */
const newHash = (first?: string) => {
  const hex = randomBytes(32).toString('hex')
  return first === undefined ? hex : `${first}${hex.slice(1)}`
}

describeEachEngine('webauthn challenges repository', (ctx) => {
  const challenges = () => ctx.app.repos.webauthnChallenges
  const newUser = () => insertPlainUser(ctx.app.repos)

  /**
   * Stores a challenge for `purpose` and `userId` (null: no account), expiring at `expires`
   * (at(300) unless given), created five minutes before (or at `created`); answers its hash.
   */
  async function newChallenge(
    purpose: WebAuthnChallengePurpose,
    userId: number | null,
    options: { expires?: Date; created?: Date; userHandle?: string; hash?: string } = {},
  ) {
    const hash = options.hash ?? newHash()
    const expiresAt = options.expires ?? at(300)
    await challenges().insert({
      challengeHash: hash,
      purpose,
      userId,
      ...(options.userHandle === undefined ? {} : { userHandle: options.userHandle }),
      now: options.created ?? new Date(expiresAt.getTime() - 300_000),
      expiresAt,
    })
    return hash
  }
  /** The stored row of the challenge with this hash, if any. */
  const rowOf = (hash: string) =>
    ctx.app.db
      .selectFrom('webauthn_challenges')
      .selectAll()
      .where('challenge_hash', '=', hash)
      .executeTakeFirst()
  const isStored = async (hash: string) => (await rowOf(hash)) !== undefined

  test('insert: stores the hash, the purpose, the account, the handle (or none) and both times', async () => {
    const user = await newUser()
    const registration = newHash()
    await challenges().insert({
      challengeHash: registration,
      purpose: 'registration',
      userId: user,
      userHandle: 'handle-1',
      now: at(1),
      expiresAt: at(301),
    })
    assert.deepEqual(await rowOf(registration), {
      challenge_hash: registration,
      purpose: 'registration',
      user_id: user,
      user_handle: 'handle-1',
      created_at: at(1),
      expires_at: at(301),
    })
    const login = newHash()
    await challenges().insert({
      challengeHash: login,
      purpose: 'passkey_login',
      userId: null,
      now: at(2),
      expiresAt: at(302),
    })
    assert.deepEqual(await rowOf(login), {
      challenge_hash: login,
      purpose: 'passkey_login',
      user_id: null,
      user_handle: null,
      created_at: at(2),
      expires_at: at(302),
    })
  })

  test('insert: a challenge hash is stored once: a second one is a unique violation', async () => {
    const user = await newUser()
    const hash = await newChallenge('second_factor', user, { expires: at(100) })
    await assert.rejects(newChallenge('passkey_login', null, { hash, expires: at(200) }), isUniqueViolation)
    assert.deepEqual(await rowOf(hash), {
      challenge_hash: hash,
      purpose: 'second_factor',
      user_id: user,
      user_handle: null,
      created_at: at(-200),
      expires_at: at(100),
    })
  })

  test('consume: answers the stored user handle, once; only that challenge is spent', async () => {
    const user = await newUser()
    const earlier = await newChallenge('registration', user, { userHandle: 'handle-a' })
    const hash = await newChallenge('registration', user, { userHandle: 'handle-b' })
    const later = await newChallenge('registration', user, { userHandle: 'handle-c' })
    assert.deepEqual(await challenges().consume(hash, 'registration', user, at(1)), {
      userHandle: 'handle-b',
    })
    assert.equal(await isStored(hash), false)
    assert.equal(await challenges().consume(hash, 'registration', user, at(1)), undefined, 'twice')
    assert.equal(await isStored(earlier), true)
    assert.equal(await isStored(later), true)
    assert.deepEqual(await challenges().consume(later, 'registration', user, at(2)), {
      userHandle: 'handle-c',
    })
  })

  test('consume: a challenge without a handle answers a null one', async () => {
    const user = await newUser()
    const hash = await newChallenge('second_factor', user)
    assert.deepEqual(await challenges().consume(hash, 'second_factor', user, at(1)), { userHandle: null })
  })

  test('consume: an unknown hash spends nothing, even with a challenge of that purpose and account', async () => {
    const user = await newUser()
    const mine = await newChallenge('second_factor', user)
    const anyone = await newChallenge('passkey_login', null)
    assert.equal(await challenges().consume(newHash(), 'second_factor', user, at(1)), undefined)
    assert.equal(await challenges().consume(newHash(), 'passkey_login', null, at(1)), undefined)
    assert.equal(await isStored(mine), true)
    assert.equal(await isStored(anyone), true)
  })

  test('consume: only for the purpose it was issued for; another purpose spends nothing', async () => {
    const user = await newUser()
    const hash = await newChallenge('second_factor', user)
    assert.equal(await challenges().consume(hash, 'registration', user, at(1)), undefined)
    assert.equal(await challenges().consume(hash, 'passkey_login', user, at(1)), undefined)
    assert.equal(await isStored(hash), true)
    const login = await newChallenge('passkey_login', null)
    assert.equal(await challenges().consume(login, 'second_factor', null, at(1)), undefined)
    assert.equal(await isStored(login), true)
    assert.deepEqual(await challenges().consume(hash, 'second_factor', user, at(1)), { userHandle: null })
    assert.deepEqual(await challenges().consume(login, 'passkey_login', null, at(1)), { userHandle: null })
  })

  test('consume: a challenge issued to no account is not spent by naming one', async () => {
    const user = await newUser()
    const hash = await newChallenge('passkey_login', null)
    assert.equal(await challenges().consume(hash, 'passkey_login', user, at(1)), undefined)
    assert.equal(await isStored(hash), true)
    assert.deepEqual(await challenges().consume(hash, 'passkey_login', null, at(1)), { userHandle: null })
  })

  test('consume: a challenge issued to a user is not spent with no account, nor by another user', async () => {
    const [user, other] = [await newUser(), await newUser()]
    const hash = await newChallenge('registration', user, { userHandle: 'handle-1' })
    assert.equal(await challenges().consume(hash, 'registration', null, at(1)), undefined, 'no account')
    assert.equal(await challenges().consume(hash, 'registration', other, at(1)), undefined, 'another user')
    assert.equal(await isStored(hash), true)
    assert.deepEqual(await challenges().consume(hash, 'registration', user, at(1)), {
      userHandle: 'handle-1',
    })
  })

  test('consume: not at its expiry, which spends nothing; in its last millisecond, yes', async () => {
    const user = await newUser()
    const hash = await newChallenge('registration', user, { expires: at(10), userHandle: 'handle-1' })
    assert.equal(await challenges().consume(hash, 'registration', user, at(10)), undefined, 'at its expiry')
    assert.equal(await challenges().consume(hash, 'registration', user, at(11)), undefined, 'after it')
    assert.equal(await isStored(hash), true)
    assert.deepEqual(await challenges().consume(hash, 'registration', user, justBefore(at(10))), {
      userHandle: 'handle-1',
    })
    const login = await newChallenge('passkey_login', null, { expires: at(10) })
    assert.equal(await challenges().consume(login, 'passkey_login', null, at(10)), undefined)
    assert.deepEqual(await challenges().consume(login, 'passkey_login', null, at(0)), { userHandle: null })
  })

  test('consume: a consumer whose transaction rolls back leaves the challenge usable', async () => {
    const user = await newUser()
    const hash = await newChallenge('second_factor', user)
    const badAnswer = new Error('bad answer')
    await assert.rejects(
      ctx.app.transaction(async (repos) => {
        assert.deepEqual(await repos.webauthnChallenges.consume(hash, 'second_factor', user, at(1)), {
          userHandle: null,
        })
        throw badAnswer
      }),
      badAnswer,
    )
    assert.equal(await isStored(hash), true)
    assert.deepEqual(await challenges().consume(hash, 'second_factor', user, at(2)), { userHandle: null })
  })

  test('consume: of two concurrent answers to one challenge, exactly one gets it', async () => {
    const user = await newUser()
    for (let round = 0; round < ROUNDS; round++) {
      const hash = await newChallenge('registration', user, { userHandle: `handle-${round}` })
      const outcomes = await raceInTransactions(ctx, 2, (repos) =>
        repos.webauthnChallenges.consume(hash, 'registration', user, at(1)),
      )
      const winners = outcomes.filter((outcome) => outcome !== undefined)
      assert.deepEqual(winners, [{ userHandle: `handle-${round}` }], `round ${round}`)
      assert.equal(await isStored(hash), false, `round ${round}`)
    }
  })

  test('consume: of two concurrent password-less logins with one challenge, exactly one gets it', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const hash = await newChallenge('passkey_login', null)
      const outcomes = await raceInTransactions(ctx, 2, (repos) =>
        repos.webauthnChallenges.consume(hash, 'passkey_login', null, at(1)),
      )
      const winners = outcomes.filter((outcome) => outcome !== undefined)
      assert.deepEqual(winners, [{ userHandle: null }], `round ${round}`)
    }
  })

  test('pendingUserHandle: the oldest unexpired registration of that user that carries a handle', async () => {
    const [user, other] = [await newUser(), await newUser()]
    const now = at(5)
    // Older than the answer, and each wrong in one way only.
    await newChallenge('registration', other, { created: at(-20), expires: at(100), userHandle: 'other’s' })
    await newChallenge('second_factor', user, {
      created: at(-19),
      expires: at(100),
      userHandle: 'not a registration',
    })
    await newChallenge('registration', user, { created: at(-18), expires: at(100) })
    await newChallenge('registration', user, { created: at(-17), expires: now, userHandle: 'expired' })
    // The newer of the two right ones is stored first, with the smaller hash: the order is asked for.
    await newChallenge('registration', user, {
      created: at(2),
      expires: at(100),
      userHandle: 'newer',
      hash: newHash('0'),
    })
    const oldest = await newChallenge('registration', user, {
      created: at(1),
      expires: at(100),
      userHandle: 'older',
      hash: newHash('f'),
    })
    assert.equal(await challenges().pendingUserHandle(user, now), 'older')
    assert.equal(
      await challenges().pendingUserHandle(user, justBefore(now)),
      'expired',
      'its last millisecond',
    )
    await challenges().consume(oldest, 'registration', user, now)
    assert.equal(await challenges().pendingUserHandle(user, now), 'newer')
    assert.equal(await challenges().pendingUserHandle(user, at(100)), undefined, 'all expired')
  })

  test('pendingUserHandle: undefined for a user without a registration under way', async () => {
    const user = await newUser()
    assert.equal(await challenges().pendingUserHandle(user, at(0)), undefined)
    await newChallenge('registration', user, { expires: at(10) })
    await newChallenge('second_factor', user, { expires: at(10), userHandle: 'not a registration' })
    assert.equal(await challenges().pendingUserHandle(user, at(0)), undefined)
  })

  test('deleteExpired: the challenges expired at that time, of every purpose and account; answers how many', async () => {
    const [user, other] = [await newUser(), await newUser()]
    // Far in the past, so that no other test's challenge is expired by then.
    const now = at(-1_000_000)
    const before = await newChallenge('registration', user, { expires: justBefore(now), userHandle: 'h' })
    const atNow = await newChallenge('passkey_login', null, { expires: now })
    const alsoAtNow = await newChallenge('second_factor', other, { expires: now })
    const after = await newChallenge('second_factor', user, { expires: new Date(now.getTime() + 1) })
    assert.equal(await challenges().deleteExpired(now), 3)
    for (const gone of [before, atNow, alsoAtNow]) assert.equal(await isStored(gone), false)
    assert.equal(await isStored(after), true, 'a millisecond left')
    assert.equal(await challenges().deleteExpired(now), 0)
    assert.equal(await challenges().deleteExpired(new Date(now.getTime() + 1)), 1)
    assert.equal(await isStored(after), false)
  })

  test('deleting the user deletes the user’s challenges; others stay', async () => {
    const [user, other] = [await newUser(), await newUser()]
    const mine = [
      await newChallenge('registration', user, { userHandle: 'h' }),
      await newChallenge('second_factor', user),
    ]
    const theirs = await newChallenge('second_factor', other)
    const anyone = await newChallenge('passkey_login', null)
    await ctx.app.repos.users.delete(user)
    for (const hash of mine) assert.equal(await isStored(hash), false)
    assert.equal(await isStored(theirs), true)
    assert.equal(await isStored(anyone), true)
  })
})
