/**
 * Transactions and their effects beyond the database, on every engine: an effect registered with
 * afterCommit runs once the transaction has committed, in order, and never for one that rolled
 * back; outside a transaction it runs at once. And the readiness probe's two queries.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { openDatabase } from '../../src/db/open.js'
import { parseDatabaseUrl } from '../../src/db/target.js'
import { createReadinessProbeRepository } from '../../src/repositories/readiness-probe.js'
import { describeEachEngine, uniqueUser } from '../support/app.js'

describeEachEngine('transactions and their effects', (ctx) => {
  const newUser = () => {
    const user = uniqueUser()
    const now = new Date(Math.floor(Date.now() / 1000) * 1000)
    return {
      name: user.name,
      name_key: user.name.toLowerCase(),
      email: user.email,
      password_hash: 'not a real hash',
      role: 'user' as const,
      is_active: true,
      email_verified: false,
      created_at: now,
      updated_at: now,
    }
  }

  test('effects run after the commit, in the order registered, and see the committed rows', async () => {
    const seen: string[] = []
    const row = newUser()
    const id = await ctx.app.transaction(async (repos) => {
      const id = await repos.users.insert(row)
      await repos.afterCommit(async () => {
        seen.push(`first sees ${(await ctx.app.repos.users.findById(id))?.email}`)
      })
      await repos.afterCommit(async () => {
        seen.push('second')
      })
      seen.push('work done')
      return id
    })
    assert.deepEqual(seen, ['work done', `first sees ${row.email}`, 'second'])
    assert.ok(id > 0)
  })

  test('a transaction that throws rolls back, and its effects never run', async () => {
    const seen: string[] = []
    const row = newUser()
    await assert.rejects(
      ctx.app.transaction(async (repos) => {
        await repos.users.insert(row)
        await repos.afterCommit(async () => {
          seen.push('effect')
        })
        throw new Error('the work failed')
      }),
      /the work failed/,
    )
    assert.deepEqual(seen, [])
    const left = await ctx.app.db.selectFrom('users').select('id').where('email', '=', row.email).execute()
    assert.deepEqual(left, [], 'the insert was rolled back')
  })

  test('outside a transaction, an effect runs at once', async () => {
    const seen: string[] = []
    await ctx.app.repos.afterCommit(async () => {
      seen.push('now')
    })
    assert.deepEqual(seen, ['now'])
  })

  test('the readiness ping asks the database: once its connection is closed, the ping fails', async () => {
    const handle = openDatabase(parseDatabaseUrl(ctx.databaseUrl))
    const probe = createReadinessProbeRepository(handle.db)
    await probe.ping()
    await handle.db.destroy()
    await assert.rejects(probe.ping())
  })

  test('the readiness probe: a ping, and a write that commits the time it is given', async () => {
    await ctx.app.repos.readinessProbe.ping()
    const time = new Date(Math.floor(Date.now() / 1000) * 1000 + 3_600_000)
    await ctx.app.repos.readinessProbe.write(time)
    const row = await ctx.app.db
      .selectFrom('readiness_probe')
      .select(['id', 'checked_at'])
      .executeTakeFirstOrThrow()
    assert.equal(row.id, 1)
    assert.equal(new Date(row.checked_at).getTime(), time.getTime())
  })
})
