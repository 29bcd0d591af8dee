/**
 * The signing keys repository, on every engine: keys listed by generation whatever the order they
 * were stored in; one key per generation and per kid (a second insert answers false and changes
 * nothing; of two concurrent inserts of one generation exactly one is stored); retirement given
 * to every other key that has none, and only to those; private keys erased at their retirement
 * time and not a millisecond before, once.
 *
 * The app is built with the default HS256, which stores no key: the table holds only what each
 * test puts there (every test empties it first).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import type { SigningKeyRow } from '../../src/repositories/signing-keys.js'
import { isDeadlock, isUniqueViolation } from '../../src/db/errors.js'
import { describeEachEngine, type EngineContext } from '../support/app.js'
import { at, raceInTransactions } from './support.js'

const ROUNDS = 5
/** `date` moved by `ms` milliseconds. */
const plus = (date: Date, ms: number) => new Date(date.getTime() + ms)

/** A stored key of `generation`, every column set (a kid of 43 base64url characters, like a thumbprint). */
function keyRow(generation: number, changes: Partial<SigningKeyRow> = {}): SigningKeyRow {
  const kid = randomBytes(32).toString('base64url')
  return {
    kid,
    generation,
    algorithm: 'EdDSA',
    public_jwk: JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: randomBytes(32).toString('base64url'), kid }),
    private_key: `v1.testkey.${randomBytes(12).toString('base64url')}.${randomBytes(48).toString('base64url')}`,
    created_at: at(generation * 10),
    activates_at: at(generation * 10 + 420),
    retires_at: null,
    ...changes,
  }
}

/** Stores `rows` as they are (retires_at included), in the order given. */
async function store(ctx: EngineContext, ...rows: SigningKeyRow[]) {
  for (const row of rows) await ctx.app.db.insertInto('signing_keys').values(row).execute()
  return rows
}

/** Every stored row, by generation, read without the repository. */
const storedRows = (ctx: EngineContext) =>
  ctx.app.db.selectFrom('signing_keys').selectAll().orderBy('generation').execute()

describeEachEngine('signing keys repository', (ctx) => {
  const keys = () => ctx.app.repos.signingKeys
  const empty = async () => {
    await ctx.app.db.deleteFrom('signing_keys').execute()
  }

  test('list: nothing when no key is stored (HS256 stores none)', async () => {
    await empty()
    assert.deepEqual(await keys().list(), [])
  })

  test('list: every key with every column, oldest generation first, whatever the order stored', async () => {
    await empty()
    const [third, first, second] = await store(
      ctx,
      keyRow(3),
      keyRow(1, { private_key: null, retires_at: at(900) }),
      keyRow(2, { algorithm: 'ES256', retires_at: at(1000) }),
    )
    assert.deepEqual(await keys().list(), [first, second, third])
  })

  insertTests(ctx, keys, empty)
  retireTests(ctx, keys, empty)
  eraseTests(ctx, keys, empty)
})

type Keys = () => EngineContext['app']['repos']['signingKeys']

function insertTests(ctx: EngineContext, keys: Keys, empty: () => Promise<void>) {
  test('insert: answers true and stores the key as given, not retired', async () => {
    await empty()
    const { retires_at: _none, ...key } = keyRow(1)
    assert.equal(await keys().insert(key), true)
    assert.deepEqual(await storedRows(ctx), [{ ...key, retires_at: null }])
  })

  test('insert: a generation taken already answers false and changes nothing', async () => {
    await empty()
    const [existing] = await store(ctx, keyRow(1))
    const { retires_at: _none, ...rival } = keyRow(1, { algorithm: 'ES256' })
    assert.equal(await keys().insert(rival), false)
    assert.deepEqual(await storedRows(ctx), [existing])
  })

  test('insert: a kid stored already (under another generation) answers false and changes nothing', async () => {
    await empty()
    const [existing] = await store(ctx, keyRow(1))
    const { retires_at: _none, ...again } = keyRow(2, { kid: existing!.kid })
    assert.equal(await keys().insert(again), false)
    assert.deepEqual(await storedRows(ctx), [existing])
  })

  test('insert: in a transaction (as a rotation runs it), a taken generation answers false and the transaction still ends', async () => {
    await empty()
    const [existing] = await store(ctx, keyRow(1))
    const { retires_at: _none, ...rival } = keyRow(1)
    const outcome = await ctx.app.transaction(async (repos) => {
      const added = await repos.signingKeys.insert(rival)
      return { added, rows: await repos.signingKeys.list() }
    })
    assert.deepEqual(outcome, { added: false, rows: [existing] })
    assert.deepEqual(await storedRows(ctx), [existing])
  })

  test('insert: an error other than a duplicate is thrown, not answered false', async () => {
    await empty()
    const { retires_at: _none, ...key } = keyRow(1)
    await assert.rejects(
      keys().insert({ ...key, public_jwk: null as unknown as string }),
      (error) => !isUniqueViolation(error),
    )
    assert.deepEqual(await storedRows(ctx), [])
  })

  test('insert: of two concurrent rotations to one generation (insert, then retireAllBut), exactly one is stored', async () => {
    await empty()
    for (let round = 0; round < ROUNDS; round++) {
      const rivals = [keyRow(round + 1), keyRow(round + 1)]
      // As services/stored-signing-keys.ts adds a key: the insert, and when it took the generation
      // the end of every other key, in one transaction.
      // InnoDB may end the loser's transaction to break the deadlock of the two: it lost too.
      const outcomes = await raceInTransactions(
        ctx,
        2,
        async (repos, party) => {
          const { retires_at: _none, ...key } = rivals[party]!
          const added = await repos.signingKeys.insert(key)
          if (added) await repos.signingKeys.retireAllBut(key.kid, at(1000 + round))
          return added
        },
        { by: isDeadlock, as: false },
      )
      assert.deepEqual([...outcomes].sort(), [false, true], `round ${round}`)
      const winner = rivals[outcomes.indexOf(true)]!
      const stored = await storedRows(ctx)
      assert.deepEqual(stored.at(-1), winner, `round ${round}: the winner’s key, not retired`)
      assert.equal(stored.length, round + 1, `round ${round}: one key per generation`)
    }
  })
}

