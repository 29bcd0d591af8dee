/**
 * The account tokens repository (password reset and email verification links), on every engine:
 * each condition of a redemption on its own, at the exact end of a token's life, and the claim
 * that exactly one of two concurrent redemptions wins.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { hashOpaqueToken } from '../../src/auth/opaque-tokens.js'
import type { AccountTokenPurpose } from '../../src/db/database.js'
import { describeEachEngine, register, type EngineContext } from '../support/app.js'
import { HOUR, SECOND } from '../support/clock.js'

const wholeSecond = () => new Date(Math.floor(Date.now() / SECOND) * SECOND)
const at = (base: Date, ms: number) => new Date(base.getTime() + ms)

async function newToken(
  ctx: EngineContext,
  user: { id: number; email: string },
  purpose: AccountTokenPurpose,
  expires: Date,
) {
  const hash = hashOpaqueToken(randomUUID())
  await ctx.app.repos.accountTokens.insert({
    token_hash: hash,
    user_id: user.id,
    purpose,
    email: user.email,
    created_at: at(expires, -HOUR),
    expires_at: expires,
  })
  return hash
}

describeEachEngine('account tokens repository', (ctx) => {
  const tokens = () => ctx.app.repos.accountTokens

  test('findUsable: only with its own purpose, unused, and before its expiry', async () => {
    const user = await register(ctx.app)
    const now = wholeSecond()
    const reset = await newToken(ctx, user, 'password_reset', at(now, SECOND))
    assert.deepEqual(await tokens().findUsable(reset, 'password_reset', now), {
      user_id: user.id,
      email: user.email,
    })
    assert.equal(await tokens().findUsable(reset, 'email_verification', now), undefined, 'another purpose')
    assert.ok(await tokens().findUsable(reset, 'password_reset', at(now, SECOND - 1)), 'its last millisecond')
    assert.equal(await tokens().findUsable(reset, 'password_reset', at(now, SECOND)), undefined, 'at its end')
    assert.equal(await tokens().findUsable(hashOpaqueToken('unknown'), 'password_reset', now), undefined)
    assert.equal(await tokens().consume(reset, 'password_reset', now), true)
    assert.equal(await tokens().findUsable(reset, 'password_reset', now), undefined, 'once used')
  })

  test('consume: once, only with its own purpose and before its expiry; only that token', async () => {
    const user = await register(ctx.app)
    const now = wholeSecond()
    const verification = await newToken(ctx, user, 'email_verification', at(now, SECOND))
    const other = await newToken(ctx, user, 'email_verification', at(now, SECOND))
    assert.equal(await tokens().consume(verification, 'password_reset', now), false, 'another purpose')
    assert.equal(
      await tokens().consume(verification, 'email_verification', at(now, SECOND)),
      false,
      'at its end',
    )
    assert.equal(await tokens().consume(verification, 'email_verification', now), true)
    assert.equal(await tokens().consume(verification, 'email_verification', now), false, 'twice')
    assert.ok(await tokens().findUsable(other, 'email_verification', now), 'the other token is untouched')
    const used = await ctx.app.db
      .selectFrom('account_tokens')
      .select('used_at')
      .where('token_hash', '=', verification)
      .executeTakeFirstOrThrow()
    assert.equal(used.used_at?.getTime(), now.getTime())
  })

  test('consume: of two concurrent redemptions in two transactions, exactly one wins', async () => {
    const user = await register(ctx.app)
    const now = wholeSecond()
    for (let round = 0; round < 5; round++) {
      const hash = await newToken(ctx, user, 'password_reset', at(now, HOUR))
      const results = await Promise.all(
        [0, 1].map(() =>
          ctx.app.transaction((repos) => repos.accountTokens.consume(hash, 'password_reset', now)),
        ),
      )
      assert.deepEqual(results.sort(), [false, true], `round ${round}`)
    }
  })

  test('findObsolete: the user’s used and expired tokens, and all of a superseded purpose', async () => {
    const [user, other] = [await register(ctx.app), await register(ctx.app)]
    const now = wholeSecond()
    const live = await newToken(ctx, user, 'email_verification', at(now, SECOND))
    const expired = await newToken(ctx, user, 'email_verification', now)
    const used = await newToken(ctx, user, 'email_verification', at(now, HOUR))
    await tokens().consume(used, 'email_verification', now)
    const reset = await newToken(ctx, user, 'password_reset', at(now, HOUR))
    await newToken(ctx, other, 'password_reset', now)

    assert.deepEqual(
      (await tokens().findObsolete(user.id, now)).sort(),
      [expired, used].sort(),
      `not ${live}`,
    )
    assert.deepEqual(
      (await tokens().findObsolete(user.id, now, 'password_reset')).sort(),
      [expired, used, reset].sort(),
    )
    await tokens().deleteByHashes([])
    await tokens().deleteByHashes([expired, used])
    assert.deepEqual((await tokens().findObsolete(user.id, now, 'password_reset')).sort(), [reset])
    assert.ok(await tokens().findUsable(live, 'email_verification', now), 'the live token stays')
  })

  test('findRecipientByEmail: the account with exactly that (normalised) address', async () => {
    const user = await register(ctx.app)
    assert.deepEqual(await tokens().findRecipientByEmail(user.email), {
      id: user.id,
      email: user.email,
      is_active: true,
    })
    assert.equal(await tokens().findRecipientByEmail(`x${user.email}`), undefined)
  })

  test('markEmailVerified: only while the account still has the address the token was sent to', async () => {
    const user = await register(ctx.app)
    const other = await register(ctx.app)
    const now = wholeSecond()
    assert.equal(await tokens().markEmailVerified(user.id, other.email, now), false, 'another address')
    assert.equal(await tokens().markEmailVerified(user.id, user.email, now), true)
    const verified = async (id: number) => (await ctx.app.repos.users.findById(id))!.email_verified
    assert.equal(await verified(user.id), true)
    assert.equal(await verified(other.id), false, 'only that account')
  })
})
