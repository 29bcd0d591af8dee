/**
 * What an admin's account must have and may do with others' second factors, on every engine:
 * REQUIRE_MFA_FOR_ADMINS sends an admin without a factor to enrolment before anything else, and
 * refuses the removal of their last one; an admin resets a user's factors (sessions end, the user
 * is mailed); every change of how an account signs in is mailed to its owner; a second factor
 * proved in the session stands in for the password of an email change for 5 minutes.
 */
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { assertProblem, bearer, describeEachEngine } from '../../support/app.js'
import { TestClock } from '../../support/clock.js'
import { startSmtpInbox } from '../../support/smtp-inbox.js'
import { addPasskey, ORIGIN, RP_ID } from '../passkeys/support.js'
import {
  challenge,
  codeAt,
  enrolTotp,
  eventsOf,
  mfaLogin,
  stepOf,
  STEP_MS,
  UA,
  userWithToken,
  wrongCodeAt,
  type TestUser,
} from './support.js'

const clock = new TestClock()
const ENROL_FIRST =
  'Admins must have a second factor here (REQUIRE_MFA_FOR_ADMINS): enrol one first, with POST /mfa/totp or ' +
  'POST /passkeys/registration-options; until then only enrolment, GET /mfa and logout are open to you.'
const inbox = await startSmtpInbox()

const subjectsTo = inbox.waitForSubjects

async function makeAdmin(app: FastifyInstance, user: TestUser) {
  await app.db.updateTable('users').set({ role: 'admin' }).where('id', '=', user.id).execute()
  const login = await app.inject({
    method: 'POST',
    url: '/login',
    headers: { 'user-agent': UA },
    payload: { username: user.email, password: user.password },
  })
  assert.equal(login.statusCode, 200, login.body)
  const token = login.json<{ access_token: string }>().access_token
  return { ...user, token, headers: { ...bearer(token), 'user-agent': UA } }
}

const rowsOf = async (app: FastifyInstance, userId: number) => ({
  totp: await app.db.selectFrom('totp_factors').select('user_id').where('user_id', '=', userId).execute(),
  codes: await app.db
    .selectFrom('recovery_codes')
    .select('code_hash')
    .where('user_id', '=', userId)
    .execute(),
  live: await app.db
    .selectFrom('sessions')
    .select(['id', 'revoked_reason'])
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .execute(),
})

