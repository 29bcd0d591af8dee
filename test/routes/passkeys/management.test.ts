import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, describeEachEngine } from '../../support/app.js'
import { MINUTE, TestClock } from '../../support/clock.js'
import { amrOf, challenge, enrolTotp, loginRequest, UA } from '../mfa/support.js'
import {
  accountState,
  addPasskey,
  auditOf,
  deletePasskey,
  lastEvent,
  mfaPasskeyOptions,
  mfaTokenRows,
  passkeyLogin,
  passkeyRows,
  recoveryCodeRows,
  userWithPasskey,
  type PasskeyBody,
  type TokenPairBody,
} from './support.js'

const clock = new TestClock()
const PASSKEY_FIELDS = ['backed_up', 'created_at', 'device_type', 'id', 'last_used_at', 'name']

describeEachEngine(
  'managing one’s passkeys',
  (ctx) => {
    const list = (headers: Record<string, string>) =>
      ctx.app.inject({ method: 'GET', url: '/passkeys', headers })
    const rename = (headers: Record<string, string>, id: number | string, payload: unknown) =>
      ctx.app.inject({ method: 'PATCH', url: `/passkeys/${id}`, headers, payload: payload as object })

    /** 403 reauthentication_required, the passkeys left as they were. */
    async function assertReauthenticationRequired(response: Awaited<ReturnType<typeof deletePasskey>>) {
      const problem = assertProblem(response, 403) as ReturnType<typeof assertProblem> & { error?: string }
      assert.equal(problem.error, 'reauthentication_required')
    }

    test('the list: the caller’s passkeys oldest first, public fields only, no-store; never another user’s', async () => {
      clock.set(Date.now())
      const { user, passkey } = await userWithPasskey(ctx.app, { name: 'Laptop' })
      clock.advance(1000)
      const second = await addPasskey(ctx.app, user, 'Phone')
      const stranger = await userWithPasskey(ctx.app)
      const response = await list(user.headers)
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.headers['cache-control'], 'no-store')
      const { items } = response.json<{ items: PasskeyBody[] }>()
      assert.deepEqual(
        items.map((item) => [item.id, item.name]),
        [
          [passkey.id, 'Laptop'],
          [second.passkey.id, 'Phone'],
        ],
      )
      for (const item of items) assert.deepEqual(Object.keys(item).sort(), PASSKEY_FIELDS)
      assert.deepEqual(items[0], passkey)
      const rows = await passkeyRows(ctx.app, user.id)
      for (const secret of rows.flatMap((row) => [row.credential_id, row.public_key, row.user_handle]))
        assert.ok(!response.body.includes(secret), 'no credential id, key or handle is shown')
      const theirs = (await list(stranger.user.headers)).json<{ items: PasskeyBody[] }>().items
      assert.deepEqual(
        theirs.map((item) => item.id),
        [stranger.passkey.id],
      )
    })

    test('rename: 200 with the passkey, the name trimmed, audited; bad names 422; another user’s or an unknown id 404, nothing renamed', async () => {
      clock.set(Date.now())
      const { user, passkey } = await userWithPasskey(ctx.app, { name: 'Old' })
      const stranger = await userWithPasskey(ctx.app, { name: 'Theirs' })
      const response = await rename(user.headers, passkey.id, { name: '  YubiKey 5C  ' })
      assert.equal(response.statusCode, 200, response.body)
      assert.deepEqual(response.json(), { ...passkey, name: 'YubiKey 5C' })
      assert.equal((await passkeyRows(ctx.app, user.id))[0]!.name, 'YubiKey 5C')
      assert.deepEqual((await auditOf(ctx.app, user.id)).at(-1), {
        event: 'passkey_renamed',
        outcome: 'success',
        details: { passkey_id: passkey.id },
      })
      for (const payload of [
        {},
        { name: '' },
        { name: '  ' },
        { name: 'x'.repeat(101) },
        { name: 'A', extra: 1 },
      ])
        assertProblem(await rename(user.headers, passkey.id, payload), 422)
      for (const id of [stranger.passkey.id, 2_000_000_000]) {
        const problem = assertProblem(await rename(user.headers, id, { name: 'Mine now' }), 404)
        assert.equal(problem.detail, 'You have no passkey with this id.')
      }
      for (const id of ['abc', '0', '1.5', '2147483648'])
        assertProblem(await rename(user.headers, id, { name: 'X' }), 422)
      assert.equal((await passkeyRows(ctx.app, user.id))[0]!.name, 'YubiKey 5C')
      assert.equal((await passkeyRows(ctx.app, stranger.user.id))[0]!.name, 'Theirs')
      // The second of two: the answer is that passkey, not the first.
      const second = await addPasskey(ctx.app, user, 'Laptop')
      const renamed = await rename(user.headers, second.passkey.id, { name: 'Old laptop' })
      assert.equal(renamed.statusCode, 200, renamed.body)
      assert.deepEqual(renamed.json(), { ...second.passkey, name: 'Old laptop' })
    })

    test('one of two passkeys goes without a password: 204; the other stays with the recovery codes; the removed one no longer logs in', async () => {
      clock.set(Date.now())
      const { user, authenticator, passkey } = await userWithPasskey(ctx.app)
      const second = await addPasskey(ctx.app, user)
      const codes = await recoveryCodeRows(ctx.app, user.id)
      const response = await deletePasskey(ctx.app, user.headers, passkey.id)
      assert.equal(response.statusCode, 204, response.body)
      assert.equal(response.body, '')
      assert.deepEqual(
        (await passkeyRows(ctx.app, user.id)).map((row) => row.id),
        [second.passkey.id],
      )
      assert.deepEqual(await recoveryCodeRows(ctx.app, user.id), codes)
      assert.deepEqual((await auditOf(ctx.app, user.id)).at(-1), {
        event: 'passkey_removed',
        outcome: 'success',
        details: { passkey_id: passkey.id, factors_left: 2 },
      })
      assertProblem(await passkeyLogin(ctx.app, authenticator), 401)
      assert.deepEqual((await lastEvent(ctx.app, 'passkey_login_failed'))?.details, { reason: 'credential' })
      assert.equal((await passkeyLogin(ctx.app, second.authenticator)).statusCode, 200)
      assert.equal((await challenge(ctx.app, user)).error, 'mfa_required')
    })

    test('the last passkey after a password login: no password is 403 reauthentication_required, a wrong one 422; the passkey stays', async () => {
      clock.set(Date.now())
      const { user, passkey } = await userWithPasskey(ctx.app)
      const before = await accountState(ctx.app, user.id)
      await assertReauthenticationRequired(await deletePasskey(ctx.app, user.headers, passkey.id))
      const wrong = assertProblem(
        await deletePasskey(ctx.app, user.headers, passkey.id, { password: 'not my password at all' }),
        422,
      )
      assert.deepEqual(
        wrong.errors?.map((issue) => issue.field),
        ['password'],
      )
      assertProblem(await deletePasskey(ctx.app, user.headers, passkey.id, { password: '' }), 422)
      assertProblem(
        await deletePasskey(ctx.app, user.headers, passkey.id, { password: user.password, x: 1 }),
        422,
      )
      assert.deepEqual(await accountState(ctx.app, user.id), before)
      assert.equal((await challenge(ctx.app, user)).error, 'mfa_required')
    })

    test('the last passkey with the password: 204; the recovery codes and pending second-factor logins go; the password alone logs in again', async () => {
      clock.set(Date.now())
      const { user, passkey } = await userWithPasskey(ctx.app)
      const pending = await challenge(ctx.app, user)
      assert.equal((await mfaTokenRows(ctx.app, user.id)).length, 1)
      const response = await deletePasskey(ctx.app, user.headers, passkey.id, { password: user.password })
      assert.equal(response.statusCode, 204, response.body)
      assert.deepEqual(await passkeyRows(ctx.app, user.id), [])
      assert.deepEqual(await recoveryCodeRows(ctx.app, user.id), [])
      assert.deepEqual(await mfaTokenRows(ctx.app, user.id), [])
      assert.deepEqual((await auditOf(ctx.app, user.id)).at(-1), {
        event: 'passkey_removed',
        outcome: 'success',
        details: { passkey_id: passkey.id, factors_left: 0 },
      })
      // The login that was waiting for the passkey cannot finish any more.
      const options = await ctx.app.inject({
        method: 'POST',
        url: '/login/mfa/passkey-options',
        headers: { 'user-agent': UA },
        payload: { mfa_token: pending.mfa_token },
      })
      assertProblem(options, 401)
      const login = await loginRequest(ctx.app, user.email, user.password)
      assert.equal(login.statusCode, 200, login.body)
      assert.deepEqual(amrOf(login.json<TokenPairBody>().access_token), ['pwd'])
      const status = await ctx.app.inject({ method: 'GET', url: '/mfa', headers: user.headers })
      assert.deepEqual(status.json<Record<string, unknown>>().factors, [])
    })

    test('the last passkey with TOTP still active: the recovery codes stay, and logins ask for TOTP', async () => {
      clock.set(Date.now())
      const { user, passkey } = await userWithPasskey(ctx.app)
      const { recoveryCodes } = await enrolTotp(ctx.app, user, clock)
      const codes = await recoveryCodeRows(ctx.app, user.id)
      assert.equal(recoveryCodes.length, 10)
      const response = await deletePasskey(ctx.app, user.headers, passkey.id, { password: user.password })
      assert.equal(response.statusCode, 204, response.body)
      assert.deepEqual(await recoveryCodeRows(ctx.app, user.id), codes)
      assert.deepEqual((await challenge(ctx.app, user)).factors, ['totp', 'recovery_code'])
      assert.deepEqual((await auditOf(ctx.app, user.id)).at(-1)?.details, {
        passkey_id: passkey.id,
        factors_left: 2,
      })
    })

    test('a login with a second factor stands in for the password for 5 minutes: at 4:59.999 the last passkey goes; at 5:00, 403', async () => {
      clock.set(Date.now())
      // A password-less login.
      const first = await userWithPasskey(ctx.app)
      const viaPasskey = await passkeyLogin(ctx.app, first.authenticator)
      const passkeyHeaders = { authorization: `Bearer ${viaPasskey.json<TokenPairBody>().access_token}` }
      // A password login finished with the passkey.
      const second = await userWithPasskey(ctx.app)
      const { mfa_token } = await challenge(ctx.app, second.user)
      const answer = await second.authenticator.authenticate(await mfaPasskeyOptions(ctx.app, mfa_token))
      const finished = await ctx.app.inject({
        method: 'POST',
        url: '/login/mfa',
        headers: { 'user-agent': UA },
        payload: { mfa_token, passkey: answer },
      })
      const mfaHeaders = { authorization: `Bearer ${finished.json<TokenPairBody>().access_token}` }

      clock.advance(5 * MINUTE)
      const before = await accountState(ctx.app, first.user.id)
      await assertReauthenticationRequired(await deletePasskey(ctx.app, passkeyHeaders, first.passkey.id))
      assert.deepEqual(await accountState(ctx.app, first.user.id), before)
      clock.advance(-1)
      assert.equal((await deletePasskey(ctx.app, passkeyHeaders, first.passkey.id)).statusCode, 204)
      assert.equal((await deletePasskey(ctx.app, mfaHeaders, second.passkey.id)).statusCode, 204)
      // The password session of the same account did not prove a factor: it still needs the password.
      const third = await userWithPasskey(ctx.app)
      await passkeyLogin(ctx.app, third.authenticator)
      await assertReauthenticationRequired(await deletePasskey(ctx.app, third.user.headers, third.passkey.id))
    })

    test('the body is required, as for DELETE /mfa/totp: a DELETE without one is 422 and removes nothing; `{}` removes one of two', async () => {
      clock.set(Date.now())
      const { user, passkey } = await userWithPasskey(ctx.app)
      const second = await addPasskey(ctx.app, user)
      const bare = await ctx.app.inject({
        method: 'DELETE',
        url: `/passkeys/${passkey.id}`,
        headers: user.headers,
      })
      assertProblem(bare, 422)
      assert.equal((await passkeyRows(ctx.app, user.id)).length, 2)
      const empty = await deletePasskey(ctx.app, user.headers, passkey.id, {})
      assert.equal(empty.statusCode, 204, empty.body)
      await assertReauthenticationRequired(await deletePasskey(ctx.app, user.headers, second.passkey.id, {}))
      assert.equal((await passkeyRows(ctx.app, user.id)).length, 1)
    })

    test('another user’s passkey, or one already removed, is 404 and stays', async () => {
      clock.set(Date.now())
      const { user, passkey } = await userWithPasskey(ctx.app)
      const stranger = await userWithPasskey(ctx.app)
      const theirs = await accountState(ctx.app, stranger.user.id)
      const problem = assertProblem(
        await deletePasskey(ctx.app, user.headers, stranger.passkey.id, { password: user.password }),
        404,
      )
      assert.equal(problem.detail, 'You have no passkey with this id.')
      // 404 before any password check: a wrong one is neither judged nor counted.
      const wrongPassword = await deletePasskey(ctx.app, user.headers, stranger.passkey.id, {
        password: `${user.password}!`,
      })
      assert.equal(assertProblem(wrongPassword, 404).detail, 'You have no passkey with this id.')
      assert.deepEqual(await accountState(ctx.app, stranger.user.id), theirs)
      assert.equal(
        (await deletePasskey(ctx.app, user.headers, passkey.id, { password: user.password })).statusCode,
        204,
      )
      assertProblem(await deletePasskey(ctx.app, user.headers, passkey.id, { password: user.password }), 404)
    })

    test('two passkeys removed at once without re-authentication: one of the requests is refused, a passkey stays', async () => {
      clock.set(Date.now())
      const { user, passkey } = await userWithPasskey(ctx.app)
      const second = await addPasskey(ctx.app, user)
      const codes = await recoveryCodeRows(ctx.app, user.id)
      const results = await Promise.all([
        deletePasskey(ctx.app, user.headers, passkey.id),
        deletePasskey(ctx.app, user.headers, second.passkey.id),
      ])
      assert.deepEqual(
        results.map((response) => response.statusCode).sort(),
        [204, 403],
        results.map((response) => response.body).join('\n'),
      )
      assert.equal(
        (await passkeyRows(ctx.app, user.id)).length,
        1,
        'the last passkey needs re-authentication',
      )
      assert.deepEqual(await recoveryCodeRows(ctx.app, user.id), codes)
    })

    test('every passkey route of the account needs an access token', async () => {
      for (const [method, url] of [
        ['POST', '/passkeys/registration-options'],
        ['POST', '/passkeys'],
        ['GET', '/passkeys'],
        ['PATCH', '/passkeys/1'],
        ['DELETE', '/passkeys/1'],
        ['POST', '/mfa/reauthenticate'],
        ['POST', '/mfa/reauthenticate/passkey-options'],
      ] as const) {
        const response = await ctx.app.inject({ method, url, payload: {} })
        assertProblem(response, 401)
        assert.match(String(response.headers['www-authenticate']), /^Bearer/, `${method} ${url}`)
      }
    })
  },
  { build: { clock } },
)
