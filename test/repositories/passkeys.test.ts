/**
 * The passkeys repository, on every engine: a passkey stored and read back in the engines' one
 * form (booleans, dates, the counter as a number); each condition of a lookup, a rename, a use and
 * a removal on its own; the claim that of two uses checked against one counter exactly one is
 * recorded; the user's row locked by every change of the set until its transaction ends; one
 * credential registered once; and the passkeys going with their user.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { NewPasskeyRow } from '../../src/db/database.js'
import { isUniqueViolation } from '../../src/db/errors.js'
import type { Repositories } from '../../src/repositories/index.js'
import type { PasskeyRecord } from '../../src/repositories/passkeys.js'
import { describeEachEngine } from '../support/app.js'
import { at, insertPlainUser, raceInTransactions } from './support.js'

const ROUNDS = 5
/** How long a transaction that took the user's lock stays open: the other one must wait it out. */
const HOLD_MS = 200
/** The largest value of an authenticator's 32-bit signature counter. */
const MAX_COUNTER = 2 ** 32 - 1

/** A new credential id (base64url) and the SHA-256 (hex) a login finds it by. */
function newCredential() {
  const credentialId = randomBytes(32).toString('base64url')
  return { credentialId, hash: createHash('sha256').update(credentialId).digest('hex') }
}

