/**
 * GET /audit-events: admin only, filters and pages the trail newest first, and refuses unknown
 * filters, bad values and tampered cursors. The trail is seeded first with every kind of event
 * (seedTrail), so the listing has enough rows of its own to page and filter.
 */
import assert from 'node:assert/strict'
import { before, test } from 'node:test'
import { assertProblem, describeEachEngine } from '../../support/app.js'
import { type AuditRow, MAIL_ENV, auditTrail, logger, newClient, seedTrail } from './support.js'

describeEachEngine(
  'audit trail: listing',
  (ctx) => {
    const trail = auditTrail(ctx)
    const { app, allRows, registerAs, session, anAdmin, walk } = trail

    before(async () => seedTrail(trail))

    // -------------------------------------------------------------- GET /audit-events

    test('GET /audit-events: 401 without a token, 403 for a user, 200 for an admin', async () => {
      assertProblem(await app().inject('/audit-events'), 401)
      const client = newClient()
      const user = await registerAs(client)
      const { headers } = await session(client, user)
      assertProblem(await app().inject({ url: '/audit-events', headers }), 403)
      const admin = await anAdmin()
      const response = await app().inject({ url: '/audit-events', headers: admin.headers })
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.headers['cache-control'], 'no-store')
      const page = response.json<{ items: Record<string, unknown>[]; next_cursor: string | null }>()
      assert.equal(page.items.length, 20, 'the default page size')
      assert.equal(typeof page.next_cursor, 'string')
      assert.deepEqual(Object.keys(page.items[0]!).sort(), [
        'actor_id',
        'created_at',
        'details',
        'event',
        'id',
        'ip',
        'outcome',
        'user_agent',
        'user_id',
      ])
      // Exactly the stored rows, newest first, with details as an object.
      const stored = (await allRows()).slice(0, 20)
      assert.deepEqual(
        page.items,
        stored.map((row) => ({ ...row, created_at: row.created_at.toISOString() })),
      )
      assert.ok(page.items.some((item) => Object.keys(item.details as object).length > 0))
    })

    test('pagination walks every row once, newest first', async () => {
      const { ids, pages } = await walk('', 7)
      // The rows of the admin that walk() logged in are part of it.
      const expected = (await allRows()).map((row) => row.id)
      assert.ok(expected.length > 30, `only ${expected.length} rows`)
      assert.deepEqual(ids, expected)
      assert.equal(pages, Math.ceil(expected.length / 7))
    })

    test('filters: user_id, event, outcome and a since/until range', async () => {
      const rows = await allRows()
      const someUser = rows.find((row) => row.event === 'password_changed')!.user_id!
      const expectIds = (keep: (row: AuditRow) => boolean) => rows.filter(keep).map((row) => row.id)

      const byUser = await walk(`user_id=${someUser}`, 2)
      assert.deepEqual(
        byUser.ids,
        expectIds((row) => row.user_id === someUser),
      )
      assert.ok(byUser.ids.length >= 3)

      const failed = await walk('event=login_failed', 3)
      assert.deepEqual(
        failed.ids,
        expectIds((row) => row.event === 'login_failed'),
      )
      assert.ok(failed.ids.length >= 3)

      const blocked = await walk('outcome=blocked', 3)
      assert.deepEqual(
        blocked.ids,
        expectIds((row) => row.outcome === 'blocked'),
      )
      assert.ok(blocked.ids.length >= 1)

      const combined = await walk(`user_id=${someUser}&outcome=success&event=password_changed`, 5)
      assert.deepEqual(
        combined.ids,
        expectIds(
          (row) => row.user_id === someUser && row.outcome === 'success' && row.event === 'password_changed',
        ),
      )

      // A range around the middle rows (the walks above added rows after these).
      const instants = [...new Set(rows.map((row) => row.created_at.getTime()))].sort((a, b) => a - b)
      assert.ok(instants.length >= 4)
      const since = new Date(instants[Math.floor(instants.length / 3)]!)
      const until = new Date(instants[Math.floor((2 * instants.length) / 3)]!)
      const ranged = await walk(`since=${since.toISOString()}&until=${until.toISOString()}`, 4)
      assert.deepEqual(
        ranged.ids,
        expectIds((row) => row.created_at >= since && row.created_at < until),
      )
      assert.ok(ranged.ids.length >= 1)
      // The same instant written in another time zone is the same bound.
      const inUtcPlusOne = new Date(since.getTime() + 3_600_000).toISOString().replace('Z', '+01:00')
      const again = await walk(`since=${encodeURIComponent(inUtcPlusOne)}&until=${until.toISOString()}`, 4)
      assert.deepEqual(again.ids, ranged.ids)
    })

    test('unknown filters and bad values are 422', async () => {
      const admin = await anAdmin()
      for (const query of [
        'username=someone',
        'user=1',
        'event=not_an_event',
        'outcome=maybe',
        'user_id=abc',
        'user_id=0',
        'since=yesterday',
        'since=2026-01-01',
        'limit=0',
        'limit=101',
        'since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z',
      ]) {
        const response = await app().inject({ url: `/audit-events?${query}`, headers: admin.headers })
        const problem = assertProblem(response, 422)
        assert.ok(problem.errors?.length, `${query}: no errors listed`)
      }
    })

    test('a tampered cursor, or one from other filters, is 422', async () => {
      const admin = await anAdmin()
      const first = await app().inject({ url: '/audit-events?limit=2', headers: admin.headers })
      const cursor = first.json<{ next_cursor: string }>().next_cursor
      assert.ok(cursor)
      const [payload, signature] = cursor.split('.') as [string, string]
      const position = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<
        string,
        unknown
      >
      const forged = Buffer.from(JSON.stringify({ ...position, i: 1 })).toString('base64url')
      const otherSignature = `${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`
      for (const bad of [`${forged}.${signature}`, `${payload}.${otherSignature}`, 'abc.def']) {
        const response = await app().inject({
          url: `/audit-events?limit=2&cursor=${bad}`,
          headers: admin.headers,
        })
        assertProblem(response, 422)
      }
      const other = await app().inject({
        url: `/audit-events?limit=2&outcome=failure&cursor=${cursor}`,
        headers: admin.headers,
      })
      assertProblem(other, 422)
      assert.equal(
        (await app().inject({ url: `/audit-events?limit=2&cursor=${cursor}`, headers: admin.headers }))
          .statusCode,
        200,
      )
    })
  },
  { env: MAIL_ENV, build: { logger } },
)