describeEachEngine(
  'admin policy, factor resets and security notices',
  (ctx) => {
    const get = (url: string, headers: Record<string, string>) =>
      ctx.app.inject({ method: 'GET', url, headers })

    test('an admin without a factor may only enrol: 403 mfa_enrolment_required elsewhere, until TOTP is confirmed', async () => {
      clock.set(Date.now())
      const admin = await makeAdmin(ctx.app, await userWithToken(ctx.app))
      for (const url of ['/users/', '/product/', '/sessions', `/users/${admin.id}`, '/audit-events']) {
        const refused = assertProblem(await get(url, admin.headers), 403)
        assert.equal(refused.error, 'mfa_enrolment_required', url)
        assert.equal(refused.detail, ENROL_FIRST, url)
      }
      // The sensitive changes, whose 403 also means "re-authenticate", name the right reason.
      const changes = [
        { method: 'POST', url: '/mfa/recovery-codes', payload: {} },
        { method: 'DELETE', url: '/mfa/totp', payload: {} },
        { method: 'DELETE', url: '/passkeys/1', payload: {} },
        { method: 'POST', url: '/users/me/identities/test/authorization', payload: {} },
      ] as const
      for (const change of changes) {
        const refused = assertProblem(await ctx.app.inject({ ...change, headers: admin.headers }), 403)
        assert.equal(refused.error, 'mfa_enrolment_required', change.url)
        assert.equal(refused.detail, ENROL_FIRST, change.url)
      }
      assert.equal((await get('/current-user', admin.headers)).statusCode, 200)
      assert.equal((await get('/users/me', admin.headers)).statusCode, 200)
      assert.equal(
        (await get('/mfa', admin.headers)).json<{ enrolment_required: boolean }>().enrolment_required,
        true,
      )
      assert.equal((await get('/passkeys', admin.headers)).statusCode, 200)
      await enrolTotp(ctx.app, admin, clock)
      // The same token, from a password-only login: the factor now exists, so the gate opens.
      assert.equal((await get('/users/', admin.headers)).statusCode, 200)
      // It stays open when every recovery code is spent: TOTP is the factor, the codes only its backup.
      await ctx.app.db
        .updateTable('recovery_codes')
        .set({ used_at: new Date(clock.now()) })
        .where('user_id', '=', admin.id)
        .execute()
      assert.equal((await get('/users/', admin.headers)).statusCode, 200)
      assert.deepEqual((await challenge(ctx.app, admin)).factors, ['totp'])
      assert.equal(
        (await get('/mfa', admin.headers)).json<{ enrolment_required: boolean }>().enrolment_required,
        false,
      )
      // A user without a factor is not concerned.
      const user = await userWithToken(ctx.app)
      assert.equal((await get('/product/', user.headers)).statusCode, 200)
    })

    test('an admin’s last factor stays: disabling TOTP is 409 and nothing changes', async () => {
      clock.set(Date.now())
      const admin = await makeAdmin(ctx.app, await userWithToken(ctx.app))
      await enrolTotp(ctx.app, admin, clock)
      const before = await rowsOf(ctx.app, admin.id)
      const refused = assertProblem(
        await ctx.app.inject({
          method: 'DELETE',
          url: '/mfa/totp',
          headers: admin.headers,
          payload: { password: admin.password },
        }),
        409,
      )
      assert.match(refused.detail, /admins must keep one/)
      assert.deepEqual(await rowsOf(ctx.app, admin.id), before)
    })

    test('an admin resets a user’s factors: rows gone, sessions ended, the user mailed, audited; the password alone logs in', async () => {
      clock.set(Date.now())
      const admin = await makeAdmin(ctx.app, await userWithToken(ctx.app))
      await enrolTotp(ctx.app, admin, clock)
      const user = await userWithToken(ctx.app)
      await enrolTotp(ctx.app, user, clock)
      assert.deepEqual(await subjectsTo(user.email, 1), ['Authenticator app added'])
      const reset = (target: number, headers = admin.headers) =>
        ctx.app.inject({ method: 'DELETE', url: `/users/${target}/mfa`, headers })
      assertProblem(await reset(user.id, user.headers), 403)
      assert.equal(assertProblem(await reset(2_000_000_000), 404).detail, 'There is no user with this id.')
      assert.equal(
        assertProblem(await reset(admin.id), 409).detail,
        'An admin resets the second factors of other accounts: remove your own with DELETE /mfa/totp or /passkeys/{id}.',
      )
      assert.equal((await rowsOf(ctx.app, user.id)).totp.length, 1, 'the refusals changed nothing')

      const done = await reset(user.id)
      assert.equal(done.statusCode, 204, done.body)
      const after = await rowsOf(ctx.app, user.id)
      assert.deepEqual([after.totp.length, after.codes.length, after.live.length], [0, 0, 0])
      const ended = await ctx.app.db
        .selectFrom('sessions')
        .select('revoked_reason')
        .where('user_id', '=', user.id)
        .execute()
      assert.deepEqual(
        ended.map((row) => row.revoked_reason),
        ['mfa_reset'],
      )
      assertProblem(await get('/current-user', user.headers), 401)
      const event = await ctx.app.db
        .selectFrom('audit_events')
        .select(['actor_id', 'details'])
        .where('event', '=', 'mfa_factors_reset')
        .where('user_id', '=', user.id)
        .executeTakeFirstOrThrow()
      assert.equal(event.actor_id, admin.id)
      assert.deepEqual(JSON.parse(String(event.details)), { totp: true, passkeys: 0, recovery_codes: 10 })
      assert.deepEqual(await subjectsTo(user.email, 2), [
        'Authenticator app added',
        'Your second factors were reset',
      ])
      const login = await ctx.app.inject({
        method: 'POST',
        url: '/login',
        headers: { 'user-agent': UA },
        payload: { username: user.email, password: user.password },
      })
      assert.equal(login.statusCode, 200, login.body)
    })

    test('the owner is mailed when a code fails after the right password, and when a recovery code is used', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const { secret, recoveryCodes } = await enrolTotp(ctx.app, user, clock)
      clock.advance(STEP_MS)
      const wrong = await mfaLogin(ctx.app, {
        mfa_token: (await challenge(ctx.app, user)).mfa_token,
        code: wrongCodeAt(secret, stepOf(clock)),
      })
      assertProblem(wrong, 401)
      const recovered = await mfaLogin(ctx.app, {
        mfa_token: (await challenge(ctx.app, user)).mfa_token,
        recovery_code: recoveryCodes[0]!,
      })
      assert.equal(recovered.statusCode, 200, recovered.body)
      assert.deepEqual(await subjectsTo(user.email, 3), [
        'Authenticator app added',
        'A sign-in was stopped at the second step',
        'A recovery code was used',
      ])
      const notice = inbox.mailsTo(user.email).at(-1)!.decoded
      assert.match(notice, /9 unused codes are left/)
      assert.match(notice, /https:\/\/accounts\.example\.test\/account/)
      assert.ok(!notice.includes(recoveryCodes[0]!), 'never the code itself')
      // A right code mails nothing more.
      clock.advance(STEP_MS)
      const right = await mfaLogin(ctx.app, {
        mfa_token: (await challenge(ctx.app, user)).mfa_token,
        code: codeAt(secret, stepOf(clock)),
      })
      assert.equal(right.statusCode, 200, right.body)
      await sleep(200)
      assert.equal((await subjectsTo(user.email, 3)).length, 3)
      // A recovery code spent to re-authenticate is mailed and audited as one spent at a login; a
      // TOTP code is neither.
      clock.advance(STEP_MS)
      const withCode = await ctx.app.inject({
        method: 'POST',
        url: '/mfa/reauthenticate',
        headers: user.headers,
        payload: { code: codeAt(secret, stepOf(clock)) },
      })
      assert.equal(withCode.statusCode, 200, withCode.body)
      const reauthenticated = await ctx.app.inject({
        method: 'POST',
        url: '/mfa/reauthenticate',
        headers: user.headers,
        payload: { recovery_code: recoveryCodes[1]! },
      })
      assert.equal(reauthenticated.statusCode, 200, reauthenticated.body)
      assert.deepEqual((await subjectsTo(user.email, 4)).slice(3), ['A recovery code was used'])
      await sleep(200)
      assert.equal((await subjectsTo(user.email, 4)).length, 4)
      assert.match(inbox.mailsTo(user.email).at(-1)!.decoded, /8 unused codes are left/)
      assert.deepEqual(
        (await eventsOf(ctx.app, user.id, 'mfa_recovery_code_used')).map((row) => [
          row.outcome,
          JSON.parse(row.details!),
        ]),
        [
          ['success', { codes_left: 9 }],
          ['success', { codes_left: 8 }],
        ],
      )
    })

    test('each change of the factors is mailed to the owner, naming the passkey; disabling TOTP records what went with it', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      await enrolTotp(ctx.app, user, clock)
      const withPassword = (method: 'POST' | 'DELETE', url: string) =>
        ctx.app.inject({ method, url, headers: user.headers, payload: { password: user.password } })
      assert.equal((await withPassword('POST', '/mfa/recovery-codes')).statusCode, 200)
      await addPasskey(ctx.app, user, 'Work key')
      const home = await addPasskey(ctx.app, user, 'Home key')
      assert.equal((await withPassword('DELETE', `/passkeys/${home.passkey.id}`)).statusCode, 204)
      assert.equal((await withPassword('DELETE', '/mfa/totp')).statusCode, 204)
      // Sent as each change is made, without waiting for the mail server: any order.
      assert.deepEqual((await subjectsTo(user.email, 6)).sort(), [
        'Authenticator app added',
        'Authenticator app removed',
        'New recovery codes',
        'Passkey added',
        'Passkey added',
        'Passkey removed',
      ])
      const mails = inbox.mailsTo(user.email).map((mail) => mail.decoded)
      const added = mails.filter((mail) => mail.includes('Subject: Passkey added'))
      assert.ok(added.some((mail) => /A passkey \("Work key"\) was added/.test(mail)))
      assert.ok(added.some((mail) => /A passkey \("Home key"\) was added/.test(mail)))
      const removed = mails.filter((mail) => mail.includes('Subject: Passkey removed'))
      assert.equal(removed.length, 1)
      assert.match(removed[0]!, /The passkey "Home key" was removed/)
      // The passkey and the codes stay: no code went with TOTP.
      const disabled = await eventsOf(ctx.app, user.id, 'mfa_totp_disabled')
      assert.deepEqual(JSON.parse(disabled[0]!.details!), { recovery_codes_removed: 0, factors_left: 2 })
      // The last factor takes the codes with it, and says how many.
      const other = await userWithToken(ctx.app)
      await enrolTotp(ctx.app, other, clock)
      const last = await ctx.app.inject({
        method: 'DELETE',
        url: '/mfa/totp',
        headers: other.headers,
        payload: { password: other.password },
      })
      assert.equal(last.statusCode, 204, last.body)
      const gone = await eventsOf(ctx.app, other.id, 'mfa_totp_disabled')
      assert.deepEqual(JSON.parse(gone[0]!.details!), { recovery_codes_removed: 10, factors_left: 0 })
    })

    test('an email change needs no password for 5 minutes after a login with a second factor, then it does', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const { secret } = await enrolTotp(ctx.app, user, clock)
      clock.advance(STEP_MS)
      const login = await mfaLogin(ctx.app, {
        mfa_token: (await challenge(ctx.app, user)).mfa_token,
        code: codeAt(secret, stepOf(clock)),
      })
      const headers = { ...bearer(login.json<{ access_token: string }>().access_token), 'user-agent': UA }
      const change = (email: string) =>
        ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers, payload: { email } })
      clock.advance(5 * 60_000 - 1)
      const first = `early-${user.email}`
      const changed = await change(first)
      assert.equal(changed.statusCode, 200, changed.body)
      assert.equal(changed.json<{ email: string }>().email, first)
      clock.advance(1)
      const refused = assertProblem(await change(`late-${user.email}`), 422)
      assert.deepEqual(
        refused.errors?.map((issue) => issue.field),
        ['current_password'],
      )
      const stored = await ctx.app.db
        .selectFrom('users')
        .select('email')
        .where('id', '=', user.id)
        .executeTakeFirstOrThrow()
      assert.equal(stored.email, first)
    })
  },
  {
    env: {
      REQUIRE_MFA_FOR_ADMINS: 'true',
      ...inbox.env,
      // The software authenticator's page (test/routes/passkeys/support.ts), not PUBLIC_URL's host.
      WEBAUTHN_RP_ID: RP_ID,
      WEBAUTHN_ORIGINS: ORIGIN,
    },
    build: { clock },
  },
)