describeEachEngine('passkeys repository', (ctx) => {
  const passkeys = () => ctx.app.repos.passkeys
  const newUser = () => insertPlainUser(ctx.app.repos)

  /** A passkey row of `userId`, with every column set and `changes` over it. */
  function passkeyRow(userId: number, changes: Partial<NewPasskeyRow> = {}): NewPasskeyRow {
    const { credentialId, hash } = newCredential()
    return {
      user_id: userId,
      credential_hash: hash,
      credential_id: credentialId,
      user_handle: `handle-of-${userId}`,
      public_key: randomBytes(77).toString('base64url'),
      sign_count: 0,
      transports: 'usb,nfc',
      name: `Security key ${credentialId.slice(0, 6)}`,
      device_type: 'singleDevice',
      backed_up: false,
      aaguid: '00000000-0000-0000-0000-000000000000',
      created_at: at(0),
      last_used_at: null,
      ...changes,
    }
  }

  /** What the repository answers for the stored `row` with `id`: every column but the hash. */
  function recordOf(id: number, row: NewPasskeyRow): PasskeyRecord {
    const { id: _id, credential_hash: _hash, last_used_at, ...rest } = row
    return { id, ...rest, last_used_at: last_used_at ?? null }
  }

  /** Stores a passkey of `userId`; answers its id, its hash and what the repository reads back. */
  async function newPasskey(userId: number, changes: Partial<NewPasskeyRow> = {}, repos?: Repositories) {
    const row = passkeyRow(userId, changes)
    const id = await (repos ?? ctx.app.repos).passkeys.insert(row)
    assert.equal(typeof id, 'number')
    return { id: id!, hash: row.credential_hash, record: recordOf(id!, row) }
  }

  /** Whether a passkey with this id is stored, whoever’s. */
  const passkeyExists = async (id: number) =>
    (await ctx.app.db.selectFrom('passkeys').select('id').where('id', '=', id).executeTakeFirst()) !==
    undefined

  /**
   * Runs `first` in a transaction that stays open HOLD_MS after its work, then `second` in another
   * begun once that work is done; answers what each returned and in which order they finished.
   * When `first` holds the user's row and `second` needs it, `second` ends after `first` commits.
   * (SQLite runs one transaction at a time: there `second` always waits.)
   */
  async function secondAfterFirst<A, B>(
    first: (repos: Repositories) => Promise<A>,
    second: (repos: Repositories) => Promise<B>,
  ) {
    const order: string[] = []
    let worked!: () => void
    const firstWorked = new Promise<void>((resolve) => (worked = resolve))
    const firstDone = ctx.app.transaction(async (repos) => {
      const result = await first(repos)
      worked()
      await sleep(HOLD_MS)
      order.push('first commits')
      return result
    })
    await firstWorked
    const secondDone = ctx.app.transaction(async (repos) => {
      const result = await second(repos)
      order.push('second done')
      return result
    })
    const [firstResult, secondResult] = await Promise.all([firstDone, secondDone])
    return { firstResult, secondResult, order }
  }

  test('insert: answers the new id; the passkey reads back as stored, booleans, dates and counter included', async () => {
    const user = await newUser()
    const plain = await newPasskey(user)
    const synced = await newPasskey(user, {
      sign_count: 41,
      transports: '',
      name: 'Synced passkey',
      device_type: 'multiDevice',
      backed_up: true,
      aaguid: 'fbfc3007-154e-4ecc-8c0b-6e020557d7bd',
      created_at: at(3),
      last_used_at: at(7),
    })
    assert.ok(synced.id > plain.id, 'ids grow')
    assert.deepEqual(await passkeys().findByCredential(plain.hash), plain.record)
    assert.deepEqual(await passkeys().findByCredential(synced.hash), synced.record)
    assert.deepEqual(await passkeys().listForUser(user), [plain.record, synced.record])
    assert.equal(synced.record.backed_up, true)
    assert.equal(synced.record.sign_count, 41)
  })

  test('insert: a counter up to 2^32 − 1 is stored and read back exactly, as a number', async () => {
    const user = await newUser()
    const { hash, record } = await newPasskey(user, { sign_count: MAX_COUNTER })
    const found = await passkeys().findByCredential(hash)
    assert.equal(found?.sign_count, MAX_COUNTER)
    assert.deepEqual(found, record)
  })

  test('insert: undefined for a user that does not exist, and nothing is stored', async () => {
    const user = await newUser()
    await ctx.app.repos.users.delete(user)
    const row = passkeyRow(user)
    assert.equal(await passkeys().insert(row), undefined)
    assert.equal(await passkeys().findByCredential(row.credential_hash), undefined)
    assert.equal(await passkeys().countForUser(user), 0)
  })

  test('insert: a credential already registered, to anyone, is a unique violation; the first stays', async () => {
    const [user, other] = [await newUser(), await newUser()]
    const first = await newPasskey(user)
    const again = { credential_hash: first.hash, credential_id: first.record.credential_id }
    await assert.rejects(passkeys().insert(passkeyRow(other, again)), isUniqueViolation)
    await assert.rejects(passkeys().insert(passkeyRow(user, again)), isUniqueViolation)
    assert.deepEqual(await passkeys().findByCredential(first.hash), first.record)
    assert.equal(await passkeys().countForUser(other), 0)
    assert.equal(await passkeys().countForUser(user), 1)
  })

  test('listForUser: that user’s passkeys only, by id, whatever changed since; none for a user without', async () => {
    const [user, other, none] = [await newUser(), await newUser(), await newUser()]
    const first = await newPasskey(user, { name: 'first' })
    await newPasskey(other)
    const second = await newPasskey(user, { name: 'second', created_at: at(-5) })
    const third = await newPasskey(user, { name: 'third' })
    // Changed rows move within the table on some engines: the order must not come from there.
    assert.equal(await passkeys().rename(user, first.id, 'first, renamed'), true)
    assert.equal(await passkeys().recordUse(second.id, 0, 1, at(2)), true)
    assert.deepEqual(await passkeys().listForUser(user), [
      { ...first.record, name: 'first, renamed' },
      { ...second.record, sign_count: 1, last_used_at: at(2) },
      third.record,
    ])
    assert.deepEqual(await passkeys().listForUser(none), [])
  })

  test('listForUser: by id, also when the rows were stored in another order', async () => {
    const user = await newUser()
    // Ids far above the generated ones, stored highest first: the table's own order is the reverse.
    const stored = []
    for (const id of [1_000_000_003, 1_000_000_002, 1_000_000_001])
      stored.push(await newPasskey(user, { id, name: `key ${id}` }))
    assert.deepEqual(
      stored.map(({ id }) => id),
      [1_000_000_003, 1_000_000_002, 1_000_000_001],
    )
    assert.deepEqual(await passkeys().listForUser(user), stored.map(({ record }) => record).reverse())
  })

  test('findByCredential: the passkey of that credential, whoever’s; undefined for an unknown one', async () => {
    const [user, other] = [await newUser(), await newUser()]
    const mine = await newPasskey(user)
    const theirs = await newPasskey(other, { backed_up: true, device_type: 'multiDevice' })
    const later = await newPasskey(user, { name: 'later' })
    assert.deepEqual(await passkeys().findByCredential(theirs.hash), theirs.record)
    assert.deepEqual(await passkeys().findByCredential(later.hash), later.record)
    assert.deepEqual(await passkeys().findByCredential(mine.hash), mine.record)
    assert.equal(await passkeys().findByCredential(newCredential().hash), undefined)
  })

  test('countForUser: that user’s passkeys only', async () => {
    const [user, other, none] = [await newUser(), await newUser(), await newUser()]
    await newPasskey(user)
    await newPasskey(other)
    await newPasskey(user)
    await newPasskey(user)
    assert.equal(await passkeys().countForUser(user), 3)
    assert.equal(await passkeys().countForUser(other), 1)
    assert.equal(await passkeys().countForUser(none), 0)
  })

  test('rename: only that passkey of the user; true, also to the name it has', async () => {
    const user = await newUser()
    const renamed = await newPasskey(user, { name: 'old name' })
    const kept = await newPasskey(user, { name: 'kept name' })
    assert.equal(await passkeys().rename(user, renamed.id, 'new name'), true)
    assert.equal(await passkeys().rename(user, renamed.id, 'new name'), true, 'the same name again')
    assert.deepEqual(await passkeys().listForUser(user), [
      { ...renamed.record, name: 'new name' },
      kept.record,
    ])
  })

  test('rename: false for another user’s passkey, which keeps its name, and for an unknown id', async () => {
    const [user, other] = [await newUser(), await newUser()]
    const mine = await newPasskey(user, { name: 'mine' })
    const theirs = await newPasskey(other, { name: 'theirs' })
    assert.equal(await passkeys().rename(user, theirs.id, 'taken'), false)
    assert.deepEqual(await passkeys().listForUser(other), [theirs.record])
    assert.equal(await passkeys().rename(user, theirs.id + 1000, 'unknown'), false)
    assert.deepEqual(await passkeys().listForUser(user), [mine.record])
  })

  test('recordUse: only from the stored counter; sets the counter and the time of use', async () => {
    const user = await newUser()
    const { id, hash, record } = await newPasskey(user, { sign_count: 10 })
    assert.equal(await passkeys().recordUse(id, 9, 11, at(1)), false, 'an older counter')
    assert.equal(await passkeys().recordUse(id, 11, 12, at(1)), false, 'a later counter')
    assert.deepEqual(await passkeys().findByCredential(hash), record, 'nothing recorded')
    assert.equal(await passkeys().recordUse(id, 10, 15, at(2)), true)
    assert.deepEqual(await passkeys().findByCredential(hash), {
      ...record,
      sign_count: 15,
      last_used_at: at(2),
    })
    assert.equal(await passkeys().recordUse(id, 10, 16, at(3)), false, 'the counter it was read with moved')
    assert.equal(await passkeys().recordUse(id, 15, MAX_COUNTER, at(4)), true)
    assert.deepEqual(await passkeys().findByCredential(hash), {
      ...record,
      sign_count: MAX_COUNTER,
      last_used_at: at(4),
    })
  })

  test('recordUse: only that passkey; others with the same counter, the user’s or another’s, are untouched', async () => {
    const [user, other] = [await newUser(), await newUser()]
    const used = await newPasskey(user, { sign_count: 3 })
    const sibling = await newPasskey(user, { sign_count: 3 })
    const theirs = await newPasskey(other, { sign_count: 3 })
    assert.equal(await passkeys().recordUse(used.id, 3, 4, at(5)), true)
    assert.deepEqual(await passkeys().listForUser(user), [
      { ...used.record, sign_count: 4, last_used_at: at(5) },
      sibling.record,
    ])
    assert.deepEqual(await passkeys().listForUser(other), [theirs.record])
    assert.equal(await passkeys().recordUse(theirs.id + 1000, 3, 4, at(5)), false, 'an unknown id')
  })

  test('recordUse: an authenticator that does not count (0 → 0) has each use recorded', async () => {
    const user = await newUser()
    const { id, hash, record } = await newPasskey(user, { sign_count: 0 })
    assert.equal(await passkeys().recordUse(id, 0, 0, at(1)), true)
    assert.equal(await passkeys().recordUse(id, 0, 0, at(2)), true)
    assert.deepEqual(await passkeys().findByCredential(hash), { ...record, last_used_at: at(2) })
  })

  test('delete: only that passkey of the user; true once; another user’s stays', async () => {
    const [user, other] = [await newUser(), await newUser()]
    const removed = await newPasskey(user)
    const kept = await newPasskey(user)
    const theirs = await newPasskey(other)
    assert.equal(await passkeys().delete(user, theirs.id), false, 'another user’s passkey')
    assert.deepEqual(await passkeys().listForUser(other), [theirs.record])
    assert.equal(await passkeys().delete(user, removed.id), true)
    assert.deepEqual(await passkeys().listForUser(user), [kept.record])
    assert.equal(await passkeys().delete(user, removed.id), false, 'twice')
    assert.equal(await passkeys().delete(user, theirs.id + 1000), false, 'an unknown id')
    assert.deepEqual(await passkeys().listForUser(user), [kept.record])
  })

  test('deleteAll: every passkey of the user and no other’s; answers how many', async () => {
    const [user, other] = [await newUser(), await newUser()]
    await newPasskey(user)
    await newPasskey(user, { last_used_at: at(1), sign_count: 9 })
    const theirs = await newPasskey(other)
    assert.equal(await passkeys().deleteAll(user), 2)
    assert.deepEqual(await passkeys().listForUser(user), [])
    assert.deepEqual(await passkeys().listForUser(other), [theirs.record])
    assert.equal(await passkeys().deleteAll(user), 0)
  })

  test('deleting the user deletes the passkeys', async () => {
    const [user, other] = [await newUser(), await newUser()]
    const mine = [await newPasskey(user), await newPasskey(user)]
    const theirs = await newPasskey(other)
    await ctx.app.repos.users.delete(user)
    for (const { id } of mine) assert.equal(await passkeyExists(id), false)
    assert.equal(await passkeys().countForUser(user), 0)
    assert.deepEqual(await passkeys().findByCredential(theirs.hash), theirs.record)
  })

  test('recordUse: of two concurrent uses checked against one counter, exactly one is recorded', async () => {
    const user = await newUser()
    const { id, hash } = await newPasskey(user, { sign_count: 100 })
    let count = 100
    for (let round = 0; round < ROUNDS; round++) {
      const outcomes = await raceInTransactions(ctx, 2, (repos, party) =>
        repos.passkeys.recordUse(id, count, count + 1 + party, at(10 + party)),
      )
      assert.deepEqual([...outcomes].sort(), [false, true], `round ${round}`)
      const winner = outcomes.indexOf(true)
      const found = await passkeys().findByCredential(hash)
      assert.equal(found?.sign_count, count + 1 + winner, `round ${round}: the winner’s counter`)
      assert.equal(found?.last_used_at?.getTime(), at(10 + winner).getTime(), `round ${round}`)
      count = found!.sign_count
    }
  })

  test('insert holds the user’s row until it commits: a removal of every passkey waits, then takes the new one too', async () => {
    const user = await newUser()
    await newPasskey(user)
    const { firstResult, secondResult, order } = await secondAfterFirst(
      (repos) => newPasskey(user, {}, repos),
      (repos) => repos.passkeys.deleteAll(user),
    )
    assert.deepEqual(order, ['first commits', 'second done'])
    assert.equal(secondResult, 2, 'the new passkey is removed with the old one')
    assert.equal(await passkeyExists(firstResult.id), false)
    assert.equal(await passkeys().countForUser(user), 0)
  })

  test('delete holds the user’s row until it commits: a new passkey waits for it', async () => {
    const user = await newUser()
    const removed = await newPasskey(user)
    const kept = await newPasskey(user)
    const { firstResult, secondResult, order } = await secondAfterFirst(
      (repos) => repos.passkeys.delete(user, removed.id),
      (repos) => newPasskey(user, {}, repos),
    )
    assert.deepEqual(order, ['first commits', 'second done'])
    assert.equal(firstResult, true)
    assert.deepEqual(await passkeys().listForUser(user), [kept.record, secondResult.record])
  })

  test('deleteAll holds the user’s row until it commits: a new passkey waits for it, and stays', async () => {
    const user = await newUser()
    await newPasskey(user)
    await newPasskey(user)
    const { firstResult, secondResult, order } = await secondAfterFirst(
      (repos) => repos.passkeys.deleteAll(user),
      (repos) => newPasskey(user, {}, repos),
    )
    assert.deepEqual(order, ['first commits', 'second done'])
    assert.equal(firstResult, 2)
    assert.deepEqual(await passkeys().listForUser(user), [secondResult.record])
  })
})
