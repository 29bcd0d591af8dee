/**
 * The audit trail tests' pieces: an SMTP inbox for reset links, the log of every app of the file,
 * clients of their own, rows as the tests compare them, the requests that remember every secret
 * they handle (none may appear in an audit row, nor in the log), and a seed that fills a trail
 * with every kind of event for the files that read many rows.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { InjectOptions } from 'fastify'
import { hashOpaqueToken } from '../../../src/auth/opaque-tokens.js'
import type { AuditEventRow } from '../../../src/db/database.js'
import { adminAndLogin, bearer, uniqueUser, type EngineContext } from '../../support/app.js'
import { startSmtpInbox } from '../../support/smtp-inbox.js'

// ------------------------------------------------------------------ a real SMTP server (reset links)

const inbox = await startSmtpInbox()
export const MAIL_ENV = inbox.env

/** Waits until `count` reset links reached `recipient`; the timeout is only a safety net. */
export async function waitForResetToken(recipient: string, count: number): Promise<string> {
  return (await inbox.waitForTokens(recipient, 'reset-password', count)).at(-1)!
}

// ------------------------------------------------------------------ the log of every app of this file

export const logLines: Record<string, unknown>[] = []
export const logger = {
  level: 'info',
  stream: { write: (line: string) => logLines.push(JSON.parse(line) as Record<string, unknown>) },
}
export const logText = () => logLines.map((line) => JSON.stringify(line)).join('\n')

// ------------------------------------------------------------------ clients and rows

let clients = 0
/** A client of its own: an address (as the socket shows it) and a user agent, to find in the rows. */
export function newClient() {
  clients += 1
  return {
    ip: `198.51.100.${clients % 250}`,
    userAgent: `AuditTest/${clients} (${randomBytes(3).toString('hex')})`,
  }
}
export type Client = ReturnType<typeof newClient>

export interface AuditRow {
  id: number
  created_at: Date
  event: string
  outcome: string
  user_id: number | null
  actor_id: number | null
  ip: string | null
  user_agent: string | null
  details: Record<string, unknown>
}

export const toAuditRow = (row: AuditEventRow): AuditRow => ({
  ...row,
  id: Number(row.id),
  details: row.details === null ? {} : (JSON.parse(row.details) as Record<string, unknown>),
})

export const sidOf = (accessToken: string) =>
  (JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString('utf8')) as { sid: string }).sid

/** The expected part of a row; `details` is compared whole ({} when there are none). */
export type Expected = Pick<AuditRow, 'event' | 'outcome' | 'user_id' | 'actor_id'> & {
  client: Client
  details?: Record<string, unknown>
}

export function assertRows(rows: AuditRow[], expected: Expected[], what: string) {
  assert.deepEqual(
    rows.map(({ event, outcome, user_id, actor_id, ip, user_agent, details }) => ({
      event,
      outcome,
      user_id,
      actor_id,
      ip,
      user_agent,
      details,
    })),
    expected.map(({ client, details, ...row }) => ({
      ...row,
      ip: client.ip,
      user_agent: client.userAgent,
      details: details ?? {},
    })),
    what,
  )
  for (const row of rows) assert.ok(row.created_at instanceof Date && !Number.isNaN(row.created_at.getTime()))
}

// ------------------------------------------------------------------ requests that keep their secrets

/** The requests and queries of the audit trail tests, over the app of `ctx`. */
export function auditTrail(ctx: EngineContext) {
  /** Every secret this suite handles: none may appear in an audit row (nor in the log). */
  const secrets = new Set<string>()
  const keep = (...values: string[]) => values.forEach((value) => secrets.add(value))

  const app = () => ctx.app
  const send = (client: Client, options: InjectOptions & { headers?: Record<string, string> }) =>
    app().inject({
      ...options,
      remoteAddress: client.ip,
      headers: { ...options.headers, 'user-agent': client.userAgent },
    })

  const lastId = async () => {
    const row = await app()
      .db.selectFrom('audit_events')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst()
    return Number(row?.id ?? 0)
  }
  /** The rows written since `mark` (a lastId()), oldest first. */
  const rowsSince = async (mark: number) =>
    (
      await app().db.selectFrom('audit_events').selectAll().where('id', '>', mark).orderBy('id').execute()
    ).map(toAuditRow)
  const rowsOf = async (userId: number) =>
    (
      await app()
        .db.selectFrom('audit_events')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('id')
        .execute()
    ).map(toAuditRow)
  const allRows = async () =>
    (
      await app()
        .db.selectFrom('audit_events')
        .selectAll()
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .execute()
    ).map(toAuditRow)

  const passwordHashOf = async (userId: number) =>
    (
      await app()
        .db.selectFrom('users')
        .select('password_hash')
        .where('id', '=', userId)
        .executeTakeFirstOrThrow()
    ).password_hash

  async function registerAs(client: Client, user = uniqueUser()) {
    const response = await send(client, { method: 'POST', url: '/users/', payload: user })
    assert.equal(response.statusCode, 201, response.body)
    const id = response.json<{ id: number }>().id
    keep(user.password, await passwordHashOf(id))
    return { ...user, id }
  }

  async function loginAs(client: Client, username: string, password: string) {
    const response = await send(client, {
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ username, password }).toString(),
    })
    if (response.statusCode === 200) {
      const pair = response.json<{ access_token: string; refresh_token: string }>()
      keep(pair.access_token, pair.refresh_token, hashOpaqueToken(pair.refresh_token))
    }
    return response
  }

  async function session(client: Client, user: { email: string; password: string }) {
    const response = await loginAs(client, user.email, user.password)
    assert.equal(response.statusCode, 200, response.body)
    const pair = response.json<{ access_token: string; refresh_token: string }>()
    return { ...pair, headers: bearer(pair.access_token) }
  }

  const refresh = async (client: Client, refreshToken: string) => {
    const response = await send(client, {
      method: 'POST',
      url: '/token/refresh',
      payload: { refresh_token: refreshToken },
    })
    if (response.statusCode === 200) {
      const pair = response.json<{ access_token: string; refresh_token: string }>()
      keep(pair.access_token, pair.refresh_token, hashOpaqueToken(pair.refresh_token))
    }
    return response
  }

  async function anAdmin() {
    const admin = await adminAndLogin(app())
    keep(admin.password, admin.token, await passwordHashOf(admin.id))
    return admin
  }

  /** Walks every page of a query; fails on a repeated row. */
  async function walk(query: string, limit: number) {
    const admin = await anAdmin()
    const ids: number[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const url: string = `/audit-events?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`
      const response = await app().inject({ url, headers: admin.headers })
      assert.equal(response.statusCode, 200, response.body)
      const page = response.json<{ items: { id: number }[]; next_cursor: string | null }>()
      assert.ok(page.items.length <= limit)
      ids.push(...page.items.map((item) => item.id))
      cursor = page.next_cursor
      pages += 1
    } while (cursor)
    assert.equal(new Set(ids).size, ids.length, 'a row was listed twice')
    return { ids, pages }
  }

  return {
    secrets,
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
    walk,
  }
}

