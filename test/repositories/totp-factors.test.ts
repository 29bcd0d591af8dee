/**
 * The TOTP factors repository, on every engine: an enrolment started, restarted and confirmed;
 * the replay guard at its exact boundary (the last accepted step itself is refused); the claims
 * that exactly one of two concurrent confirmations, or uses of one step, wins; two first
 * enrolments at once; what the schema refuses; and the factor going with its user.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isUniqueViolation } from '../../src/db/errors.js'
import { describeEachEngine } from '../support/app.js'
import { at, insertPlainUser, raceInTransactions } from './support.js'

/** A time step of our years (30-second periods since 1970). */
const STEP = 59_000_000
const ROUNDS = 5

describeEachEngine('totp factors repository', (ctx) => {
  const totp = () => ctx.app.repos.totpFactors
  const newUser = () => insertPlainUser(ctx.app.repos)
  const pending = (secret: string, started = at(0)) => ({
    secret_encrypted: secret,
    created_at: started,
    confirmed_at: null,
    last_used_step: null,
  })

  /** A user whose enrolment with `secret` started at at(0) and was confirmed at at(1) with `step`. */
  async function activeUser(secret: string, step = STEP) {
    const user = await newUser()
    assert.equal(await totp().startEnrolment(user, secret, at(0)), true)
    assert.equal(await totp().confirm(user, secret, step, at(1)), true)
    return user
  }

  test('startEnrolment: a first enrolment is pending, with its secret, its start and no step', async () => {
    const user = await newUser()
    await activeUser('secret-other') // another user's factor does not count as this user's
    assert.equal(await totp().find(user), undefined)
    assert.equal(await totp().startEnrolment(user, 'secret-1', at(3)), true)
    assert.deepEqual(await totp().find(user), pending('secret-1', at(3)))
  })

  test('startEnrolment: a pending enrolment is replaced, secret and start; another user’s stays', async () => {
    const [user, other] = [await newUser(), await newUser()]
    await totp().startEnrolment(user, 'secret-1', at(0))
    await totp().startEnrolment(other, 'secret-1', at(0))
    assert.equal(await totp().startEnrolment(user, 'secret-2', at(5)), true)
    assert.deepEqual(await totp().find(user), pending('secret-2', at(5)))
    assert.deepEqual(await totp().find(other), pending('secret-1', at(0)))
  })

  test('startEnrolment: an active factor is never replaced: false, and nothing changes', async () => {
    const user = await activeUser('secret-a')
    assert.equal(await totp().startEnrolment(user, 'secret-b', at(9)), false)
    assert.deepEqual(await totp().find(user), {
      secret_encrypted: 'secret-a',
      created_at: at(0),
      confirmed_at: at(1),
      last_used_step: STEP,
    })
  })

  test('startEnrolment: false for a user that does not exist, and nothing is written', async () => {
    const user = await newUser()
    await ctx.app.repos.users.delete(user)
    assert.equal(await totp().startEnrolment(user, 'secret-1', at(0)), false)
    assert.equal(await totp().find(user), undefined)
  })

  test('confirm: activates the pending enrolment with that secret, recording the confirming step', async () => {
    const [user, other] = [await newUser(), await newUser()]
    await totp().startEnrolment(user, 'secret-1', at(0))
    // The same secret text for another user: only the user tells the two rows apart.
    await totp().startEnrolment(other, 'secret-1', at(0))
    assert.equal(await totp().confirm(user, 'secret-x', STEP, at(1)), false, 'another secret')
    assert.deepEqual(await totp().find(user), pending('secret-1'))
    assert.equal(await totp().confirm(user, 'secret-1', STEP, at(1)), true)
    assert.deepEqual(await totp().find(user), {
      secret_encrypted: 'secret-1',
      created_at: at(0),
      confirmed_at: at(1),
      last_used_step: STEP,
    })
    assert.deepEqual(await totp().find(other), pending('secret-1'), 'only that user’s')
  })

  test('confirm: an active factor is not confirmed again: false, and it keeps its time and step', async () => {
    const user = await activeUser('secret-1')
    assert.equal(await totp().confirm(user, 'secret-1', STEP + 5, at(2)), false)
    assert.deepEqual(await totp().find(user), {
      secret_encrypted: 'secret-1',
      created_at: at(0),
      confirmed_at: at(1),
      last_used_step: STEP,
    })
    assert.equal(await totp().confirm(await newUser(), 'secret-1', STEP, at(1)), false, 'no factor')
  })

  test('confirm: a code checked against a replaced enrolment’s secret does not activate the new one', async () => {
    const user = await newUser()
    await totp().startEnrolment(user, 'secret-old', at(0))
    await totp().startEnrolment(user, 'secret-new', at(1))
    assert.equal(await totp().confirm(user, 'secret-old', STEP, at(2)), false)
    assert.deepEqual(await totp().find(user), pending('secret-new', at(1)))
    assert.equal(await totp().confirm(user, 'secret-new', STEP, at(2)), true)
  })

  test('acceptStep: only a step later than the last accepted one; that user’s factor only', async () => {
    const user = await activeUser('secret-1')
    const other = await activeUser('secret-2', STEP - 10)
    assert.equal(await totp().acceptStep(user, STEP), false, 'the confirming code’s step itself')
    assert.equal(await totp().acceptStep(user, STEP - 1), false, 'an earlier step')
    assert.equal(await totp().acceptStep(user, STEP + 1), true)
    assert.equal((await totp().find(user))!.last_used_step, STEP + 1)
    assert.equal(await totp().acceptStep(user, STEP + 1), false, 'the same step twice')
    assert.equal(await totp().acceptStep(user, STEP + 3), true, 'a later step, skipping some')
    assert.equal((await totp().find(user))!.last_used_step, STEP + 3)
    assert.equal((await totp().find(other))!.last_used_step, STEP - 10, 'another user’s factor is untouched')
  })

  test('acceptStep: never on a pending enrolment, nor without a factor', async () => {
    const user = await newUser()
    assert.equal(await totp().acceptStep(user, STEP), false, 'no factor')
    await totp().startEnrolment(user, 'secret-1', at(0))
    assert.equal(await totp().acceptStep(user, STEP), false, 'pending')
    assert.deepEqual(await totp().find(user), pending('secret-1'))
  })

  test('acceptStep: steps beyond 32 bits are stored and compared exactly', async () => {
    const big = 2 ** 40
    const user = await activeUser('secret-1', big)
    assert.equal((await totp().find(user))!.last_used_step, big)
    assert.equal(await totp().acceptStep(user, big), false)
    assert.equal(await totp().acceptStep(user, big + 1), true)
    assert.equal((await totp().find(user))!.last_used_step, big + 1)
  })

  test('delete: removes that user’s factor, pending or active; true only when there was one', async () => {
    const active = await activeUser('secret-1')
    const [waiting, other] = [await newUser(), await newUser()]
    await totp().startEnrolment(waiting, 'secret-2', at(0))
    await totp().startEnrolment(other, 'secret-3', at(0))
    assert.equal(await totp().delete(active), true)
    assert.equal(await totp().delete(waiting), true)
    assert.equal(await totp().find(active), undefined)
    assert.equal(await totp().find(waiting), undefined)
    assert.equal(await totp().delete(active), false)
    assert.deepEqual(await totp().find(other), pending('secret-3'))
  })

  test('the schema refuses a pending factor with a step, an active one without, and a second factor', async () => {
    const user = await newUser()
    const insert = (row: { confirmed_at: Date | null; last_used_step: number | null }) =>
      ctx.app.db
        .insertInto('totp_factors')
        .values({ user_id: user, secret_encrypted: 's', created_at: at(0), ...row })
        .execute()
    await assert.rejects(insert({ confirmed_at: null, last_used_step: STEP }))
    await assert.rejects(insert({ confirmed_at: at(1), last_used_step: null }))
    assert.equal(await totp().find(user), undefined)
    await insert({ confirmed_at: at(1), last_used_step: STEP })
    await assert.rejects(insert({ confirmed_at: null, last_used_step: null }), isUniqueViolation)
  })

  test('deleting the user deletes the factor', async () => {
    const user = await activeUser('secret-1')
    await ctx.app.repos.users.delete(user)
    assert.equal(await totp().find(user), undefined)
    const left = await ctx.app.db
      .selectFrom('totp_factors')
      .select('user_id')
      .where('user_id', '=', user)
      .execute()
    assert.deepEqual(left, [])
  })

  test('confirm: of two concurrent confirmations of one enrolment, exactly one wins', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const user = await newUser()
      await totp().startEnrolment(user, 'secret-1', at(0))
      const outcomes = await raceInTransactions(ctx, 2, (repos, party) =>
        repos.totpFactors.confirm(user, 'secret-1', STEP + party, at(1)),
      )
      assert.deepEqual([...outcomes].sort(), [false, true], `round ${round}`)
      assert.equal(
        (await totp().find(user))!.last_used_step,
        STEP + outcomes.indexOf(true),
        'the winner’s step',
      )
    }
  })

  test('acceptStep: of two concurrent uses of one step, exactly one wins', async () => {
    const user = await activeUser('secret-1')
    for (let round = 1; round <= ROUNDS; round++) {
      const outcomes = await raceInTransactions(ctx, 2, (repos) =>
        repos.totpFactors.acceptStep(user, STEP + round),
      )
      assert.deepEqual(outcomes.sort(), [false, true], `round ${round}`)
      assert.equal((await totp().find(user))!.last_used_step, STEP + round)
    }
  })

  test('startEnrolment: two first enrolments of one user at once both succeed, one after the other', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const user = await newUser()
      const secrets = ['secret-a', 'secret-b']
      const outcomes = await raceInTransactions(ctx, 2, (repos, party) =>
        repos.totpFactors.startEnrolment(user, secrets[party]!, at(party)),
      )
      assert.deepEqual(outcomes, [true, true], `round ${round}`)
      const factor = (await totp().find(user))!
      assert.ok(secrets.includes(factor.secret_encrypted), `round ${round}`)
      assert.equal(factor.created_at.getTime(), at(secrets.indexOf(factor.secret_encrypted)).getTime())
      assert.equal(factor.confirmed_at, null)
    }
  })

  test('a confirmation with its new recovery codes and a restarted enrolment at once: one wins, no deadlock', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const user = await newUser()
      await totp().startEnrolment(user, 'secret-1', at(0))
      const [confirmed, restarted] = await raceInTransactions(ctx, 2, async (repos, party) => {
        if (party === 1) return repos.totpFactors.startEnrolment(user, 'secret-2', at(2))
        if (!(await repos.totpFactors.confirm(user, 'secret-1', STEP, at(1)))) return false
        return repos.recoveryCodes.replaceAll(user, ['c'.repeat(64)], at(1))
      })
      assert.notEqual(confirmed, restarted, `round ${round}: exactly one`)
      const factor = (await totp().find(user))!
      assert.equal(factor.secret_encrypted, confirmed ? 'secret-1' : 'secret-2')
      assert.equal(factor.confirmed_at?.getTime(), confirmed ? at(1).getTime() : undefined)
      assert.equal(await ctx.app.repos.recoveryCodes.countUnused(user), confirmed ? 1 : 0)
    }
  })
})
