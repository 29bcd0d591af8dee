import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server'
import { assertProblem, describeEachEngine } from '../../support/app.js'
import { TestClock } from '../../support/clock.js'
import type { AssertionOverrides } from '../../support/software-authenticator.js'
import {
  amrOf,
  challenge,
  codeAt,
  enrolTotp,
  eventsOf,
  loginRequest,
  mfaLogin,
  stepOf,
  userWithToken,
} from '../mfa/support.js'
import {
  accountState,
  addPasskey,
  challengeRows,
  mfaPasskeyOptions,
  mfaPasskeyOptionsRequest,
  mfaTokenRows,
  passkeyLoginOptions,
  passkeyRows,
  RP_ID,
  sessionRows,
  unknownChallenge,
  userWithPasskey,
  type TokenPairBody,
} from './support.js'

const clock = new TestClock()
const INVALID_TOKEN = 'The mfa_token is invalid or expired: log in again with POST /login.'

describeEachEngine(
  'a passkey as the second factor of a password login',
  (ctx) => {
    /** A user with a passkey; the password login's mfa_token. */
    async function owing(options: Parameters<typeof userWithPasskey>[1] = {}) {
      clock.set(Date.now())
      const owner = await userWithPasskey(ctx.app, options)
      const { mfa_token } = await challenge(ctx.app, owner.user)
      return { ...owner, mfaToken: mfa_token }
    }

    /** 401, the mfa_token still usable (it is unspent), a failed attempt recorded, no session. */
    async function assertRefusedFactor(response: Awaited<ReturnType<typeof mfaLogin>>, userId: number) {
      const problem = assertProblem(response, 401)
      assert.match(problem.detail, /The mfa_token still works: try again\.$/)
      assert.equal(response.json<Record<string, unknown>>().access_token, undefined)
      const unspent = (await mfaTokenRows(ctx.app, userId)).filter((row) => row.used_at === null)
      assert.equal(unspent.length, 1, 'the mfa_token is still usable')
      const failed = (await eventsOf(ctx.app, userId)).at(-1)
      assert.equal(failed?.event, 'mfa_code_failed')
      assert.deepEqual(JSON.parse(failed.details!), { factor: 'passkey' })
    }

    test('the password of an account with a passkey is 403 mfa_required, factors passkey and recovery_code, no session', async () => {
      const { user } = await owing()
      const sessions = await sessionRows(ctx.app, user.id)
      const response = await loginRequest(ctx.app, user.email, user.password)
      const body = assertProblem(response, 403) as unknown as Record<string, unknown>
      assert.equal(body.error, 'mfa_required')
      assert.deepEqual(body.factors, ['passkey', 'recovery_code'])
      assert.equal(response.headers['cache-control'], 'no-store')
      assert.deepEqual(await sessionRows(ctx.app, user.id), sessions)
    })

    test('passkey options for the mfa_token: the account’s passkeys in allowCredentials, no-store, a challenge of the account; the token is not spent', async () => {
      const { user, authenticator, mfaToken } = await owing()
      const second = await addPasskey(ctx.app, user)
      const response = await mfaPasskeyOptionsRequest(ctx.app, mfaToken)
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.headers['cache-control'], 'no-store')
      const options = response.json<PublicKeyCredentialRequestOptionsJSON>()
      assert.equal(options.rpId, RP_ID)
      assert.match(options.challenge, /^[A-Za-z0-9_-]{43}$/)
      assert.deepEqual(options.allowCredentials, [
        { id: authenticator.credentials[0]!.id, type: 'public-key', transports: ['internal'] },
        { id: second.authenticator.credentials[0]!.id, type: 'public-key', transports: ['internal'] },
      ])
      const rows = await challengeRows(ctx.app, user.id)
      assert.deepEqual(
        rows.map((row) => [row.purpose, row.user_handle]),
        [['second_factor', null]],
      )
      assert.ok(!JSON.stringify(rows).includes(options.challenge))
      assert.deepEqual(
        (await mfaTokenRows(ctx.app, user.id)).map((row) => row.used_at),
        [null],
      )
      // A passkey whose authenticator named no transports is listed without any.
      await ctx.app.db
        .updateTable('passkeys')
        .set({ transports: '' })
        .where('user_id', '=', user.id)
        .execute()
      const without = (await mfaPasskeyOptions(ctx.app, mfaToken)).allowCredentials
      assert.deepEqual(
        without?.map((descriptor) => descriptor.transports),
        [undefined, undefined],
      )
    })

    test('the passkey finishes the login: amr pwd+hwk+mfa (kept after refresh), sessions.amr, token and challenge spent, counter recorded, audit', async () => {
      const { user, authenticator, mfaToken } = await owing()
      const sessionsBefore = (await sessionRows(ctx.app, user.id)).map((row) => row.id)
      const answer = await authenticator.authenticate(await mfaPasskeyOptions(ctx.app, mfaToken))
      const response = await mfaLogin(ctx.app, { mfa_token: mfaToken, passkey: answer })
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.headers['cache-control'], 'no-store')
      const pair = response.json<TokenPairBody>()
      assert.deepEqual(amrOf(pair.access_token), ['pwd', 'hwk', 'mfa'])
      const refreshed = await ctx.app.inject({
        method: 'POST',
        url: '/token/refresh',
        payload: { refresh_token: pair.refresh_token },
      })
      assert.deepEqual(amrOf(refreshed.json<TokenPairBody>().access_token), ['pwd', 'hwk', 'mfa'])
      const started = (await sessionRows(ctx.app, user.id)).filter((row) => !sessionsBefore.includes(row.id))
      assert.equal(started.length, 1)
      const session = started[0]!
      assert.equal(session.amr, 'pwd hwk mfa')
      assert.equal(session.factor_verified_at?.getTime(), clock.now())
      assert.notEqual((await mfaTokenRows(ctx.app, user.id))[0]!.used_at, null)
      assert.deepEqual(await challengeRows(ctx.app, user.id), [])
      const [row] = await passkeyRows(ctx.app, user.id)
      assert.equal(row!.sign_count, 1)
      assert.equal(row!.last_used_at?.getTime(), clock.now())
      const success = (await eventsOf(ctx.app, user.id)).at(-1)
      assert.equal(success?.event, 'mfa_login_succeeded')
      assert.deepEqual(JSON.parse(success.details!), { factor: 'passkey' })
      // The token is spent: the same answer again is the invalid-token 401.
      const again = await mfaLogin(ctx.app, { mfa_token: mfaToken, passkey: answer })
      assert.equal(assertProblem(again, 401).detail, INVALID_TOKEN)
    })

    test('user verification is not asked of a second factor: an answer without it logs in', async () => {
      const { authenticator, mfaToken } = await owing()
      const options = await mfaPasskeyOptions(ctx.app, mfaToken)
      assert.equal(options.userVerification, 'preferred')
      const answer = await authenticator.authenticate(options, { userVerified: false })
      const response = await mfaLogin(ctx.app, { mfa_token: mfaToken, passkey: answer })
      assert.equal(response.statusCode, 200, response.body)
      assert.deepEqual(amrOf(response.json<TokenPairBody>().access_token), ['pwd', 'hwk', 'mfa'])
    })

    test('refused with 401 saying which check failed, the mfa_token still usable and nothing changed: another account’s passkey or one never registered, its challenge, an unknown or replayed challenge, a counter that did not increase, a wrong origin', async () => {
      const { user, authenticator, mfaToken } = await owing()
      // One login with the passkey first, so that its counter is 1.
      const firstAnswer = await authenticator.authenticate(await mfaPasskeyOptions(ctx.app, mfaToken))
      assert.equal((await mfaLogin(ctx.app, { mfa_token: mfaToken, passkey: firstAnswer })).statusCode, 200)
      const { mfa_token } = await challenge(ctx.app, user)
      const other = await owing()
      clock.set(Date.now())

      const signedBy = async (
        signer: typeof authenticator,
        options: Awaited<ReturnType<typeof mfaPasskeyOptions>>,
        overrides: AssertionOverrides = {},
      ) => signer.authenticate(options, overrides)
      // Each refusal says which check failed: the challenge, the passkey, or the assertion itself.
      const CHALLENGE =
        'This passkey answer is not to a current challenge of this login (unknown, used or expired): ask for new options.'
      const NOT_THEIRS = 'This passkey is not one of this account’s.'
      const cases: [string, string, () => Promise<object>][] = [
        // The other account's passkey, answering this login's options (its credential named).
        [
          'another account’s passkey',
          NOT_THEIRS,
          async () =>
            signedBy(other.authenticator, await mfaPasskeyOptions(ctx.app, mfa_token), {
              credentialId: other.authenticator.credentials[0]!.id,
            }),
        ],
        // This account's passkey answering options issued for the other account's login.
        [
          'a challenge of another account',
          CHALLENGE,
          async () => {
            const theirs = await mfaPasskeyOptions(ctx.app, other.mfaToken)
            return signedBy(authenticator, theirs, { credentialId: authenticator.credentials[0]!.id })
          },
        ],
        [
          'a passkey the server does not know (never registered)',
          NOT_THEIRS,
          async () =>
            signedBy(authenticator, await mfaPasskeyOptions(ctx.app, mfa_token), {
              responseId: unknownChallenge(),
            }),
        ],
        [
          'an unknown challenge',
          CHALLENGE,
          async () =>
            signedBy(authenticator, await mfaPasskeyOptions(ctx.app, mfa_token), {
              challenge: unknownChallenge(),
            }),
        ],
        ['a replayed challenge', CHALLENGE, async () => firstAnswer],
        [
          'a password-less login’s challenge',
          CHALLENGE,
          async () => signedBy(authenticator, await passkeyLoginOptions(ctx.app)),
        ],
        [
          'a counter that did not increase',
          "The passkey's signature counter went backwards: the passkey may have been copied.",
          async () => signedBy(authenticator, await mfaPasskeyOptions(ctx.app, mfa_token), { counter: 1 }),
        ],
        [
          'a wrong origin',
          'The passkey response comes from a page this server does not accept.',
          async () =>
            signedBy(authenticator, await mfaPasskeyOptions(ctx.app, mfa_token), {
              origin: 'https://evil.example',
            }),
        ],
        [
          'a wrong RP ID',
          'The passkey response was made for another site.',
          async () =>
            signedBy(authenticator, await mfaPasskeyOptions(ctx.app, mfa_token), { rpId: 'example.com' }),
        ],
      ]
      for (const [label, detail, answerOf] of cases) {
        const answer = await answerOf()
        const mine = await accountState(ctx.app, user.id)
        const theirs = await accountState(ctx.app, other.user.id)
        const response = await mfaLogin(ctx.app, { mfa_token, passkey: answer })
        await assertRefusedFactor(response, user.id).catch((error: Error) => {
          error.message = `${label}: ${error.message}`
          throw error
        })
        const said = response
          .json<{ detail: string }>()
          .detail.replace(/ The mfa_token still works: try again\.$/, '')
        assert.equal(said, detail, label)
        assert.deepEqual(await accountState(ctx.app, user.id), mine, label)
        assert.deepEqual(await accountState(ctx.app, other.user.id), theirs, label)
      }
      // The other account's challenge, refused here, was not spent: its own login still uses it.
      assert.equal((await challengeRows(ctx.app, other.user.id)).length, 1)
      const ok = await mfaLogin(ctx.app, {
        mfa_token,
        passkey: await authenticator.authenticate(await mfaPasskeyOptions(ctx.app, mfa_token)),
      })
      assert.equal(ok.statusCode, 200, ok.body)
    })

    test('passkey options need a usable mfa_token from its own client: another User-Agent or an unknown token is 401 and the token stays usable; an account without a passkey is 409', async () => {
      const { user, authenticator, mfaToken } = await owing()
      const otherAgent = await mfaPasskeyOptionsRequest(ctx.app, mfaToken, 'another-browser/2.0')
      assert.equal(assertProblem(otherAgent, 401).detail, INVALID_TOKEN)
      const unknown = await mfaPasskeyOptionsRequest(ctx.app, 'A'.repeat(43))
      assert.equal(assertProblem(unknown, 401).detail, INVALID_TOKEN)
      assert.deepEqual(await challengeRows(ctx.app, user.id), [], 'no challenge issued')
      assert.deepEqual(
        (await eventsOf(ctx.app, user.id))
          .filter((row) => row.event === 'mfa_token_refused')
          .map((row) => JSON.parse(row.details!)),
        [{ reason: 'binding' }],
      )
      // The answer to options fetched by the right client, sent by another client, is refused too.
      const answer = await authenticator.authenticate(await mfaPasskeyOptions(ctx.app, mfaToken))
      const elsewhere = await mfaLogin(
        ctx.app,
        { mfa_token: mfaToken, passkey: answer },
        'another-browser/2.0',
      )
      assert.equal(assertProblem(elsewhere, 401).detail, INVALID_TOKEN)
      const own = await mfaLogin(ctx.app, { mfa_token: mfaToken, passkey: answer })
      assert.equal(own.statusCode, 200, own.body)

      const totpOnly = await userWithToken(ctx.app)
      await enrolTotp(ctx.app, totpOnly, clock)
      const { mfa_token, factors } = await challenge(ctx.app, totpOnly)
      assert.deepEqual(factors, ['totp', 'recovery_code'])
      assert.equal(
        assertProblem(await mfaPasskeyOptionsRequest(ctx.app, mfa_token), 409).detail,
        'This account has no passkey: finish the login with a code.',
      )
      assert.deepEqual(await challengeRows(ctx.app, totpOnly.id), [])
    })

    test('with TOTP and a passkey both are offered, and a recovery code still finishes the login (amr pwd+mfa)', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const { recoveryCodes } = await enrolTotp(ctx.app, user, clock)
      await addPasskey(ctx.app, user)
      const { mfa_token, factors } = await challenge(ctx.app, user)
      assert.deepEqual(factors, ['totp', 'passkey', 'recovery_code'])
      const response = await mfaLogin(ctx.app, { mfa_token, recovery_code: recoveryCodes[0] })
      assert.equal(response.statusCode, 200, response.body)
      assert.deepEqual(amrOf(response.json<TokenPairBody>().access_token), ['pwd', 'mfa'])
    })

    test('a TOTP enrolment still pending is no factor: its code is 401 at /login/mfa, offered nowhere, and the passkey then logs in', async () => {
      const { user, authenticator, mfaToken } = await owing()
      // Without any TOTP row, a code is refused the same way.
      const noTotp = await mfaLogin(ctx.app, { mfa_token: mfaToken, code: '123456' })
      assert.equal(
        assertProblem(noTotp, 401).detail,
        'The code is not right, or was already used. The mfa_token still works: try again.',
      )
      const started = await ctx.app.inject({ method: 'POST', url: '/mfa/totp', headers: user.headers })
      assert.equal(started.statusCode, 200, started.body)
      const { secret } = started.json<{ secret: string }>()
      const { mfa_token, factors } = await challenge(ctx.app, user)
      assert.deepEqual(factors, ['passkey', 'recovery_code'])
      const sessions = await sessionRows(ctx.app, user.id)
      const pendingCode = await mfaLogin(ctx.app, { mfa_token, code: codeAt(secret, stepOf(clock)) })
      assert.equal(
        assertProblem(pendingCode, 401).detail,
        'The code is not right, or was already used. The mfa_token still works: try again.',
      )
      const failed = (await eventsOf(ctx.app, user.id)).at(-1)
      assert.equal(failed?.event, 'mfa_code_failed')
      assert.deepEqual(JSON.parse(failed.details!), { factor: 'totp' })
      assert.deepEqual(await sessionRows(ctx.app, user.id), sessions)
      const passkey = await authenticator.authenticate(await mfaPasskeyOptions(ctx.app, mfa_token))
      assert.equal((await mfaLogin(ctx.app, { mfa_token, passkey })).statusCode, 200)
    })

    test('a body with a passkey and a code together, or a malformed passkey answer, is 422 and spends nothing', async () => {
      const { user, authenticator, mfaToken } = await owing()
      const answer = await authenticator.authenticate(await mfaPasskeyOptions(ctx.app, mfaToken))
      const bodies: Record<string, unknown>[] = [
        { mfa_token: mfaToken, passkey: answer, code: '123456' },
        { mfa_token: mfaToken, passkey: { ...answer, type: 'x' } },
        { mfa_token: mfaToken, passkey: { ...answer, response: { ...answer.response, extra: 'x' } } },
        { passkey: answer },
      ]
      for (const body of bodies) assertProblem(await mfaLogin(ctx.app, body), 422)
      assert.equal((await challengeRows(ctx.app, user.id)).length, 1)
      assert.deepEqual(
        (await mfaTokenRows(ctx.app, user.id)).map((row) => row.used_at),
        [null],
      )
      assert.equal((await mfaLogin(ctx.app, { mfa_token: mfaToken, passkey: answer })).statusCode, 200)
    })
  },
  { build: { clock } },
)
