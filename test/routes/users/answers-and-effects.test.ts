/**
 * The user routes' answers word for word, and what each change leaves behind: an email change
 * needs the current password (a stolen token alone cannot move the account), sends a verification
 * link to the new address and records the change; a change of nothing changes nothing; a
 * deactivation, a role change and a deletion end the user's sessions for their own reason, and a
 * rename ends none; the last active admin is kept, and only that rule refuses anything.
 */
import assert from 'node:assert/strict'
import { before, test } from 'node:test'
import { decodeJwt } from 'jose'
import type { FastifyInstance } from 'fastify'
import { createKeysetPaging } from '../../../src/services/pagination.js'
import {
  adminAndLogin,
  assertProblem,
  describeEachEngine,
  register,
  registerAndLogin,
  TEST_SECRET,
  uniqueUser,
} from '../../support/app.js'
import { patchUser, soleAdmin, userRow, type Headers } from './support.js'

const MISSING_ID = 2_147_483_647

const sessionIdOf = (token: string) => String(decodeJwt(token).sid)

async function revokedReason(app: FastifyInstance, token: string) {
  const row = await app.db
    .selectFrom('sessions')
    .select('revoked_reason')
    .where('id', '=', sessionIdOf(token))
    .executeTakeFirstOrThrow()
  return row.revoked_reason
}

/** The email addresses the user's verification links went to, once the background work is done. */
async function verificationLinksOf(app: FastifyInstance, userId: number) {
  assert.equal(await app.accountEmails.whenIdle(5_000), true)
  const rows = await app.db
    .selectFrom('account_tokens')
    .select('email')
    .where('user_id', '=', userId)
    .where('purpose', '=', 'email_verification')
    .orderBy('created_at')
    .execute()
  return rows.map((row) => row.email)
}

async function auditEventsOf(app: FastifyInstance, userId: number) {
  const rows = await app.db
    .selectFrom('audit_events')
    .select(['event', 'outcome'])
    .where('user_id', '=', userId)
    .orderBy('id')
    .execute()
  return rows.map((row) => `${row.event} ${row.outcome}`)
}

const currentUser = (app: FastifyInstance, headers: Headers) =>
  app.inject({ method: 'GET', url: '/current-user', headers })

