/**
 * The identity providers' repositories, on every engine, called directly. Identities: unique per
 * (provider, subject) and per (user, provider), a refused insert answering undefined and leaving
 * the transaction usable; a use recorded; an unlink of the user's own identity only; two links of
 * one subject at once, exactly one stored. Sign-ins in flight: the callback claims a state once
 * and only before it expires; a one-time code is spent once, before it expires; expired flows swept.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import type { NewExternalLoginRow } from '../../src/db/database.js'
import { describeEachEngine } from '../support/app.js'
import { at, insertPlainUser, raceInTransactions } from './support.js'

const hex = () => randomBytes(32).toString('hex')
const subject = () => `sub-${randomBytes(6).toString('hex')}`

function flowRow(changes: Partial<NewExternalLoginRow> = {}): NewExternalLoginRow {
  return {
    state_hash: hex(),
    provider: 'test',
    purpose: 'sign_in',
    user_id: null,
    nonce: 'nonce',
    code_verifier: 'verifier',
    client_challenge: 'challenge',
    return_to: 'http://127.0.0.1:8000/account',
    created_at: at(0),
    expires_at: at(600),
    ...changes,
  }
}

const vouched = { subject: 'person', email: 'person@example.com', emailVerified: true, profileName: 'Person' }

describeEachEngine('identity provider repositories', (ctx) => {
  const identities = () => ctx.app.repos.externalIdentities
  const logins = () => ctx.app.repos.externalLogins

  test('an identity is stored and found by provider and subject; listed and counted for its user', async () => {
    const userId = await insertPlainUser(ctx.app.repos)
    const sub = subject()
    const id = await identities().insert({
      userId,
      provider: 'test',
      subject: sub,
      email: 'a@example.com',
      now: at(1),
    })
    assert.ok(id)
    const found = await identities().find('test', sub)
    assert.deepEqual(
      { ...found, created_at: found?.created_at.getTime(), last_used_at: found?.last_used_at?.getTime() },
      {
        id,
        user_id: userId,
        provider: 'test',
        subject: sub,
        email: 'a@example.com',
        created_at: at(1).getTime(),
        last_used_at: at(1).getTime(),
      },
    )
    assert.equal(await identities().find('other', sub), undefined)
    assert.equal(await identities().find('test', `${sub}x`), undefined)
    assert.deepEqual(
      (await identities().listForUser(userId)).map((row) => row.id),
      [id],
    )
    assert.equal(await identities().countForUser(userId), 1)

    await identities().recordUse(id!, 'b@example.com', at(5))
    const used = await identities().find('test', sub)
    assert.equal(used?.email, 'b@example.com')
    assert.equal(used?.last_used_at?.getTime(), at(5).getTime())
  })

  test('a subject linked to anyone, or a second identity of one provider for a user, is refused: undefined, the transaction goes on', async () => {
    const first = await insertPlainUser(ctx.app.repos)
    const second = await insertPlainUser(ctx.app.repos)
    const sub = subject()
    await identities().insert({ userId: first, provider: 'test', subject: sub, email: null, now: at(1) })
    await ctx.app.transaction(async (repos) => {
      assert.equal(
        await repos.externalIdentities.insert({
          userId: second,
          provider: 'test',
          subject: sub,
          email: null,
          now: at(2),
        }),
        undefined,
      )
      assert.equal(
        await repos.externalIdentities.insert({
          userId: first,
          provider: 'test',
          subject: subject(),
          email: null,
          now: at(2),
        }),
        undefined,
      )
      // Still usable after the refusals (PostgreSQL ends a transaction at a failed statement).
      assert.ok(
        await repos.externalIdentities.insert({
          userId: second,
          provider: 'other',
          subject: sub,
          email: null,
          now: at(2),
        }),
      )
    })
    assert.deepEqual(
      (await identities().listForUser(second)).map((row) => row.provider),
      ['other'],
    )
    assert.equal(await identities().countForUser(first), 1)
  })

  test('an insert that fails for another reason than a taken key is an error, not a refusal', async () => {
    // A user that does not exist: a foreign key violation, which must not read as "linked already".
    await assert.rejects(
      identities().insert({
        userId: 2_000_000_000,
        provider: 'test',
        subject: subject(),
        email: null,
        now: at(1),
      }),
    )
  })

  test('of two links of one subject at once, exactly one is stored', async () => {
    const users = [await insertPlainUser(ctx.app.repos), await insertPlainUser(ctx.app.repos)]
    const sub = subject()
    const outcomes = await raceInTransactions(ctx, 2, (repos, party) =>
      repos.externalIdentities.insert({
        userId: users[party]!,
        provider: 'test',
        subject: sub,
        email: null,
        now: at(1),
      }),
    )
    assert.equal(outcomes.filter((id) => id !== undefined).length, 1)
    const stored = await ctx.app.db
      .selectFrom('external_identities')
      .select('user_id')
      .where('subject', '=', sub)
      .execute()
    assert.equal(stored.length, 1)
  })

  test("delete unlinks the user's own identity of that provider only", async () => {
    const owner = await insertPlainUser(ctx.app.repos)
    const other = await insertPlainUser(ctx.app.repos)
    await identities().insert({
      userId: owner,
      provider: 'test',
      subject: subject(),
      email: null,
      now: at(1),
    })
    await identities().insert({
      userId: owner,
      provider: 'other',
      subject: subject(),
      email: null,
      now: at(1),
    })
    assert.equal(await identities().delete(other, 'test'), false)
    assert.equal(await identities().delete(owner, 'third'), false)
    assert.equal(await identities().delete(owner, 'test'), true)
    assert.deepEqual(
      (await identities().listForUser(owner)).map((row) => row.provider),
      ['other'],
    )
    assert.equal(await identities().delete(owner, 'test'), false)
  })

  test('a flow is pending until vouched for or expired; the callback vouches for it once', async () => {
    const row = flowRow()
    await logins().insert(row)
    assert.equal((await logins().findPending(row.state_hash, at(599)))?.nonce, 'nonce')
    assert.equal(await logins().findPending(row.state_hash, at(600)), undefined, 'expired at expires_at')
    assert.equal(await logins().findPending(hex(), at(1)), undefined)

    const codeHash = hex()
    assert.equal(await logins().vouch(row.state_hash, vouched, codeHash, at(60)), true)
    assert.equal(await logins().vouch(row.state_hash, vouched, hex(), at(60)), false, 'once')
    assert.equal(await logins().findPending(row.state_hash, at(1)), undefined, 'no longer pending')
    const stored = await logins().findByCode(codeHash)
    assert.deepEqual(
      [
        stored?.subject,
        stored?.email,
        Boolean(stored?.email_verified),
        stored?.profile_name,
        stored?.nonce,
        stored?.code_verifier,
      ],
      ['person', 'person@example.com', true, 'Person', null, null],
    )
    assert.equal(stored?.expires_at.getTime(), at(60).getTime())
  })

  test('a one-time code is spent once, and not at or after its expiry', async () => {
    const row = flowRow()
    await logins().insert(row)
    const codeHash = hex()
    await logins().vouch(row.state_hash, vouched, codeHash, at(60))
    assert.equal(await logins().spendCode(codeHash, at(60)), false, 'expired at expires_at')
    assert.equal(await logins().spendCode(hex(), at(1)), false)
    assert.equal(await logins().spendCode(codeHash, at(59)), true)
    assert.equal(await logins().spendCode(codeHash, at(59)), false, 'once')
    assert.equal((await logins().findByCode(codeHash))?.used_at?.getTime(), at(59).getTime())
  })

  test('abandon ends a flow; deleteExpired sweeps the flows past their expiry and only those', async () => {
    const abandoned = flowRow()
    const expired = flowRow({ expires_at: at(100) })
    const live = flowRow({ expires_at: at(101) })
    for (const row of [abandoned, expired, live]) await logins().insert(row)
    await logins().abandon(abandoned.state_hash)
    await logins().deleteExpired(at(100))
    const left = await ctx.app.db
      .selectFrom('external_logins')
      .select('state_hash')
      .where('state_hash', 'in', [abandoned.state_hash, expired.state_hash, live.state_hash])
      .execute()
    assert.deepEqual(
      left.map((row) => row.state_hash),
      [live.state_hash],
    )
  })

  test('abandon leaves a flow already vouched for: a second callback of one state cannot undo the first', async () => {
    // Two callbacks with one state: the first is vouched for; the second, refused by the provider
    // (its code already exchanged), abandons the flow. The first one's code must still work.
    const row = flowRow()
    await logins().insert(row)
    const codeHash = hex()
    assert.equal(await logins().vouch(row.state_hash, vouched, codeHash, at(60)), true)
    await logins().abandon(row.state_hash)
    assert.equal((await logins().findByCode(codeHash))?.subject, 'person')
    assert.equal(await logins().spendCode(codeHash, at(1)), true)
  })
})
