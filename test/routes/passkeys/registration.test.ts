import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { PublicKeyCredentialCreationOptionsJSON } from '@simplewebauthn/server'
import { assertProblem, describeEachEngine } from '../../support/app.js'
import { TestClock } from '../../support/clock.js'
import { challenge, enrolTotp, mfaLogin, userWithToken } from '../mfa/support.js'
import {
  accountState,
  auditOf,
  authenticatorFor,
  CHALLENGE_LIFETIME_MS,
  challengeRows,
  passkeyLogin,
  passkeyLoginOptions,
  passkeyRows,
  postPasskey,
  recoveryCodeRows,
  registrationOptions,
  RP_ID,
  unknownChallenge,
  userWithPasskey,
  withClientData,
  type PasskeyBody,
} from './support.js'

const clock = new TestClock()
const PASSKEY_FIELDS = ['backed_up', 'created_at', 'device_type', 'id', 'last_used_at', 'name']
const RECOVERY_CODE = /^[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}$/
const ZERO_AAGUID = '00000000-0000-0000-0000-000000000000'

describeEachEngine(
  'passkey registration',
  (ctx) => {
    /** A 422 on `response`, with the reason recorded; what the account had is left as it was. */
    async function assertRefused(
      response: Awaited<ReturnType<typeof postPasskey>>,
      userId: number,
      reason: string,
      before: Awaited<ReturnType<typeof accountState>>,
    ) {
      const problem = assertProblem(response, 422)
      assert.deepEqual(
        problem.errors?.map((issue) => [issue.in, issue.field]),
        [['body', 'response']],
        response.body,
      )
      if (reason === 'challenge')
        assert.equal(
          problem.detail,
          'This answer is not to a current registration challenge of your account (unknown, used or expired): ask for new options.',
        )
      assert.deepEqual((await auditOf(ctx.app, userId)).at(-1), {
        event: 'passkey_registration_failed',
        outcome: 'failure',
        details: { reason },
      })
      assert.deepEqual(await accountState(ctx.app, userId), before)
    }

    test('options: RP localhost, a random user handle, a resident key and user verification required, no-store; the challenge is stored hashed with the account and handle, 5 minutes', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/passkeys/registration-options',
        headers: user.headers,
      })
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.headers['cache-control'], 'no-store')
      const options = response.json<PublicKeyCredentialCreationOptionsJSON>()
      assert.equal(options.rp.id, RP_ID)
      assert.match(options.challenge, /^[A-Za-z0-9_-]{43}$/)
      assert.match(options.user.id, /^[A-Za-z0-9_-]{43}$/)
      // 32 random bytes, not the numeric id in any form.
      assert.equal(Buffer.from(options.user.id, 'base64url').length, 32)
      assert.notEqual(options.user.id, Buffer.from(String(user.id)).toString('base64url'))
      assert.equal(options.user.name, user.email)
      assert.equal(options.user.displayName, user.name)
      assert.equal(options.timeout, CHALLENGE_LIFETIME_MS)
      assert.equal(options.attestation, 'none')
      assert.deepEqual(
        options.pubKeyCredParams.map((param) => param.alg),
        [-8, -7, -257],
      )
      assert.equal(options.authenticatorSelection?.residentKey, 'required')
      assert.equal(options.authenticatorSelection?.userVerification, 'required')
      assert.deepEqual(options.excludeCredentials, [])

      const rows = await challengeRows(ctx.app, user.id)
      assert.equal(rows.length, 1)
      const [row] = rows
      assert.equal(row!.purpose, 'registration')
      assert.equal(row!.user_handle, options.user.id)
      assert.match(row!.challenge_hash, /^[0-9a-f]{64}$/)
      assert.ok(!JSON.stringify(row).includes(options.challenge), 'stored as a hash only')
      assert.equal(row!.created_at.getTime(), clock.now())
      assert.equal(row!.expires_at.getTime(), clock.now() + CHALLENGE_LIFETIME_MS)
    })

    test('a first passkey: 201, no-store, the passkey and 10 recovery codes; the row keeps the handle of the options; logins now ask for it', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const authenticator = authenticatorFor()
      const options = await registrationOptions(ctx.app, user.headers)
      const answer = await authenticator.register(options)
      const response = await postPasskey(ctx.app, user.headers, answer, '  My laptop  ')
      assert.equal(response.statusCode, 201, response.body)
      assert.equal(response.headers['cache-control'], 'no-store')
      const body = response.json<{ passkey: PasskeyBody; recovery_codes: string[] }>()
      assert.deepEqual(Object.keys(body).sort(), ['passkey', 'recovery_codes'])
      assert.deepEqual(Object.keys(body.passkey).sort(), PASSKEY_FIELDS)
      assert.deepEqual(body.passkey, {
        id: body.passkey.id,
        name: 'My laptop',
        created_at: new Date(clock.now()).toISOString(),
        last_used_at: null,
        device_type: 'singleDevice',
        backed_up: false,
      })
      assert.equal(body.recovery_codes.length, 10)
      assert.equal(new Set(body.recovery_codes).size, 10)
      for (const code of body.recovery_codes) assert.match(code, RECOVERY_CODE)

      const [credential] = authenticator.credentials
      const rows = await passkeyRows(ctx.app, user.id)
      assert.equal(rows.length, 1)
      assert.equal(rows[0]!.id, body.passkey.id)
      assert.equal(rows[0]!.credential_id, credential!.id)
      assert.equal(rows[0]!.user_handle, options.user.id)
      assert.equal(credential!.userHandle, options.user.id)
      assert.equal(rows[0]!.sign_count, 0)
      assert.equal(rows[0]!.transports, 'internal')
      assert.equal(rows[0]!.aaguid, ZERO_AAGUID)
      assert.equal(rows[0]!.last_used_at, null)
      assert.deepEqual(await challengeRows(ctx.app, user.id), [], 'the challenge is spent')
      const codes = await recoveryCodeRows(ctx.app, user.id)
      assert.equal(codes.length, 10)
      for (const { code_hash } of codes) assert.ok(!body.recovery_codes.includes(code_hash))
      assert.deepEqual(await auditOf(ctx.app, user.id), [
        { event: 'passkey_registered', outcome: 'success', details: { passkey_id: body.passkey.id } },
      ])
      const status = await ctx.app.inject({ method: 'GET', url: '/mfa', headers: user.headers })
      assert.deepEqual(status.json(), {
        factors: ['passkey', 'recovery_code'],
        totp: 'none',
        passkeys: 1,
        recovery_codes_left: 10,
        enrolment_required: false,
      })
    })

    test('without a name: "Security key added <date>" for a device-bound key, "Synced passkey added <date>" for a synced one (multiDevice, backed up); EdDSA keys too', async () => {
      clock.set(Date.parse('2031-04-05T10:00:00.000Z'))
      const bound = await userWithPasskey(ctx.app, {
        authenticator: authenticatorFor({ algorithm: 'EdDSA' }),
      })
      assert.equal(bound.passkey.name, 'Security key added 2031-04-05')
      assert.equal(bound.passkey.device_type, 'singleDevice')
      assert.equal(bound.passkey.backed_up, false)
      const synced = await userWithPasskey(ctx.app, { authenticator: authenticatorFor({ synced: true }) })
      assert.deepEqual(synced.passkey, {
        id: synced.passkey.id,
        name: 'Synced passkey added 2031-04-05',
        created_at: '2031-04-05T10:00:00.000Z',
        last_used_at: null,
        device_type: 'multiDevice',
        backed_up: true,
      })
      const [row] = await passkeyRows(ctx.app, synced.user.id)
      assert.equal(row!.transports, 'hybrid,internal')
      assert.equal(row!.device_type, 'multiDevice')
      assert.equal(row!.backed_up, true)
      clock.set(Date.now())
      assert.equal((await passkeyLogin(ctx.app, bound.authenticator)).statusCode, 200)
    })

    test('a second passkey: same user handle, the first listed in excludeCredentials, no new recovery codes (the first set keeps working)', async () => {
      clock.set(Date.now())
      const { user, authenticator, passkey, recoveryCodes } = await userWithPasskey(ctx.app)
      const codesBefore = await recoveryCodeRows(ctx.app, user.id)
      const options = await registrationOptions(ctx.app, user.headers)
      const [first] = authenticator.credentials
      assert.equal(options.user.id, first!.userHandle)
      assert.deepEqual(
        options.excludeCredentials?.map(({ id, type }) => ({ id, type })),
        [{ id: first!.id, type: 'public-key' }],
      )
      // The authenticator that holds the first passkey refuses, as a browser would.
      await assert.rejects(authenticator.register(options), { name: 'InvalidStateError' })
      const other = authenticatorFor()
      const response = await postPasskey(ctx.app, user.headers, await other.register(options), 'Phone')
      assert.equal(response.statusCode, 201, response.body)
      const body = response.json<Record<string, unknown>>()
      assert.equal(body.recovery_codes, undefined, 'recovery codes come with the first factor only')
      assert.deepEqual(await recoveryCodeRows(ctx.app, user.id), codesBefore, 'the first set is kept')
      const rows = await passkeyRows(ctx.app, user.id)
      assert.deepEqual(
        rows.map((row) => [row.id, row.user_handle]),
        [
          [passkey.id, first!.userHandle],
          [(body.passkey as PasskeyBody).id, first!.userHandle],
        ],
      )
      const { mfa_token } = await challenge(ctx.app, user)
      const withCode = await mfaLogin(ctx.app, { mfa_token, recovery_code: recoveryCodes[0] })
      assert.equal(withCode.statusCode, 200, withCode.body)
    })

    test('a passkey added to an account with TOTP active brings no recovery codes and keeps the TOTP set', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      await enrolTotp(ctx.app, user, clock)
      const codesBefore = await recoveryCodeRows(ctx.app, user.id)
      const options = await registrationOptions(ctx.app, user.headers)
      const response = await postPasskey(ctx.app, user.headers, await authenticatorFor().register(options))
      assert.equal(response.statusCode, 201, response.body)
      assert.equal(response.json<Record<string, unknown>>().recovery_codes, undefined)
      assert.deepEqual(await recoveryCodeRows(ctx.app, user.id), codesBefore)
    })

    test('two registrations started before the account had a passkey still give its passkeys one user handle; both log in', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      // Two tabs: both ask for options, then both finish.
      const first = await registrationOptions(ctx.app, user.headers)
      const second = await registrationOptions(ctx.app, user.headers)
      const a = authenticatorFor()
      const b = authenticatorFor()
      assert.equal((await postPasskey(ctx.app, user.headers, await a.register(first))).statusCode, 201)
      assert.equal((await postPasskey(ctx.app, user.headers, await b.register(second))).statusCode, 201)
      const handles = new Set((await passkeyRows(ctx.app, user.id)).map((row) => row.user_handle))
      assert.equal(handles.size, 1, 'one WebAuthn user id per account')
      assert.equal((await passkeyLogin(ctx.app, a)).statusCode, 200)
      assert.equal((await passkeyLogin(ctx.app, b)).statusCode, 200)
    })

    test('refused answers are 422 on `response` with the reason recorded, and store nothing: wrong origin, wrong RP ID, no user verification, no user presence', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const cases = [
        ['origin', authenticatorFor(), { origin: 'https://evil.example' }],
        ['origin', authenticatorFor(), { origin: 'http://localhost:8001' }],
        ['rp_id', authenticatorFor(), { rpId: 'example.com' }],
        ['user_verification', authenticatorFor({ userVerification: false }), {}],
        ['user_presence', authenticatorFor(), { userPresent: false }],
      ] as const
      for (const [reason, authenticator, overrides] of cases) {
        const before = await accountState(ctx.app, user.id)
        const answer = await authenticator.register(
          await registrationOptions(ctx.app, user.headers),
          overrides,
        )
        await assertRefused(await postPasskey(ctx.app, user.headers, answer), user.id, reason, before)
        assert.deepEqual(
          await challengeRows(ctx.app, user.id),
          [],
          `${reason}: the challenge served its one answer`,
        )
      }
      assert.deepEqual(await passkeyRows(ctx.app, user.id), [])
      assert.deepEqual(await recoveryCodeRows(ctx.app, user.id), [])
    })

    test('an answer to no current challenge of the account is 422 (reason challenge): unknown, already used, another account’s, a login’s', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const other = await userWithToken(ctx.app)
      const authenticator = authenticatorFor()

      const unknown = await authenticator.register(await registrationOptions(ctx.app, user.headers), {
        challenge: unknownChallenge(),
      })
      let before = await accountState(ctx.app, user.id)
      await assertRefused(await postPasskey(ctx.app, user.headers, unknown), user.id, 'challenge', before)
      assert.equal((await challengeRows(ctx.app, user.id)).length, 1, 'the issued challenge was not touched')

      const othersOptions = await registrationOptions(ctx.app, other.headers)
      const othersAnswer = await authenticatorFor().register(othersOptions)
      await assertRefused(
        await postPasskey(ctx.app, user.headers, othersAnswer),
        user.id,
        'challenge',
        before,
      )
      assert.equal(
        (await challengeRows(ctx.app, other.id)).length,
        1,
        'the other account’s challenge is not spent',
      )
      const theirs = await postPasskey(ctx.app, other.headers, othersAnswer)
      assert.equal(theirs.statusCode, 201, theirs.body)

      const loginChallenge = (await passkeyLoginOptions(ctx.app)).challenge
      const forLogin = withClientData(
        await authenticatorFor().register(await registrationOptions(ctx.app, user.headers)),
        { challenge: loginChallenge },
      )
      await assertRefused(await postPasskey(ctx.app, user.headers, forLogin), user.id, 'challenge', before)

      const used = await authenticatorFor().register(await registrationOptions(ctx.app, user.headers))
      assert.equal((await postPasskey(ctx.app, user.headers, used)).statusCode, 201)
      before = await accountState(ctx.app, user.id)
      const again = await postPasskey(ctx.app, user.headers, used)
      await assertRefused(again, user.id, 'challenge', before)
    })

    test('the challenge lives 5 minutes: answered 1 ms before, registered; at 5:00, refused; expired challenges are swept when options are issued', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const inTime = await authenticatorFor().register(await registrationOptions(ctx.app, user.headers))
      clock.advance(CHALLENGE_LIFETIME_MS - 1)
      assert.equal((await postPasskey(ctx.app, user.headers, inTime)).statusCode, 201)

      const late = await authenticatorFor().register(await registrationOptions(ctx.app, user.headers))
      clock.advance(CHALLENGE_LIFETIME_MS)
      const before = await accountState(ctx.app, user.id)
      await assertRefused(await postPasskey(ctx.app, user.headers, late), user.id, 'challenge', before)
      assert.equal((await challengeRows(ctx.app, user.id)).length, 1, 'expired, not yet swept')
      await registrationOptions(ctx.app, user.headers)
      const rows = await challengeRows(ctx.app, user.id)
      assert.equal(rows.length, 1, 'the expired one is gone, the new one is there')
      assert.equal(rows[0]!.created_at.getTime(), clock.now())
    })

    test('a passkey already registered is 409, to this account or another one, and changes neither', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const other = await userWithToken(ctx.app)
      const authenticator = authenticatorFor()
      const answer = await authenticator.register(await registrationOptions(ctx.app, user.headers))
      assert.equal((await postPasskey(ctx.app, user.headers, answer)).statusCode, 201)
      const mine = await accountState(ctx.app, user.id)
      const theirs = await accountState(ctx.app, other.id)
      // The same attestation ('none' signs no client data) sent again with a fresh challenge.
      for (const headers of [user.headers, other.headers]) {
        const { challenge } = await registrationOptions(ctx.app, headers)
        assert.equal(
          assertProblem(await postPasskey(ctx.app, headers, withClientData(answer, { challenge })), 409)
            .detail,
          'This passkey is already registered (to this account or another one).',
        )
      }
      assert.deepEqual(await accountState(ctx.app, user.id), mine)
      assert.deepEqual(await accountState(ctx.app, other.id), theirs)
      assert.deepEqual(await auditOf(ctx.app, other.id), [])
      assert.equal((await passkeyLogin(ctx.app, authenticator)).statusCode, 200, 'it still logs in its owner')
    })

    test('bad bodies are 422 naming the field and spend nothing: the challenge then still registers', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const answer = await authenticatorFor().register(await registrationOptions(ctx.app, user.headers))
      const cases: [unknown, string][] = [
        [{}, 'response'],
        [{ response: answer, name: '' }, 'name'],
        [{ response: answer, name: '   ' }, 'name'],
        [{ response: answer, name: 'x'.repeat(101) }, 'name'],
        [{ response: answer, extra: 1 }, 'extra'],
        [{ response: { ...answer, type: 'password' } }, 'response.type'],
        [{ response: { ...answer, id: 'not base64url!' } }, 'response.id'],
        [
          { response: { ...answer, response: { ...answer.response, attestationObject: undefined } } },
          'response.response.attestationObject',
        ],
      ]
      for (const [payload, field] of cases) {
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/passkeys',
          headers: user.headers,
          payload: payload as object,
        })
        const problem = assertProblem(response, 422)
        assert.ok(
          problem.errors?.some((issue) => issue.field === field),
          `${JSON.stringify(problem.errors)} should name ${field}`,
        )
      }
      assert.equal((await challengeRows(ctx.app, user.id)).length, 1)
      assert.deepEqual(await auditOf(ctx.app, user.id), [])
      assert.equal((await postPasskey(ctx.app, user.headers, answer)).statusCode, 201)
    })
  },
  { build: { clock } },
)
