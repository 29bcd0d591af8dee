import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server'
import { assertProblem, bearer, describeEachEngine } from '../../support/app.js'
import { MINUTE, TestClock } from '../../support/clock.js'
import {
  codeAt,
  enrolTotp,
  eventsOf,
  loginRequest,
  STEP_MS,
  stepOf,
  UA,
  type TestUser,
} from '../mfa/support.js'
import {
  accountState,
  challengeRows,
  deletePasskey,
  passkeyLoginOptions,
  reauthenticate,
  reauthenticationOptions,
  recoveryCodeRows,
  RP_ID,
  sessionRows,
  unknownChallenge,
  userWithPasskey,
} from './support.js'

const clock = new TestClock()
const WINDOW_MS = 5 * MINUTE

describeEachEngine(
  're-authentication with a passkey',
  (ctx) => {
    const regenerate = (headers: Record<string, string>) =>
      ctx.app.inject({ method: 'POST', url: '/mfa/recovery-codes', headers, payload: {} })
    const disableTotp = (headers: Record<string, string>) =>
      ctx.app.inject({ method: 'DELETE', url: '/mfa/totp', headers, payload: {} })

    function assertReauthenticationRequired(response: Awaited<ReturnType<typeof regenerate>>) {
      const problem = assertProblem(response, 403) as ReturnType<typeof assertProblem> & { error?: string }
      assert.equal(problem.error, 'reauthentication_required')
      assert.equal(
        problem.detail,
        'This change needs your current password, or a second factor proved in the last 5 minutes: ' +
          'send `password`, or re-authenticate with POST /mfa/reauthenticate first.',
      )
    }

    /** A user with a passkey and TOTP, in a password session (no factor proved in it). */
    async function withPasskeyAndTotp() {
      clock.set(Date.now())
      const owner = await userWithPasskey(ctx.app)
      const { secret } = await enrolTotp(ctx.app, owner.user, clock)
      clock.advance(STEP_MS)
      return { ...owner, secret }
    }

    /** The caller's current session row (the newest of the user's). */
    const currentSession = async (user: TestUser) => (await sessionRows(ctx.app, user.id))[0]!

    test('options: the caller’s passkeys, a challenge of the account, no-store; without a passkey, 409', async () => {
      clock.set(Date.now())
      const { user, authenticator } = await userWithPasskey(ctx.app)
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/mfa/reauthenticate/passkey-options',
        headers: user.headers,
      })
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.headers['cache-control'], 'no-store')
      const options = response.json<PublicKeyCredentialRequestOptionsJSON>()
      assert.equal(options.rpId, RP_ID)
      assert.deepEqual(
        options.allowCredentials?.map((descriptor) => descriptor.id),
        [authenticator.credentials[0]!.id],
      )
      assert.deepEqual(
        (await challengeRows(ctx.app, user.id)).map((row) => row.purpose),
        ['second_factor'],
      )

      const removed = await deletePasskey(
        ctx.app,
        user.headers,
        (await accountState(ctx.app, user.id)).passkeys[0]!.id,
        {
          password: user.password,
        },
      )
      assert.equal(removed.statusCode, 204)
      const none = await ctx.app.inject({
        method: 'POST',
        url: '/mfa/reauthenticate/passkey-options',
        headers: user.headers,
      })
      assert.equal(
        assertProblem(none, 409).detail,
        'You have no passkey: re-authenticate with a code or your password.',
      )
    })

    test('a passkey opens a 5-minute window: no password for new recovery codes at 4:59.999; at 5:00, 403 again', async () => {
      const { user, authenticator } = await withPasskeyAndTotp()
      assertReauthenticationRequired(await regenerate(user.headers))
      const answer = await authenticator.authenticate(await reauthenticationOptions(ctx.app, user.headers))
      const response = await reauthenticate(ctx.app, user.headers, { passkey: answer })
      assert.equal(response.statusCode, 200, response.body)
      assert.deepEqual(response.json(), { expires_in: 300 })
      assert.equal((await currentSession(user)).factor_verified_at?.getTime(), clock.now())
      assert.deepEqual(await challengeRows(ctx.app, user.id), [], 'the challenge is spent')
      const [passkey] = (await accountState(ctx.app, user.id)).passkeys
      assert.equal(passkey!.sign_count, 1)
      const events = await eventsOf(ctx.app, user.id, 'mfa_reauthenticated')
      assert.deepEqual(
        events.map((event) => JSON.parse(event.details!)),
        [{ factor: 'passkey' }],
      )

      clock.advance(WINDOW_MS - 1)
      const codes = await regenerate(user.headers)
      assert.equal(codes.statusCode, 200, codes.body)
      clock.advance(1)
      const before = await accountState(ctx.app, user.id)
      assertReauthenticationRequired(await regenerate(user.headers))
      assertReauthenticationRequired(await disableTotp(user.headers))
      assertReauthenticationRequired(await deletePasskey(ctx.app, user.headers, passkey!.id))
      assert.deepEqual(await accountState(ctx.app, user.id), before)
    })

    test('within the window TOTP is disabled and the last passkey removed with {}', async () => {
      const { user, authenticator } = await withPasskeyAndTotp()
      const answer = await authenticator.authenticate(await reauthenticationOptions(ctx.app, user.headers))
      assert.equal((await reauthenticate(ctx.app, user.headers, { passkey: answer })).statusCode, 200)
      clock.advance(WINDOW_MS - 1000)
      const disabled = await disableTotp(user.headers)
      assert.equal(disabled.statusCode, 204, disabled.body)
      const [passkey] = (await accountState(ctx.app, user.id)).passkeys
      const removed = await deletePasskey(ctx.app, user.headers, passkey!.id)
      assert.equal(removed.statusCode, 204, removed.body)
      assert.deepEqual(await accountState(ctx.app, user.id).then((state) => state.passkeys), [])
      assert.deepEqual(await recoveryCodeRows(ctx.app, user.id), [])
    })

    test('a TOTP code or a recovery code re-authenticates too: then the last passkey goes with {}', async () => {
      const { user, secret, passkey } = await withPasskeyAndTotp()
      const withCode = await reauthenticate(ctx.app, user.headers, { code: codeAt(secret, stepOf(clock)) })
      assert.equal(withCode.statusCode, 200, withCode.body)
      assert.deepEqual(withCode.json(), { expires_in: 300 })
      const { user: other, recoveryCodes } = await userWithPasskey(ctx.app)
      const withRecovery = await reauthenticate(ctx.app, other.headers, { recovery_code: recoveryCodes[0] })
      assert.equal(withRecovery.statusCode, 200, withRecovery.body)
      assert.equal(
        (await recoveryCodeRows(ctx.app, other.id)).filter((row) => row.used_at === null).length,
        9,
      )
      assert.equal((await deletePasskey(ctx.app, user.headers, passkey.id)).statusCode, 204)
      const otherPasskey = (await accountState(ctx.app, other.id)).passkeys[0]!
      assert.equal((await deletePasskey(ctx.app, other.headers, otherPasskey.id)).statusCode, 204)
      assert.deepEqual(
        (await eventsOf(ctx.app, other.id, 'mfa_reauthenticated')).map((event) => JSON.parse(event.details!)),
        [{ factor: 'recovery_code' }],
      )
    })

    test('refused with 422 on `passkey`, the window not opened and nothing changed: another account’s passkey or challenge, an unknown or replayed challenge, a login’s challenge, a counter that did not increase', async () => {
      const { user, authenticator } = await withPasskeyAndTotp()
      const first = await authenticator.authenticate(await reauthenticationOptions(ctx.app, user.headers))
      assert.equal((await reauthenticate(ctx.app, user.headers, { passkey: first })).statusCode, 200)
      clock.advance(WINDOW_MS)
      const other = await userWithPasskey(ctx.app)
      const own = () => reauthenticationOptions(ctx.app, user.headers)
      const cases: [string, () => Promise<object>][] = [
        [
          'another account’s passkey',
          async () =>
            other.authenticator.authenticate(await own(), {
              credentialId: other.authenticator.credentials[0]!.id,
            }),
        ],
        [
          'a challenge of another account',
          async () =>
            authenticator.authenticate(await reauthenticationOptions(ctx.app, other.user.headers), {
              credentialId: authenticator.credentials[0]!.id,
            }),
        ],
        [
          'an unknown challenge',
          async () => authenticator.authenticate(await own(), { challenge: unknownChallenge() }),
        ],
        ['a replayed challenge', async () => first],
        [
          'a password-less login’s challenge',
          async () => authenticator.authenticate(await passkeyLoginOptions(ctx.app)),
        ],
        [
          'a counter that did not increase',
          async () => authenticator.authenticate(await own(), { counter: 1 }),
        ],
      ]
      for (const [label, answerOf] of cases) {
        const answer = await answerOf()
        const mine = await accountState(ctx.app, user.id)
        const theirs = await accountState(ctx.app, other.user.id)
        const problem = assertProblem(await reauthenticate(ctx.app, user.headers, { passkey: answer }), 422)
        assert.deepEqual(
          problem.errors?.map((issue) => issue.field),
          ['passkey'],
          label,
        )
        const failed = (await eventsOf(ctx.app, user.id)).at(-1)
        assert.equal(failed?.event, 'mfa_code_failed', label)
        assert.deepEqual(
          JSON.parse(failed.details!),
          { factor: 'passkey', during: 'reauthentication' },
          label,
        )
        assert.deepEqual(await accountState(ctx.app, user.id), mine, label)
        assert.deepEqual(await accountState(ctx.app, other.user.id), theirs, label)
      }
      assertReauthenticationRequired(await regenerate(user.headers))
      assert.equal(
        (await challengeRows(ctx.app, other.user.id)).length,
        1,
        'the other account’s challenge is not spent',
      )
    })

    test('a wrong TOTP code, recovery code or password is 422 on its own field, audited; nothing opens', async () => {
      const { user, secret, recoveryCodes } = await withPasskeyAndTotp()
      const wrongCode = codeAt(secret, stepOf(clock) - 5)
      const refusals: [Record<string, unknown>, string, string, string][] = [
        [{ code: wrongCode }, 'code', 'was not accepted', 'The code is not right, or was already used.'],
        [
          { recovery_code: recoveryCodes[0]!.split('').reverse().join('') },
          'recovery_code',
          'was not accepted',
          'The code is not right, or was already used.',
        ],
      ]
      for (const [payload, field, message, detail] of refusals) {
        const problem = assertProblem(await reauthenticate(ctx.app, user.headers, payload), 422)
        assert.equal(problem.detail, detail, field)
        assert.deepEqual(problem.errors, [{ in: 'body', field, message }], field)
        const failed = (await eventsOf(ctx.app, user.id)).at(-1)
        assert.equal(failed?.event, 'mfa_code_failed', field)
        assert.deepEqual(JSON.parse(failed.details!), {
          factor: field === 'code' ? 'totp' : field,
          during: 'reauthentication',
        })
      }
      const wrongPassword = assertProblem(
        await ctx.app.inject({
          method: 'POST',
          url: '/mfa/recovery-codes',
          headers: user.headers,
          payload: { password: `${user.password}!` },
        }),
        422,
      )
      assert.equal(wrongPassword.detail, 'The password is not right.')
      assert.deepEqual(wrongPassword.errors, [
        { in: 'body', field: 'password', message: 'is not your current password' },
      ])
      assert.equal((await eventsOf(ctx.app, user.id, 'mfa_reauthentication_failed')).length, 1)
      assert.equal((await currentSession(user)).factor_verified_at, null)
      assert.equal(
        (await recoveryCodeRows(ctx.app, user.id)).filter((row) => row.used_at === null).length,
        10,
      )
      assertReauthenticationRequired(await regenerate(user.headers))
    })

    test('the window belongs to the session that proved the factor: another session of the account still needs the password', async () => {
      const { user, authenticator, secret } = await withPasskeyAndTotp()
      const login = await loginRequest(ctx.app, user.email, user.password)
      const otherSession = await ctx.app.inject({
        method: 'POST',
        url: '/login/mfa',
        headers: { 'user-agent': UA },
        payload: {
          mfa_token: login.json<{ mfa_token: string }>().mfa_token,
          code: codeAt(secret, stepOf(clock)),
        },
      })
      assert.equal(otherSession.statusCode, 200, otherSession.body)
      clock.advance(WINDOW_MS)
      const answer = await authenticator.authenticate(await reauthenticationOptions(ctx.app, user.headers))
      assert.equal((await reauthenticate(ctx.app, user.headers, { passkey: answer })).statusCode, 200)
      const otherHeaders = {
        ...bearer(otherSession.json<{ access_token: string }>().access_token),
        'user-agent': UA,
      }
      assertReauthenticationRequired(await regenerate(otherHeaders))
      assert.equal((await regenerate(user.headers)).statusCode, 200)
    })
  },
  { build: { clock } },
)
