/**
 * The audit trail: each security action leaves one row (whose, by whom, from which address and user
 * agent), all or nothing with its change. Each test reads only the rows written since its own mark;
 * the listing (audit-listing.test.ts) and the secrets check (audit-secrets.test.ts) seed rows of
 * their own, and the last test here checks every secret these actions handled.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { hashOpaqueToken } from '../../../src/auth/opaque-tokens.js'
import { assertProblem, describeEachEngine } from '../../support/app.js'
import {
  waitForResetToken,
  logLines,
  newClient,
  sidOf,
  assertRows,
  MAIL_ENV,
  logger,
  logText,
  auditTrail,
  seedTrail,
} from './support.js'

describeEachEngine(
  'audit trail',
  (ctx) => {
    const trail = auditTrail(ctx)
    const {
      keep,
      app,
      send,
      lastId,
      rowsSince,
      rowsOf,
      allRows,
      passwordHashOf,
      registerAs,
      loginAs,
      session,
      refresh,
      anAdmin,
      secrets,
    } = trail

    // -------------------------------------------------------------- each action leaves its row

    test('registration and a login each leave one row: whose, from which address and user agent', async () => {
      const client = newClient()
      let mark = await lastId()
      const user = await registerAs(client)
      assertRows(
        await rowsSince(mark),
        [
          {
            event: 'user_registered',
            outcome: 'success',
            user_id: user.id,
            actor_id: null,
            client,
            details: { role: 'user' },
          },
        ],
        'registration',
      )

      mark = await lastId()
      await session(client, user)
      assertRows(
        await rowsSince(mark),
        [{ event: 'login_succeeded', outcome: 'success', user_id: user.id, actor_id: null, client }],
        'login',
      )
    })

    test('a failed login names the account it tried; for an unknown name, the name is stored nowhere', async () => {
      const client = newClient()
      const user = await registerAs(client)

      let mark = await lastId()
      const wrong = await loginAs(client, user.email, 'not the password at all')
      assertProblem(wrong, 401)
      assertRows(
        await rowsSince(mark),
        [
          {
            event: 'login_failed',
            outcome: 'failure',
            user_id: user.id,
            actor_id: null,
            client,
            details: { reason: 'wrong_password' },
          },
        ],
        'wrong password',
      )

      // Someone typed their password into the username field.
      const typedPassword = `Tr0ub4dor&3-${randomBytes(6).toString('hex')}`
      keep(typedPassword, typedPassword.toLowerCase())
      mark = await lastId()
      const logMark = logLines.length
      const unknown = await loginAs(client, typedPassword, 'whatever it was')
      assertProblem(unknown, 401)
      assert.equal(unknown.body, wrong.body, 'the same answer as for a wrong password')
      assertRows(
        await rowsSince(mark),
        [
          {
            event: 'login_failed',
            outcome: 'failure',
            user_id: null,
            actor_id: null,
            client,
            details: { reason: 'unknown_account' },
          },
        ],
        'unknown account',
      )
      const logged = logLines.slice(logMark)
      const failure = logged.filter((line) => line.event === 'login_failed')
      assert.equal(failure.length, 1, 'one log line for the event')
      assert.equal(failure[0]!.level, 40, 'logged as a warning')
      const stored = JSON.stringify(await allRows())
      for (const text of [stored, JSON.stringify(logged)])
        assert.equal(
          text.toLowerCase().includes(typedPassword.toLowerCase()),
          false,
          'the login name was kept',
        )
    })

    test('logout leaves one row with the session it ended', async () => {
      const client = newClient()
      const user = await registerAs(client)
      const { access_token: accessToken, headers } = await session(client, user)
      const mark = await lastId()
      const response = await send(client, { method: 'POST', url: '/logout', headers })
      assert.equal(response.statusCode, 204, response.body)
      assertRows(
        await rowsSince(mark),
        [
          {
            event: 'logout',
            outcome: 'success',
            user_id: user.id,
            actor_id: user.id,
            client,
            details: { session_id: sidOf(accessToken) },
          },
        ],
        'logout',
      )
    })

    test('refreshing leaves no row; presenting a rotated refresh token again leaves one, as blocked', async () => {
      const client = newClient()
      const user = await registerAs(client)
      const first = await session(client, user)
      const mark = await lastId()
      const second = await refresh(client, first.refresh_token)
      assert.equal(second.statusCode, 200, second.body)
      const third = await refresh(client, second.json<{ refresh_token: string }>().refresh_token)
      assert.equal(third.statusCode, 200, third.body)
      assert.deepEqual(await rowsSince(mark), [], 'a refresh is not a security event')

      const thief = newClient()
      assertProblem(await refresh(thief, first.refresh_token), 401)
      assertRows(
        await rowsSince(mark),
        [
          {
            event: 'refresh_token_reuse',
            outcome: 'blocked',
            user_id: user.id,
            actor_id: null,
            client: thief,
            details: { session_id: sidOf(first.access_token) },
          },
        ],
        'reuse',
      )
    })

    test('a password change leaves one row; a wrong current password leaves a failure', async () => {
      const client = newClient()
      const user = await registerAs(client)
      const { headers } = await session(client, user)
      const newPassword = `a brand new passphrase ${randomBytes(4).toString('hex')}`
      keep(newPassword)

      let mark = await lastId()
      const refused = await send(client, {
        method: 'PUT',
        url: '/users/me/password',
        headers,
        payload: { current_password: 'not my password at all', new_password: newPassword },
      })
      assertProblem(refused, 422)
      assertRows(
        await rowsSince(mark),
        [
          {
            event: 'password_change_failed',
            outcome: 'failure',
            user_id: user.id,
            actor_id: user.id,
            client,
            details: { reason: 'wrong_current_password' },
          },
        ],
        'wrong current password',
      )

      mark = await lastId()
      const changed = await send(client, {
        method: 'PUT',
        url: '/users/me/password',
        headers,
        payload: { current_password: user.password, new_password: newPassword },
      })
      assert.equal(changed.statusCode, 204, changed.body)
      keep(await passwordHashOf(user.id))
      assertRows(
        await rowsSince(mark),
        [{ event: 'password_changed', outcome: 'success', user_id: user.id, actor_id: user.id, client }],
        'password changed',
      )
    })

    test('a reset through the emailed link: one row for the request, one for the reset; none for an unknown email', async () => {
      const asking = newClient()
      const user = await registerAs(asking)

      let mark = await lastId()
      const unknown = await send(asking, {
        method: 'POST',
        url: '/password-recovery',
        payload: { email: `nobody-${randomBytes(4).toString('hex')}@example.com` },
      })
      assert.equal(unknown.statusCode, 202)
      assert.ok(await app().accountEmails.whenIdle(15_000))
      assert.deepEqual(await rowsSince(mark), [], 'no row for an address without an account')

      const asked = await send(asking, {
        method: 'POST',
        url: '/password-recovery',
        payload: { email: user.email },
      })
      assert.equal(asked.statusCode, 202)
      const token = await waitForResetToken(user.email, 1)
      keep(token, hashOpaqueToken(token))
      assert.ok(await app().accountEmails.whenIdle(15_000))
      assertRows(
        await rowsSince(mark),
        [
          {
            event: 'password_reset_requested',
            outcome: 'success',
            user_id: user.id,
            actor_id: null,
            client: asking,
          },
        ],
        'reset requested',
      )

      const resetting = newClient()
      const newPassword = `reset passphrase ${randomBytes(4).toString('hex')}`
      keep(newPassword)
      mark = await lastId()
      const reset = await send(resetting, {
        method: 'POST',
        url: '/reset-password',
        payload: { token, new_password: newPassword },
      })
      assert.equal(reset.statusCode, 204, reset.body)
      keep(await passwordHashOf(user.id))
      assertRows(
        await rowsSince(mark),
        [
          {
            event: 'password_reset',
            outcome: 'success',
            user_id: user.id,
            actor_id: null,
            client: resetting,
          },
        ],
        'reset',
      )
      // A used link: refused, and nothing recorded as a reset.
      mark = await lastId()
      assertProblem(
        await send(resetting, {
          method: 'POST',
          url: '/reset-password',
          payload: { token, new_password: `${newPassword} again` },
        }),
        400,
      )
      assert.deepEqual(await rowsSince(mark), [])
    })

    test('an admin changing a role, deactivating and reactivating: one row each, the admin as actor', async () => {
      const admin = await anAdmin()
      const client = newClient()
      const user = await registerAs(client)
      const patch = (payload: Record<string, unknown>) =>
        send(client, { method: 'PATCH', url: `/users/${user.id}`, headers: admin.headers, payload })
      const asAdmin = { user_id: user.id, actor_id: admin.id, client, outcome: 'success' } as const

      let mark = await lastId()
      assert.equal((await patch({ role: 'admin' })).statusCode, 200)
      assertRows(
        await rowsSince(mark),
        [{ ...asAdmin, event: 'user_role_changed', details: { from: 'user', to: 'admin' } }],
        'promotion',
      )

      mark = await lastId()
      assert.equal((await patch({ role: 'admin' })).statusCode, 200)
      assert.deepEqual(await rowsSince(mark), [], 'no change, no row')

      mark = await lastId()
      assert.equal((await patch({ role: 'user', is_active: false })).statusCode, 200)
      assertRows(
        await rowsSince(mark),
        [
          { ...asAdmin, event: 'user_role_changed', details: { from: 'admin', to: 'user' } },
          { ...asAdmin, event: 'user_deactivated' },
        ],
        'demotion and deactivation',
      )

      mark = await lastId()
      assertProblem(await loginAs(client, user.email, user.password), 401)
      assertRows(
        await rowsSince(mark),
        [
          {
            event: 'login_failed',
            outcome: 'failure',
            user_id: user.id,
            actor_id: null,
            client,
            details: { reason: 'inactive' },
          },
        ],
        'login of a deactivated account',
      )

      mark = await lastId()
      assert.equal((await patch({ is_active: true })).statusCode, 200)
      assertRows(await rowsSince(mark), [{ ...asAdmin, event: 'user_reactivated' }], 'reactivation')
    })

    test('a user deleted by an admin: one row, and the trail of the account outlives it', async () => {
      const admin = await anAdmin()
      const client = newClient()
      const user = await registerAs(client)
      await session(client, user)
      const mark = await lastId()
      const deleted = await send(client, {
        method: 'DELETE',
        url: `/users/${user.id}`,
        headers: admin.headers,
      })
      assert.equal(deleted.statusCode, 204, deleted.body)
      assertRows(
        await rowsSince(mark),
        [{ event: 'user_deleted', outcome: 'success', user_id: user.id, actor_id: admin.id, client }],
        'deletion',
      )
      assert.deepEqual(
        (await rowsOf(user.id)).map((row) => row.event),
        ['user_registered', 'login_succeeded', 'user_deleted'],
      )
      const listed = await app().inject({ url: `/audit-events?user_id=${user.id}`, headers: admin.headers })
      assert.equal(listed.statusCode, 200, listed.body)
      assert.deepEqual(
        listed.json<{ items: { event: string }[] }>().items.map((item) => item.event),
        ['user_deleted', 'login_succeeded', 'user_registered'],
      )
    })

    test('control characters and over-long user agents are stored as received, within the column size', async () => {
      const user = await registerAs(newClient())
      const forged = 'Evil/1.0\r\n{"level":30,"msg":"forged"}\u0001\u001b[31m\ttab'
      const cases = [
        { sent: forged, stored: forged },
        // NUL cannot be stored in PostgreSQL text: it becomes U+FFFD on every engine.
        { sent: 'nul\u0000byte', stored: 'nul\uFFFDbyte' },
        // 600 code points, emoji included: cut at 512 code points (the varchar's unit).
        { sent: '😀'.repeat(300) + 'x'.repeat(300), stored: '😀'.repeat(300) + 'x'.repeat(212) },
      ]
      for (const { sent, stored } of cases) {
        const mark = await lastId()
        // A failed login: its only write is the audit row.
        const response = await loginAs(
          { ip: '203.0.113.50', userAgent: sent },
          user.email,
          'a wrong password',
        )
        assertProblem(response, 401)
        const rows = await rowsSince(mark)
        assert.equal(rows.length, 1)
        assert.equal(rows[0]!.user_agent, stored)
      }
    })

    // -------------------------------------------------------------- all or nothing

    test('a deletion that rolls back leaves no audit row; the one that commits leaves one', async () => {
      type Blockers = Record<'audit_blocker', { user_id: number }>
      const blockers = () => app().db.withTables<Blockers>()
      await blockers()
        .schema.createTable('audit_blocker')
        .ifNotExists()
        .addColumn('user_id', 'integer', (col) => col.notNull())
        .addForeignKeyConstraint('audit_blocker_user_fk', ['user_id'], 'users', ['id'])
        .execute()
      const client = newClient()
      const user = await registerAs(client)
      const { headers } = await session(client, user)
      await blockers().insertInto('audit_blocker').values({ user_id: user.id }).execute()

      const mark = await lastId()
      // The user's row cannot go (a foreign key): the transaction fails after the audit insert.
      assertProblem(await send(client, { method: 'DELETE', url: `/users/${user.id}`, headers }), 500)
      assert.deepEqual(await rowsSince(mark), [], 'the rolled-back deletion left a row')

      await blockers().deleteFrom('audit_blocker').where('user_id', '=', user.id).execute()
      const deleted = await send(client, { method: 'DELETE', url: `/users/${user.id}`, headers })
      assert.equal(deleted.statusCode, 204, deleted.body)
      assertRows(
        await rowsSince(mark),
        [{ event: 'user_deleted', outcome: 'success', user_id: user.id, actor_id: user.id, client }],
        'deletion',
      )
    })

    test('when the audit row cannot be written, the request still succeeds and the failure is logged', async () => {
      const client = newClient()
      const user = await registerAs(client)
      const { headers } = await session(client, user)
      const newPassword = `changed while the trail is down ${randomBytes(4).toString('hex')}`
      keep(newPassword)
      const logMark = logLines.length
      await app().db.schema.alterTable('audit_events').renameTo('audit_events_away').execute()
      try {
        assert.equal((await loginAs(client, user.email, user.password)).statusCode, 200)
        // In a transaction: on PostgreSQL a failed statement would doom it without the savepoint.
        const changed = await send(client, {
          method: 'PUT',
          url: '/users/me/password',
          headers,
          payload: { current_password: user.password, new_password: newPassword },
        })
        assert.equal(changed.statusCode, 204, changed.body)
      } finally {
        await app().db.schema.alterTable('audit_events_away').renameTo('audit_events').execute()
      }
      keep(await passwordHashOf(user.id))
      assert.equal((await loginAs(client, user.email, newPassword)).statusCode, 200, 'the change was kept')
      const logged = logLines.slice(logMark)
      const errors = logged.filter(
        (line) => line.level === 50 && /audit trail could not record/.test(String(line.msg)),
      )
      assert.deepEqual(
        errors.map((line) => line.event),
        ['login_succeeded', 'password_changed'],
      )
      assert.ok(
        logged.some((line) => line.event === 'password_changed' && line.level === 30),
        'the event itself is still logged',
      )
    })

    // Last: over every secret the tests above handled (the seed adds rows of each kind of event).
    test('no password, token or hash of these actions appears in any audit row, nor in the log', async () => {
      await seedTrail(trail)
      const rows = await allRows()
      assert.ok(rows.length > 40, `only ${rows.length} rows`)
      assert.ok(secrets.size > 40, `only ${secrets.size} secrets collected`)
      const stored = JSON.stringify(rows)
      const log = logText()
      for (const secret of secrets) {
        assert.equal(stored.includes(secret), false, `an audit row holds a secret (${secret.slice(0, 6)}…)`)
        assert.equal(log.includes(secret), false, `the log holds a secret (${secret.slice(0, 6)}…)`)
      }
    })
  },
  { env: MAIL_ENV, build: { logger } },
)