function retireTests(ctx: EngineContext, keys: Keys, empty: () => Promise<void>) {
  test('retireAllBut: every other key without a retirement gets it; a retired one and the named one are untouched', async () => {
    await empty()
    const [old, retired, current, named] = await store(
      ctx,
      keyRow(1),
      keyRow(2, { retires_at: at(100), private_key: null }),
      keyRow(3),
      keyRow(4),
    )
    await keys().retireAllBut(named!.kid, at(50))
    assert.deepEqual(await storedRows(ctx), [
      { ...old, retires_at: at(50) },
      retired,
      { ...current, retires_at: at(50) },
      named,
    ])
    // A later rotation: the key retired a moment ago keeps its time; only the one named before gets one.
    const [newer] = await store(ctx, keyRow(5))
    await keys().retireAllBut(newer!.kid, at(70))
    assert.deepEqual(await storedRows(ctx), [
      { ...old, retires_at: at(50) },
      retired,
      { ...current, retires_at: at(50) },
      { ...named, retires_at: at(70) },
      newer,
    ])
  })

  test('retireAllBut: a kid that is not stored retires every key without a retirement', async () => {
    await empty()
    const [first, second] = await store(ctx, keyRow(1, { retires_at: at(5) }), keyRow(2))
    await keys().retireAllBut(randomBytes(32).toString('base64url'), at(60))
    assert.deepEqual(await storedRows(ctx), [first, { ...second, retires_at: at(60) }])
  })
}

function eraseTests(ctx: EngineContext, keys: Keys, empty: () => Promise<void>) {
  test('erasePrivateKeysRetiredBy: erases keys retired by then, at the very millisecond too; answers how many', async () => {
    await empty()
    const now = at(600)
    const [longAgo, justBefore, atNow, oneMsLater, notRetired, erased] = await store(
      ctx,
      keyRow(1, { retires_at: at(-3600) }),
      keyRow(2, { retires_at: plus(now, -1) }),
      keyRow(3, { retires_at: now }),
      keyRow(4, { retires_at: plus(now, 1) }),
      keyRow(5),
      keyRow(6, { retires_at: at(0), private_key: null }),
    )
    assert.equal(await keys().erasePrivateKeysRetiredBy(now), 3)
    assert.deepEqual(await storedRows(ctx), [
      { ...longAgo, private_key: null },
      { ...justBefore, private_key: null },
      { ...atNow, private_key: null },
      oneMsLater,
      notRetired,
      erased,
    ])
    assert.equal(await keys().erasePrivateKeysRetiredBy(now), 0, 'twice')
    assert.equal((await storedRows(ctx))[3]!.private_key, oneMsLater!.private_key, 'a millisecond left')

    assert.equal(await keys().erasePrivateKeysRetiredBy(plus(now, 1)), 1)
    assert.deepEqual(await storedRows(ctx), [
      { ...longAgo, private_key: null },
      { ...justBefore, private_key: null },
      { ...atNow, private_key: null },
      { ...oneMsLater, private_key: null },
      notRetired,
      erased,
    ])
  })

  test('erasePrivateKeysRetiredBy: nothing retired, nothing erased', async () => {
    await empty()
    const rows = await store(ctx, keyRow(1), keyRow(2, { retires_at: at(10) }))
    assert.equal(await keys().erasePrivateKeysRetiredBy(plus(at(10), -1)), 0)
    assert.deepEqual(await storedRows(ctx), rows)
  })
}
