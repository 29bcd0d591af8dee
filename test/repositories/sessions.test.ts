/**
 * The sessions repository, on every engine: what each query returns at the boundaries of its time
 * comparisons, and the refresh token claim that exactly one of two concurrent refreshes wins.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { hashOpaqueToken } from '../../src/auth/opaque-tokens.js'
import { describeEachEngine, register, type EngineContext } from '../support/app.js'
import { HOUR, SECOND } from '../support/clock.js'

/** Whole seconds: every engine keeps at least that. */
const wholeSecond = () => new Date(Math.floor(Date.now() / SECOND) * SECOND)
const at = (base: Date, ms: number) => new Date(base.getTime() + ms)

async function newSession(
  ctx: EngineContext,
  userId: number,
  fields: { created?: Date; lastUsed?: Date; expires?: Date } = {},
) {
  const now = wholeSecond()
  const id = randomUUID()
  await ctx.app.repos.sessions.insert({
    id,
    user_id: userId,
    created_at: fields.created ?? now,
    last_used_at: fields.lastUsed ?? now,
    expires_at: fields.expires ?? at(now, HOUR),
    user_agent: 'test agent',
    ip: '192.0.2.1',
    amr: 'pwd otp mfa',
  })
  return id
}

describeEachEngine('sessions repository', (ctx) => {
  test('listActive: unrevoked sessions of the user that expire after now, most recently used first', async () => {
    const user = await register(ctx.app)
    const other = await register(ctx.app)
    const now = wholeSecond()
    const older = await newSession(ctx, user.id, { lastUsed: at(now, -2 * SECOND), expires: at(now, SECOND) })
    const newer = await newSession(ctx, user.id, { lastUsed: at(now, -SECOND) })
    const endsNow = await newSession(ctx, user.id, { expires: now })
    const revoked = await newSession(ctx, user.id)
    await ctx.app.repos.sessions.revoke([revoked], 'logout', now)
    await newSession(ctx, other.id)

    const listed = await ctx.app.repos.sessions.listActive(user.id, now)
    assert.deepEqual(
      listed.map((session) => session.id),
      [newer, older],
      `not the one ending now (${endsNow}), not the revoked one, not another user's`,
    )
    const [first] = listed
    assert.equal(first!.user_agent, 'test agent')
    assert.equal(first!.ip, '192.0.2.1')
    assert.equal(first!.user_id, user.id)
    assert.equal(first!.revoked_at, null)
  })

  test('activeIds: every unrevoked session of the user, expired or not', async () => {
    const user = await register(ctx.app)
    const past = wholeSecond()
    const expired = await newSession(ctx, user.id, { expires: at(past, -HOUR) })
    const live = await newSession(ctx, user.id)
    const revoked = await newSession(ctx, user.id)
    await ctx.app.repos.sessions.revoke([revoked], 'logout', past)
    assert.deepEqual((await ctx.app.repos.sessions.activeIds(user.id)).sort(), [expired, live].sort())
  })

  test('revoke: sets the time and reason once; a revoked session keeps its first revocation', async () => {
    const user = await register(ctx.app)
    const now = wholeSecond()
    const [first, second, untouched] = [
      await newSession(ctx, user.id),
      await newSession(ctx, user.id),
      await newSession(ctx, user.id),
    ]
    await ctx.app.repos.sessions.revoke([], 'logout', now)
    await ctx.app.repos.sessions.revoke([first], 'logout', now)
    await ctx.app.repos.sessions.revoke([first, second], 'password_changed', at(now, SECOND))
    const read = async (id: string) => (await ctx.app.repos.sessions.findById(id))!
    assert.equal((await read(first)).revoked_reason, 'logout')
    assert.equal((await read(first)).revoked_at!.getTime(), now.getTime())
    assert.equal((await read(second)).revoked_reason, 'password_changed')
    assert.equal((await read(second)).revoked_at!.getTime(), now.getTime() + SECOND)
    assert.equal((await read(untouched)).revoked_at, null)
  })

  test('revokedSince: sessions revoked at or after the time, with that time', async () => {
    const user = await register(ctx.app)
    const since = at(wholeSecond(), 10 * HOUR) // later than any other test's revocation
    const [before, exactly, after, never] = [
      await newSession(ctx, user.id),
      await newSession(ctx, user.id),
      await newSession(ctx, user.id),
      await newSession(ctx, user.id),
    ]
    await ctx.app.repos.sessions.revoke([before], 'logout', at(since, -SECOND))
    await ctx.app.repos.sessions.revoke([exactly], 'logout', since)
    await ctx.app.repos.sessions.revoke([after], 'logout', at(since, SECOND))
    const found = await ctx.app.repos.sessions.revokedSince(since)
    assert.deepEqual(found.map((row) => row.id).sort(), [exactly, after].sort(), `not ${before} nor ${never}`)
    assert.equal(found.find((row) => row.id === exactly)!.revoked_at.getTime(), since.getTime())
  })

  test('touch: sets the last use and the new expiry of that session only', async () => {
    const user = await register(ctx.app)
    const now = wholeSecond()
    const [touched, other] = [await newSession(ctx, user.id), await newSession(ctx, user.id)]
    await ctx.app.repos.sessions.touch(touched, at(now, 5 * SECOND), at(now, 2 * HOUR))
    const read = (await ctx.app.repos.sessions.findById(touched))!
    assert.equal(read.last_used_at.getTime(), now.getTime() + 5 * SECOND)
    assert.equal(read.expires_at.getTime(), now.getTime() + 2 * HOUR)
    assert.equal((await ctx.app.repos.sessions.findById(other))!.expires_at.getTime(), now.getTime() + HOUR)
  })

  test('deleteEndedBefore: sessions expired or revoked before the cutoff go, with their refresh tokens', async () => {
    const user = await register(ctx.app)
    const cutoff = at(wholeSecond(), -100 * HOUR) // earlier than any other test's session ends
    const expiredBefore = await newSession(ctx, user.id, { expires: at(cutoff, -SECOND) })
    const expiresAtCutoff = await newSession(ctx, user.id, { expires: cutoff })
    const revokedBefore = await newSession(ctx, user.id)
    await ctx.app.repos.sessions.revoke([revokedBefore], 'logout', at(cutoff, -SECOND))
    const revokedAtCutoff = await newSession(ctx, user.id)
    await ctx.app.repos.sessions.revoke([revokedAtCutoff], 'logout', cutoff)
    const live = await newSession(ctx, user.id)
    await ctx.app.repos.sessions.insertRefreshToken(
      hashOpaqueToken(`t-${expiredBefore}`),
      expiredBefore,
      cutoff,
      cutoff,
    )

    assert.equal(await ctx.app.repos.sessions.deleteEndedBefore(cutoff), 2)
    for (const gone of [expiredBefore, revokedBefore])
      assert.equal(await ctx.app.repos.sessions.findById(gone), undefined)
    for (const kept of [expiresAtCutoff, revokedAtCutoff, live])
      assert.ok(await ctx.app.repos.sessions.findById(kept), kept)
    assert.equal(
      await ctx.app.repos.sessions.findRefreshToken(hashOpaqueToken(`t-${expiredBefore}`)),
      undefined,
    )
  })

  test('findRefreshToken: the token and its session, by the token hash only', async () => {
    const user = await register(ctx.app)
    const now = wholeSecond()
    const created = at(now, -HOUR)
    const session = await newSession(ctx, user.id, { created, expires: at(now, 3 * HOUR) })
    const hash = hashOpaqueToken(`refresh-${session}`)
    await ctx.app.repos.sessions.insertRefreshToken(hash, session, now, at(now, 2 * HOUR))
    assert.deepEqual(await ctx.app.repos.sessions.findRefreshToken(hash), {
      session_id: session,
      used_at: null,
      token_expires_at: at(now, 2 * HOUR),
      user_id: user.id,
      session_created_at: created,
      session_expires_at: at(now, 3 * HOUR),
      revoked_at: null,
      amr: 'pwd otp mfa',
    })
    assert.equal(await ctx.app.repos.sessions.findRefreshToken(hashOpaqueToken('another token')), undefined)
  })

  test('claimRefreshToken: true once, then false; the first claim keeps its time', async () => {
    const user = await register(ctx.app)
    const now = wholeSecond()
    const session = await newSession(ctx, user.id)
    const hash = hashOpaqueToken(`claimed-${session}`)
    const other = hashOpaqueToken(`unclaimed-${session}`)
    await ctx.app.repos.sessions.insertRefreshToken(hash, session, now, at(now, HOUR))
    await ctx.app.repos.sessions.insertRefreshToken(other, session, now, at(now, HOUR))

    assert.equal(await ctx.app.repos.sessions.claimRefreshToken(hash, now), true)
    assert.equal(await ctx.app.repos.sessions.claimRefreshToken(hash, at(now, SECOND)), false)
    assert.equal((await ctx.app.repos.sessions.findRefreshToken(hash))!.used_at!.getTime(), now.getTime())
    assert.equal((await ctx.app.repos.sessions.findRefreshToken(other))!.used_at, null, 'only that token')
    assert.equal(await ctx.app.repos.sessions.claimRefreshToken(hashOpaqueToken('unknown'), now), false)
  })

  test('claimRefreshToken: of two concurrent claims in two transactions, exactly one wins', async () => {
    const user = await register(ctx.app)
    const now = wholeSecond()
    for (let round = 0; round < 5; round++) {
      const session = await newSession(ctx, user.id)
      const hash = hashOpaqueToken(`raced-${session}`)
      await ctx.app.repos.sessions.insertRefreshToken(hash, session, now, at(now, HOUR))
      const claims = await Promise.all(
        [0, 1].map(() => ctx.app.transaction((repos) => repos.sessions.claimRefreshToken(hash, now))),
      )
      assert.deepEqual(claims.sort(), [false, true], `round ${round}`)
    }
  })
})