// ------------------------------------------------------------------ a trail with every kind of event

/**
 * Fills the trail of `trail`'s app with `rounds` users, each going through every audited action:
 * registration, a login, a wrong password, a password typed as the name, refreshes and the reuse
 * of a rotated token, a refused and an accepted password change, logout, a reset through the emailed
 * link, an admin's role changes, deactivation and reactivation, and deletion. Each round leaves
 * about sixteen rows and twenty secrets (kept in `trail.secrets`), at distinct instants, so that
 * listing and secrets tests have rows of their own rather than those another test left.
 */
export async function seedTrail(trail: ReturnType<typeof auditTrail>, rounds = 3) {
  const { keep, app, send, passwordHashOf, registerAs, loginAs, session, refresh, anAdmin } = trail
  const admin = await anAdmin()
  for (let round = 0; round < rounds; round += 1) {
    const client = newClient()
    const user = await registerAs(client)
    const first = await session(client, user)
    assert.equal((await loginAs(client, user.email, 'not the password at all')).statusCode, 401)
    const typedPassword = `Tr0ub4dor&3-${randomBytes(6).toString('hex')}`
    keep(typedPassword, typedPassword.toLowerCase())
    assert.equal((await loginAs(client, typedPassword, 'whatever it was')).statusCode, 401)

    // Two rotations, as a client would over time: the first token is then plainly reused.
    const rotated = await refresh(client, first.refresh_token)
    assert.equal(rotated.statusCode, 200, rotated.body)
    const again = await refresh(client, rotated.json<{ refresh_token: string }>().refresh_token)
    assert.equal(again.statusCode, 200, again.body)
    assert.equal((await refresh(newClient(), first.refresh_token)).statusCode, 401)

    const { headers } = await session(client, user)
    const changedPassword = `a brand new passphrase ${randomBytes(4).toString('hex')}`
    keep(changedPassword)
    const refused = await send(client, {
      method: 'PUT',
      url: '/users/me/password',
      headers,
      payload: { current_password: 'not my password at all', new_password: changedPassword },
    })
    assert.equal(refused.statusCode, 422, refused.body)
    const changed = await send(client, {
      method: 'PUT',
      url: '/users/me/password',
      headers,
      payload: { current_password: user.password, new_password: changedPassword },
    })
    assert.equal(changed.statusCode, 204, changed.body)
    keep(await passwordHashOf(user.id))
    const loggedOut = await send(client, { method: 'POST', url: '/logout', headers })
    assert.equal(loggedOut.statusCode, 204, loggedOut.body)

    const asked = await send(client, {
      method: 'POST',
      url: '/password-recovery',
      payload: { email: user.email },
    })
    assert.equal(asked.statusCode, 202, asked.body)
    const token = await waitForResetToken(user.email, 1)
    keep(token, hashOpaqueToken(token))
    assert.ok(await app().accountEmails.whenIdle(15_000))
    const resetPassword = `reset passphrase ${randomBytes(4).toString('hex')}`
    keep(resetPassword)
    const reset = await send(newClient(), {
      method: 'POST',
      url: '/reset-password',
      payload: { token, new_password: resetPassword },
    })
    assert.equal(reset.statusCode, 204, reset.body)
    keep(await passwordHashOf(user.id))

    const patch = async (payload: Record<string, unknown>) => {
      const response = await send(client, {
        method: 'PATCH',
        url: `/users/${user.id}`,
        headers: admin.headers,
        payload,
      })
      assert.equal(response.statusCode, 200, response.body)
    }
    await patch({ role: 'admin' })
    await patch({ role: 'user', is_active: false })
    await patch({ is_active: true })
    const deleted = await send(client, {
      method: 'DELETE',
      url: `/users/${user.id}`,
      headers: admin.headers,
    })
    assert.equal(deleted.statusCode, 204, deleted.body)
  }
}