describeEachEngine('user answers and effects', (ctx) => {
  let admin: Awaited<ReturnType<typeof adminAndLogin>>

  before(async () => {
    admin = await adminAndLogin(ctx.app)
  })

  test('what a user may not do, each said word for word', async () => {
    const user = await registerAndLogin(ctx.app)
    const other = await register(ctx.app)
    const refusals: [
      Promise<{ statusCode: number; headers: Record<string, unknown>; json: () => unknown }>,
      string,
    ][] = [
      [
        ctx.app.inject({ method: 'GET', url: `/users/${other.id}`, headers: user.headers }),
        'You may only see your own account.',
      ],
      [
        patchUser(ctx.app, other.id, { name: uniqueUser().name }, user.headers),
        'You may only change your own account.',
      ],
      [
        patchUser(ctx.app, user.id, { is_active: false }, user.headers),
        'Only an admin may change role or is_active.',
      ],
      [
        ctx.app.inject({ method: 'DELETE', url: `/users/${other.id}`, headers: user.headers }),
        'You may only delete your own account.',
      ],
      [
        ctx.app.inject({
          method: 'POST',
          url: '/users/',
          headers: user.headers,
          payload: { ...uniqueUser(), role: 'admin' },
        }),
        'Only an admin may set role.',
      ],
    ]
    for (const [response, detail] of refusals) assert.equal(assertProblem(await response, 403).detail, detail)
  })

  test('an admin reaching a user that does not exist: 404 naming the id, for reading, changing and deleting', async () => {
    const detail = `There is no user ${MISSING_ID}.`
    for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
      const response = await ctx.app.inject({
        method,
        url: `/users/${MISSING_ID}`,
        headers: admin.headers,
        ...(method === 'PATCH' ? { payload: { name: uniqueUser().name } } : {}),
      })
      assert.equal(assertProblem(response, 404).detail, detail, method)
    }
  })

  test('a taken name and a taken email are told apart in the 409', async () => {
    const user = await registerAndLogin(ctx.app)
    const other = await register(ctx.app)
    const name = await patchUser(ctx.app, user.id, { name: other.name.toUpperCase() }, user.headers)
    assert.equal(assertProblem(name, 409).detail, 'This name is already taken.')
    const email = await patchUser(
      ctx.app,
      user.id,
      { email: other.email, current_password: user.password },
      user.headers,
    )
    assert.equal(assertProblem(email, 409).detail, 'A user with this email already exists.')
  })

  test('a user changing their email without their current password: 422 naming current_password, nothing changed', async () => {
    const user = await registerAndLogin(ctx.app)
    const stored = await userRow(ctx.app, user.id)
    const response = await patchUser(ctx.app, user.id, { email: uniqueUser().email }, user.headers)
    const problem = assertProblem(response, 422)
    assert.equal(
      problem.detail,
      'Changing your email needs your current password (or a second factor proved in the last 5 minutes).',
    )
    assert.deepEqual(problem.errors, [
      { in: 'body', field: 'current_password', message: 'is required to change the email' },
    ])
    assert.deepEqual(await userRow(ctx.app, user.id), stored)
  })

  test('a user changing their email with a wrong current password: 422, nothing changed, no link sent', async () => {
    const user = await registerAndLogin(ctx.app)
    const stored = await userRow(ctx.app, user.id)
    const response = await patchUser(
      ctx.app,
      user.id,
      { email: uniqueUser().email, current_password: `${user.password}!` },
      user.headers,
    )
    const problem = assertProblem(response, 422)
    assert.equal(problem.detail, 'The current password is not right.')
    assert.deepEqual(problem.errors, [
      { in: 'body', field: 'current_password', message: 'is not your current password' },
    ])
    assert.deepEqual(await userRow(ctx.app, user.id), stored)
    assert.deepEqual(await verificationLinksOf(ctx.app, user.id), [user.email])
  })

  test('an email change sends a link to the new address and is recorded; the user stays logged in', async () => {
    const user = await registerAndLogin(ctx.app)
    const newEmail = uniqueUser().email
    const response = await patchUser(
      ctx.app,
      user.id,
      { email: newEmail, current_password: user.password },
      user.headers,
    )
    assert.equal(response.statusCode, 200, response.body)
    assert.deepEqual(await verificationLinksOf(ctx.app, user.id), [user.email, newEmail])
    assert.deepEqual(await auditEventsOf(ctx.app, user.id), [
      'user_registered success',
      'login_succeeded success',
      'user_email_changed success',
    ])
    assert.equal((await currentUser(ctx.app, user.headers)).statusCode, 200)
  })

  test('an admin changes a user’s email without the user’s password', async () => {
    const user = await register(ctx.app)
    const newEmail = uniqueUser().email
    const response = await patchUser(ctx.app, user.id, { email: newEmail }, admin.headers)
    assert.equal(response.statusCode, 200, response.body)
    assert.equal((await userRow(ctx.app, user.id))?.email, newEmail)
  })

  test('a change of nothing (every field as it is) changes nothing: same row, no event, no link, sessions kept', async () => {
    const user = await registerAndLogin(ctx.app)
    const stored = await userRow(ctx.app, user.id)
    const response = await patchUser(
      ctx.app,
      user.id,
      { name: user.name, email: user.email, role: 'user', is_active: true },
      admin.headers,
    )
    assert.equal(response.statusCode, 200, response.body)
    assert.deepEqual(await userRow(ctx.app, user.id), stored)
    assert.deepEqual(await auditEventsOf(ctx.app, user.id), [
      'user_registered success',
      'login_succeeded success',
    ])
    assert.deepEqual(await verificationLinksOf(ctx.app, user.id), [user.email])
    assert.equal((await currentUser(ctx.app, user.headers)).statusCode, 200)
  })

  test('a change that names only some fields, each as it is, changes nothing either', async () => {
    const user = await registerAndLogin(ctx.app)
    const stored = await userRow(ctx.app, user.id)
    for (const change of [
      { name: user.name },
      { email: user.email },
      { role: 'user' },
      { is_active: true },
    ]) {
      const response = await patchUser(ctx.app, user.id, change, admin.headers)
      assert.equal(response.statusCode, 200, response.body)
      assert.deepEqual(await userRow(ctx.app, user.id), stored, JSON.stringify(change))
    }
  })

  test('a rename ends no session and sends no link', async () => {
    const user = await registerAndLogin(ctx.app)
    const response = await patchUser(ctx.app, user.id, { name: uniqueUser().name }, user.headers)
    assert.equal(response.statusCode, 200, response.body)
    assert.equal((await currentUser(ctx.app, user.headers)).statusCode, 200)
    assert.equal(await revokedReason(ctx.app, user.token), null)
    assert.deepEqual(await verificationLinksOf(ctx.app, user.id), [user.email])
  })

  test('a deactivation, a role change and a deletion each end the user’s sessions for their own reason', async () => {
    const cases: [Record<string, unknown> | 'delete', string][] = [
      [{ is_active: false }, 'user_deactivated'],
      [{ role: 'admin' }, 'role_changed'],
      [{ is_active: false, role: 'admin' }, 'user_deactivated'],
      ['delete', 'user_deleted'],
    ]
    for (const [change, reason] of cases) {
      const user = await registerAndLogin(ctx.app)
      const response =
        change === 'delete'
          ? await ctx.app.inject({ method: 'DELETE', url: `/users/${user.id}`, headers: admin.headers })
          : await patchUser(ctx.app, user.id, change, admin.headers)
      assert.ok([200, 204].includes(response.statusCode), response.body)
      assert.equal(await revokedReason(ctx.app, user.token), reason, JSON.stringify(change))
      assertProblem(await currentUser(ctx.app, user.headers), 401)
    }
  })

  test('the list finds a name by text in any case, beyond ASCII', async () => {
    const user = await register(ctx.app, { ...uniqueUser(), name: `Élodie_${Date.now().toString(36)}` })
    const response = await ctx.app.inject({
      url: `/users/?q=${encodeURIComponent(user.name.toUpperCase())}`,
      headers: admin.headers,
    })
    assert.equal(response.statusCode, 200, response.body)
    assert.deepEqual(
      response.json<{ items: { id: number }[] }>().items.map((item) => item.id),
      [user.id],
    )
  })

  test('a signed users cursor whose position is not a whole number is refused as not issued by the server', async () => {
    const paging = createKeysetPaging(TEST_SECRET, 'users')
    for (const id of ['1', 1.5, Number.MAX_SAFE_INTEGER + 2]) {
      const cursor = paging.page(
        [{}, {}],
        1,
        {},
        () => ({ id }) as Record<string, string | number>,
      ).next_cursor!
      const response = await ctx.app.inject({
        url: `/users/?cursor=${encodeURIComponent(cursor)}`,
        headers: admin.headers,
      })
      assert.match(assertProblem(response, 422).detail, /^The cursor is not valid/, String(id))
    }
    const cursor = paging.page([{}, {}], 1, {}, () => ({ id: 0 })).next_cursor!
    const first = await ctx.app.inject({
      url: `/users/?cursor=${encodeURIComponent(cursor)}`,
      headers: admin.headers,
    })
    assert.equal(first.statusCode, 200, first.body)
  })
})

