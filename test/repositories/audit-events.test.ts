/** The audit-events repository against each engine: appending (also inside a transaction) and listing. */
import assert from 'node:assert/strict'
import { randomBytes, randomInt } from 'node:crypto'
import { test } from 'node:test'
import type { NewAuditEventRow } from '../../src/db/database.js'
import type { AuditEventFilters, AuditEventRecord } from '../../src/repositories/audit-events.js'
import { describeEachEngine, uniqueUser } from '../support/app.js'

const BASE = Math.floor(Date.now() / 1000) * 1000
const at = (seconds: number) => new Date(BASE + seconds * 1000)

/** Ids no account has: audit_events.user_id has no foreign key. */
const subjectId = () => randomInt(1_000_000, 2_000_000_000)
const eventName = () => `test.${randomBytes(6).toString('hex')}`

function newEvent(overrides: Partial<NewAuditEventRow> = {}): NewAuditEventRow {
  return {
    created_at: at(0),
    event: eventName(),
    outcome: 'success',
    user_id: subjectId(),
    actor_id: null,
    ip: null,
    user_agent: null,
    details: null,
    ...overrides,
  }
}

describeEachEngine('audit events repository', (ctx) => {
  const audit = () => ctx.app.repos.auditEvents
  const list = async (filters: AuditEventFilters, limit = 50) =>
    (await audit().list({ filters, limit })).map((row) => row.event)

  /** Inserts the events one by one and reads each back, with its id, as the newest row of its kind. */
  async function insertAll(rows: NewAuditEventRow[]): Promise<AuditEventRecord[]> {
    const stored: AuditEventRecord[] = []
    for (const row of rows) {
      await audit().insert(row)
      const found = await ctx.app.db
        .selectFrom('audit_events')
        .selectAll()
        .where('event', '=', row.event)
        .orderBy('id', 'desc')
        .executeTakeFirstOrThrow()
      assert.deepEqual(found, { ...row, id: found.id })
      stored.push(found)
    }
    return stored
  }

  test('insert stores every column; list reads every column back', async () => {
    const user = subjectId()
    const row = newEvent({
      user_id: user,
      actor_id: user + 1,
      outcome: 'blocked',
      ip: '203.0.113.9',
      user_agent: 'curl/8',
      details: '{"reason":"x"}',
    })
    await audit().insert(row)
    const listed = await audit().list({ filters: { userId: user }, limit: 10 })
    assert.equal(listed.length, 1)
    assert.ok(Number.isInteger(listed[0]!.id))
    assert.deepEqual(listed, [{ ...row, id: listed[0]!.id }])
  })

  test('list filters by subject, event, outcome and time (since inclusive, until exclusive)', async () => {
    const [user, other] = [subjectId(), subjectId()]
    const [e1, e2] = [eventName(), eventName()]
    const rows = [
      newEvent({ user_id: user, event: e1, created_at: at(-3) }),
      newEvent({ user_id: user, event: e2, created_at: at(-2) }),
      newEvent({ user_id: user, event: e1, created_at: at(-1), outcome: 'failure' }),
      newEvent({ user_id: other, event: e1, created_at: at(0) }),
    ]
    const [r1, r2, r3, r4] = await insertAll(rows)
    const ids = async (filters: AuditEventFilters) =>
      (await audit().list({ filters, limit: 50 })).map((row) => row.id)
    assert.deepEqual(await ids({ userId: user }), [r3!.id, r2!.id, r1!.id])
    assert.deepEqual(await ids({ userId: other }), [r4!.id])
    assert.deepEqual(await ids({ event: e1 }), [r4!.id, r3!.id, r1!.id])
    assert.deepEqual(await ids({ event: e2 }), [r2!.id])
    assert.deepEqual(await ids({ userId: user, event: e1 }), [r3!.id, r1!.id])
    assert.deepEqual(await ids({ userId: user, outcome: 'failure' }), [r3!.id])
    assert.deepEqual(await ids({ event: e1, outcome: 'success' }), [r4!.id, r1!.id])
    assert.deepEqual(await ids({ userId: user, outcome: 'blocked' }), [])
    assert.deepEqual(await ids({ userId: user, since: at(-2) }), [r3!.id, r2!.id])
    assert.deepEqual(await ids({ userId: user, until: at(-2) }), [r1!.id])
    assert.deepEqual(await ids({ userId: user, since: at(-2), until: at(-1) }), [r2!.id])
    assert.deepEqual(await ids({ userId: user, since: at(-1), until: at(-1) }), [])
    assert.deepEqual(await ids({ event: e1, since: at(-1), until: at(1) }), [r4!.id, r3!.id])
  })

  test('list pages newest first, ties on created_at broken by id, each event exactly once', async () => {
    const user = subjectId()
    const times = [0, -5, 0, 2, 0, -5, -7]
    const stored = await insertAll(times.map((second) => newEvent({ user_id: user, created_at: at(second) })))
    const expected = [...stored].sort(
      (x, y) => y.created_at.getTime() - x.created_at.getTime() || y.id - x.id,
    )
    assert.deepEqual(await audit().list({ filters: { userId: user }, limit: 50 }), expected)

    for (const limit of [1, 2, 3]) {
      const seen: AuditEventRecord[] = []
      for (;;) {
        const last = seen.at(-1)
        const page = await audit().list({
          filters: { userId: user },
          limit,
          after: last && { createdAt: last.created_at, id: last.id },
        })
        assert.ok(page.length <= limit)
        if (page.length === 0) break
        seen.push(...page)
        assert.ok(seen.length <= stored.length, 'no event is served twice')
      }
      assert.deepEqual(seen, expected, `limit ${limit}`)
    }
  })

  test('list without filters: the newest events of all, and the page after a position', async () => {
    // Later than anything else in the table, so that they are the first page.
    const rows = [
      newEvent({ created_at: at(100_001) }),
      newEvent({ created_at: at(100_002) }),
      newEvent({ created_at: at(100_002) }),
    ]
    const [a, b, c] = await insertAll(rows)
    assert.deepEqual(await audit().list({ filters: {}, limit: 2 }), [c, b])
    assert.deepEqual(await audit().list({ filters: {}, limit: 3 }), [c, b, a])
    const after = { createdAt: c!.created_at, id: c!.id }
    assert.deepEqual(await audit().list({ filters: {}, limit: 2, after }), [b, a])
    assert.deepEqual(await list({}, 1), [c!.event])
  })

  test('a failed insert inside a transaction undoes only itself: the transaction still commits', async () => {
    const user = subjectId()
    const [before, after] = [newEvent({ user_id: user }), newEvent({ user_id: user, created_at: at(1) })]
    const account = uniqueUser()
    const committed = await ctx.app.transaction(async (repos) => {
      await repos.auditEvents.insert(before)
      await assert.rejects(
        repos.auditEvents.insert(newEvent({ user_id: user, outcome: 'bogus' as never, created_at: at(2) })),
      )
      await repos.auditEvents.insert(after)
      return repos.users.insert({
        name: account.name,
        name_key: account.name,
        email: account.email,
        password_hash: 'x',
        role: 'user',
        is_active: true,
        email_verified: false,
        created_at: at(0),
        updated_at: at(0),
      })
    })
    assert.equal((await ctx.app.repos.users.findById(committed))?.email, account.email)
    assert.deepEqual(await list({ userId: user }), [after.event, before.event])
  })

  test('a failed insert outside a transaction throws and stores nothing', async () => {
    const user = subjectId()
    await assert.rejects(audit().insert(newEvent({ user_id: user, outcome: 'bogus' as never })))
    await audit().insert(newEvent({ user_id: user }))
    // Nothing was left open by the failure: a transaction can begin, and its insert commits.
    await ctx.app.transaction((repos) =>
      repos.auditEvents.insert(newEvent({ user_id: user, created_at: at(1) })),
    )
    assert.equal((await list({ userId: user })).length, 2)
  })
})