describeEachEngine('the last active admin, word for word, and nothing more', (ctx) => {
  test('the sole admin cannot step down, deactivate or delete themself: 409 saying why', async () => {
    const admin = await soleAdmin(ctx.app)
    const detail = 'This is the last active admin: make another user admin first.'
    for (const change of [{ role: 'user' }, { is_active: false }])
      assert.equal(
        assertProblem(await patchUser(ctx.app, admin.id, change, admin.headers), 409).detail,
        detail,
      )
    const deletion = await ctx.app.inject({
      method: 'DELETE',
      url: `/users/${admin.id}`,
      headers: admin.headers,
    })
    assert.equal(assertProblem(deletion, 409).detail, detail)
  })

  test('the sole admin renames themself, and deactivates and demotes others, freely', async () => {
    const admin = await soleAdmin(ctx.app)
    const renamed = await patchUser(ctx.app, admin.id, { name: uniqueUser().name }, admin.headers)
    assert.equal(renamed.statusCode, 200, renamed.body)
    const user = await register(ctx.app)
    const deactivated = await patchUser(ctx.app, user.id, { is_active: false }, admin.headers)
    assert.equal(deactivated.statusCode, 200, deactivated.body)
    // An admin who is inactive is not one of the active admins the rule keeps.
    const former = await register(ctx.app)
    await ctx.app.db
      .updateTable('users')
      .set({ role: 'admin', is_active: false })
      .where('id', '=', former.id)
      .execute()
    const demoted = await patchUser(ctx.app, former.id, { role: 'user' }, admin.headers)
    assert.equal(demoted.statusCode, 200, demoted.body)
  })
})
